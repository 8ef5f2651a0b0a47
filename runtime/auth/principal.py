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
    issued_at: float
    # A service account's own grants (its token's `permissions` claim); None for a person,
    # whose permissions come from their roles.
    permissions: tuple[str, ...] | None = None
    key_id: str = ""  # the `kid` that signed the token: withdrawn from the JWKS, the token dies

    @property
    def is_service(self) -> bool:
        return self.permissions is not None

    @property
    def revocation_ids(self) -> tuple[str, ...]:
        """What logout can revoke: this token, and every access token of its session."""
        return (self.token_id, SESSION_PREFIX + self.session_id) if self.session_id else (self.token_id,)


SESSION_PREFIX = "session:"
