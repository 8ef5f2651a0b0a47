"""The verified-token cache: RSA once per token, and nothing but verified tokens in it."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from runtime.auth.tokens import TokenVerifier
from runtime.errors import Unauthenticated

pytestmark = pytest.mark.anyio
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = jwt.PyJWK({**RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "alg": "RS256"})


@pytest.fixture
def anyio_backend():
    return "asyncio"


class OneKey:
    """Stands in for JwksCache; counts lookups (a lookup precedes every RSA verification)."""

    def __init__(self) -> None:
        self.lookups = 0
        self.published = {"k1"}

    async def key(self, kid: str):
        self.lookups += 1
        return JWK if kid in self.published else None

    def has(self, kid: str) -> bool:
        return kid in self.published


def token(**overrides) -> str:
    now = int(time.time())
    claims = {"iss": "iss", "aud": "aud", "sub": "u1", "org": "o1", "roles": ["viewer"], "iat": now,
              "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, KEY, algorithm="RS256",
                      headers={"typ": "at+jwt", "kid": "k1"})


def verifier(cache_size: int = 100) -> TokenVerifier:
    return TokenVerifier(OneKey(), issuer="iss", audience="aud", algorithms=("RS256",), leeway=0,
                         cache_size=cache_size)


async def test_a_token_is_verified_once_then_served_from_the_cache():
    v, t = verifier(), token()
    first = await v.verify(t)
    for _ in range(10):
        assert await v.verify(t) is first
    assert v.jwks.lookups == 1


async def test_refused_tokens_never_enter_the_cache():
    v = verifier(cache_size=2)
    good = token()
    await v.verify(good)
    head, body, sig = token().split(".")
    garbage = [
        "a.b.c",
        head + "." + body + "." + sig[:-4] + "AAAA",  # bad signature
        token(exp=int(time.time()) - 60),
        token(aud="elsewhere"),
        token(sub=None),
        token().replace(".", ".x", 1),  # tampered payload
    ]
    for bad in garbage * 5:
        with pytest.raises(Unauthenticated):
            await v.verify(bad)
    assert list(v._verified) == [good]  # not evicted by garbage either
    lookups = v.jwks.lookups
    await v.verify(good)
    assert v.jwks.lookups == lookups


async def test_the_cache_is_bounded():
    v = verifier(cache_size=5)
    for _ in range(20):
        await v.verify(token())
    assert len(v._verified) == 5


async def test_an_expired_cached_token_is_refused_and_dropped():
    v = verifier()
    t = token()
    principal = await v.verify(t)
    v._verified[t] = type(principal)(**{**{f: getattr(principal, f) for f in principal.__slots__},
                                        "expires_at": time.time() - 1})
    with pytest.raises(Unauthenticated, match="expired"):
        await v.verify(t)
    assert t not in v._verified


async def test_a_cached_token_dies_with_its_withdrawn_key():
    v = verifier()
    t = token()
    await v.verify(t)
    v.jwks.published.clear()  # the key left the JWKS (a refetch saw it gone)
    with pytest.raises(Unauthenticated, match="unknown key"):
        await v.verify(t)
    assert t not in v._verified
    v.jwks.published.add("k1")  # published again: verified again, from scratch
    assert (await v.verify(t)).key_id == "k1"


class SlowKey(OneKey):
    """A key lookup that yields to the loop (as a JWKS fetch would), so callers overlap."""

    async def key(self, kid: str):
        await asyncio.sleep(0.01)
        return await super().key(kid)


async def test_a_new_token_on_many_concurrent_requests_is_verified_once():
    v, t = verifier(), token()
    v.jwks = SlowKey()
    principals = await asyncio.gather(*(v.verify(t) for _ in range(50)))
    assert v.jwks.lookups == 1  # one RSA verification, not 50
    assert all(p is principals[0] for p in principals)
    assert not v._verifying  # nothing left behind


async def test_a_refused_new_token_refuses_every_concurrent_caller_with_one_verification():
    v = verifier()
    v.jwks = SlowKey()
    t = token(exp=int(time.time()) - 60)
    outcomes = await asyncio.gather(*(v.verify(t) for _ in range(20)), return_exceptions=True)
    assert v.jwks.lookups == 1
    assert all(isinstance(o, Unauthenticated) and "expired" in o.message for o in outcomes)


async def test_a_caller_that_goes_away_does_not_cancel_the_others_verification():
    v, t = verifier(), token()
    v.jwks = SlowKey()
    first = asyncio.ensure_future(v.verify(t))
    others = [asyncio.ensure_future(v.verify(t)) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    principals = await asyncio.gather(*others)
    assert all(p.user_id == "u1" for p in principals)
    assert v.jwks.lookups == 1
