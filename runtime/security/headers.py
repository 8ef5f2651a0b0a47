"""Security headers on every response, errors included (OWASP secure headers)."""

from __future__ import annotations

BASE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    # API answers are per caller; no shared cache may keep them unless a route says so.
    ("Cache-Control", "no-store"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def security_headers(tls_enabled: bool) -> tuple[tuple[str, str], ...]:
    return BASE_HEADERS + ((HSTS,) if tls_enabled else ())
