"""The access log: one line per answered request, in one shape whoever answered it.

Two places answer requests: the Falcon middleware (every routed, unmatched or refused-by-a-
stage request) and the ASGI client guard in front of Falcon (a request refused before Falcon
sees it: too many in progress from one address, a body too slow or badly framed, an HTTP
version not served). Both write through `log_access`, so a search on `http.response.status_code`
or `url.path` finds every answer, with Elastic Common Schema names (runtime.observability.logs).
"""

from __future__ import annotations

import logging

access_log = logging.getLogger("gateway.access")


def log_access(request_id: str, method: str | None, path: str | None, status: int, elapsed: float, *,
               route: str | None = None, client_ip: str | None = None, trace_id: str | None = None,
               user_id: str | None = None, organization_id: str | None = None,
               error_code: str | None = None) -> None:
    """`elapsed` in seconds. None fields are left out of the line (the JSON formatter drops
    them), e.g. `http.route` for a request refused before routing."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    access_log.info(
        f"{method} {path} {status}",
        extra={
            "http.request.id": request_id,
            "http.request.method": method,
            "url.path": path,
            "http.route": route,
            "http.response.status_code": status,
            "event.duration": round(elapsed * 1e9),  # ECS: nanoseconds
            "client.ip": client_ip,
            "trace.id": trace_id,
            "user.id": user_id,
            "organization.id": organization_id,
            "error.code": error_code,
        },
    )
