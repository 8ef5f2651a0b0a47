"""Access-token verification (RFC 9068 profile, RFC 8725 best practices).

RSA verification costs ~150 µs in PyJWT, so a verified token is cached by its exact string
until it expires: RSA runs once per token, not once per request, and a token arriving on many
concurrent requests before it is cached is verified once (single flight: the others await the
same verification). Each hit checks that the
token's signing key is still published (a dict lookup), so a key withdrawn from the JWKS
(compromised) stops its tokens on the next request, cached or not. Revocation is checked
separately on every request (runtime.auth.revocation).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections import OrderedDict

import jwt

from runtime.auth.jwks import JwksCache
from runtime.auth.principal import Principal
from runtime.errors import Unauthenticated
from runtime.rbac import is_grant

MAX_TOKEN_BYTES = 8192  # real access tokens are ~1 KB; a 100 KB one is an attack
_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_KID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_ACCESS_TYP = {"at+jwt", "application/at+jwt"}


class TokenVerifier:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        leeway: float,
        cache_size: int,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        self._verifying: dict[str, asyncio.Future] = {}  # token -> the verification under way

    async def verify(self, token: str) -> Principal:
        principal = self._verified.get(token)
        if principal is not None:
            if not self.jwks.has(principal.key_id):
                del self._verified[token]  # its key was withdrawn: verify again, which refuses it
            elif principal.expires_at + self.leeway > time.time():
                return principal
            else:
                del self._verified[token]
                raise Unauthenticated("Token has expired")
        task = self._verifying.get(token)
        if task is None:
            # A task of its own: a caller that goes away (cancelled) never cancels the others' wait.
            task = self._verifying[token] = asyncio.get_running_loop().create_task(self._verify_new(token))
            task.add_done_callback(lambda t: self._verified_done(token, t))
        return await asyncio.shield(task)

    def _verified_done(self, token: str, task: asyncio.Task) -> None:
        del self._verifying[token]
        if not task.cancelled():
            task.exception()  # retrieved: no warning when every caller had gone

    async def _verify_new(self, token: str) -> Principal:
        principal = await self._verify_signature(token)
        self._verified[token] = principal
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)  # oldest first: insertion order
        return principal

    async def _verify_signature(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES or not _SHAPE.match(token):
            raise Unauthenticated("Token is malformed")
        header = _header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise Unauthenticated("Token algorithm is not accepted")
        if str(header.get("typ", "")).lower() not in _ACCESS_TYP:
            raise Unauthenticated("Token is not an access token")
        if "crit" in header:
            # RFC 7515 4.1.11: we understand no critical extensions, so we must reject.
            raise Unauthenticated("Token has unsupported critical header parameters")
        if not isinstance(kid, str) or not _KID.match(kid):
            raise Unauthenticated("Token key id is missing or invalid")
        # jwk/jku/x5u/x5c headers are never read: keys come only from the configured JWKS.
        key = await self.jwks.key(kid)
        if key is None:
            raise Unauthenticated("Token is signed by an unknown key")
        if key.algorithm_name != alg:
            raise Unauthenticated("Token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("Token is not valid yet") from None
        except jwt.PyJWTError:
            raise Unauthenticated("Token is invalid") from None
        return _principal(claims, kid)


def _header(token: str) -> dict:
    """The JOSE header, parsed here rather than by PyJWT so each check below can say what
    failed (PyJWT refuses `crit` while parsing, as "malformed")."""
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise Unauthenticated("Token is malformed") from None
    if not isinstance(header, dict):
        raise Unauthenticated("Token is malformed")
    return header


def _principal(claims: dict, kid: str) -> Principal:
    sub, org, roles, jti = claims.get("sub"), claims.get("org"), claims.get("roles", []), claims.get("jti")
    if not (isinstance(sub, str) and sub and isinstance(org, str) and org and isinstance(jti, str) and jti):
        raise Unauthenticated("Token is missing required claims")
    if not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise Unauthenticated("Token roles claim is invalid")
    permissions = claims.get("permissions")
    if permissions is not None and not (
        isinstance(permissions, list) and len(permissions) <= 100 and all(isinstance(p, str) and is_grant(p) for p in permissions)
    ):
        raise Unauthenticated("Token permissions claim is invalid")
    return Principal(
        user_id=sub,
        organization_id=org,
        roles=tuple(roles),
        email=str(claims.get("email", "")),
        token_id=jti,
        session_id=str(claims.get("sid", "")),
        expires_at=float(claims["exp"]),
        issued_at=float(claims["iat"]),
        permissions=tuple(permissions) if permissions is not None else None,
        key_id=kid,
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("Authorization header with a Bearer token is required")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    return token
