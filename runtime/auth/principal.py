"""Who is calling: what a verified access token says about its bearer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    organization_id: str
    roles: tuple[str, ...]
    email: str
    token_id: str  # the `jti`, the handle for revocation
    session_id: str  # the `sid`: the refresh-token family this access token belongs to
    expires_at: float
