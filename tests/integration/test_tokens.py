"""Missing, garbled, expired and foreign-signed tokens are refused with 401 and the envelope."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

ME = "/api/v1/auth/me"


def assert_401(answer) -> dict:
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    doc = answer.json()
    assert doc["success"] is False and doc["code"] == "UNAUTHENTICATED"
    return doc


def test_missing_token(http):
    doc = assert_401(http.get(ME))
    assert "Bearer" in doc["message"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Basic YWRtaW46cGFzc3dvcmQ=",
        "Bearer not-a-jwt",
        "Bearer a.b",
        "Bearer a.b.c",
        "Bearer !!!.@@@.###",
        "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    ],
)
def test_garbled_token(http, authorization):
    assert_401(http.get(ME, headers={"Authorization": authorization}))


def test_expired_token(http, stack, session):
    user_id = session["user"]["id"]
    now = int(time.time())
    token = stack.call(stack.auth.mint_access_token, user_id, iat=now - 3600, nbf=now - 3600, exp=now - 600)
    doc = assert_401(http.get(ME, headers={"Authorization": f"Bearer {token}"}))
    assert "expired" in doc["message"].lower()


def test_foreign_signed_token(http, session):
    # Same claims and kid as a real token, signed by a key the auth service never had.
    real = session["access_token"]
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, foreign_key, algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert_401(http.get(ME, headers={"Authorization": f"Bearer {forged}"}))


def test_valid_token_passes(http, session):
    answer = http.get(ME, headers={"Authorization": f"Bearer {session['access_token']}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["email"] == "admin@acme.example"
