"""The auth service's RS256 signing keys: one current, retired ones kept while tokens live.

A retired public key stays in the JWKS until every token it signed has expired, so rotating
never logs anybody out; after that it is dropped, so the JWKS does not grow forever.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = private.public_key().public_numbers()
        # kid = RFC 7638 thumbprint: stable for the key, unique across keys.
        canonical = json.dumps({"e": _b64url_uint(numbers.e), "kty": "RSA",
                                "n": _b64url_uint(numbers.n)}, separators=(",", ":"))
        kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
        return cls(kid.decode().rstrip("="), private)

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


class KeyRing:
    def __init__(self, retain_for: float, clock: Callable[[], float] = time.time) -> None:
        self.retain_for = retain_for  # seconds a retired key stays published
        self._clock = clock
        self.current = SigningKey.generate()
        self._retired: list[tuple[SigningKey, float]] = []  # (key, drop at)

    def rotate(self, withdraw: bool = False) -> SigningKey:
        """A new current key; the old one stays published while its tokens live, or, when
        `withdraw`n (compromised), leaves the JWKS at once."""
        if not withdraw:
            self._retired.append((self.current, self._clock() + self.retain_for))
        self.current = SigningKey.generate()
        return self.current

    def published(self) -> list[SigningKey]:
        now = self._clock()
        self._retired = [(k, until) for k, until in self._retired if until > now]
        return [self.current, *(k for k, _ in self._retired)]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self.published()]}
