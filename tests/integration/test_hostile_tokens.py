"""Hostile access tokens (RFC 8725): every one answered 401 with the envelope, none logged.

A dedicated gateway logs at debug level into a file, which is searched for every token and
its signature segment at the end. Tokens are minted with the auth emulator's real key where
the point is that exactly one check fails.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import socketserver
import subprocess
import threading
import time

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from emulator.processes import stop
from tests.support import DEMO_PASSWORD, granian_env, start_gateway

ME = "/api/v1/auth/me"
ADMIN = "admin@acme.example"


def b64(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class CountingListener(socketserver.ThreadingTCPServer):
    """Where jku/x5u point: counts connections; serves the attacker's JWKS if asked."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, body: bytes) -> None:
        self.connections = 0
        self.body = body
        listener = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                listener.connections += 1
                self.rfile.readline()
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(listener.body)).encode() + b"\r\nConnection: close\r\n\r\n" + listener.body)

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def loud_gateway(stack, tmp_path_factory):
    """A gateway logging everything at debug level into a file."""
    log_path = tmp_path_factory.mktemp("hostile") / "gateway.log"
    env = granian_env(stack.environment(), ERP_LOGGING_LEVEL="debug")
    with open(log_path, "wb") as log_file:
        process, url = start_gateway(env, stdout=log_file, stderr=subprocess.STDOUT)
    yield url, process, log_path
    stop(process)


@pytest.fixture(scope="module")
def attacker():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "attacker-1", "alg": "RS256", "use": "sig"}
    listener = CountingListener(json.dumps({"keys": [jwk]}).encode())
    yield key, jwk, listener
    listener.shutdown()
    listener.server_close()


@pytest.fixture(scope="module")
def tokens(stack, loud_gateway, attacker) -> dict[str, str]:
    url, _, _ = loud_gateway
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/api/v1/auth/login", json={"email": ADMIN, "password": DEMO_PASSWORD})
        assert answer.status_code == 200, answer.text
        signed_in = answer.json()["data"]
    user_id = signed_in["user"]["id"]

    def mint(headers=None, **claims) -> str:
        return stack.call(stack.auth.mint_access_token, user_id, headers=headers, **claims)

    real = mint()
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    now = int(time.time())
    key, jwk, listener = attacker
    public_pem = stack.call(lambda: stack.auth.keys.current.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def forged(extra_headers: dict) -> str:
        return jwt.encode(claims, key, algorithm="RS256",
                          headers={"typ": "at+jwt", "kid": jwk["kid"], **extra_headers})

    hs_head = b64({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}) + "." + b64(claims)
    hs_sig = b64(hmac.new(public_pem, hs_head.encode(), hashlib.sha256).digest())

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "erp-auth-service")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2040, 1, 1)).sign(key, hashes.SHA256()))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    head, body, signature = real.split(".")
    tampered_body = b64({**claims, "roles": ["super_admin"], "org": "another-organization"})
    padded_head = base64.b64encode(json.dumps(header).encode()).decode()  # '+', '/', '=': not base64url

    return {
        "alg_none": b64({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}) + "." + b64(claims) + ".",
        "alg_none_with_signature": b64({"alg": "none", "typ": "at+jwt"}) + "." + b64(claims) + "." + signature,
        "hs256_with_public_key": hs_head + "." + hs_sig,
        "key_not_in_jwks": forged({}),
        "key_not_in_jwks_with_real_kid": forged({"kid": header["kid"]}),
        "jwk_header": forged({"jwk": {k: v for k, v in jwk.items() if k != "kid"}}),
        "jku_header": forged({"jku": listener.url + "/jwks.json"}),
        "x5u_header": forged({"x5u": listener.url + "/cert.pem"}),
        "x5c_header": forged({"x5c": [x5c]}),
        "kid_path": mint(headers={"kid": "../../etc/passwd"}),
        "kid_sql": mint(headers={"kid": "' OR 1=1 --"}),
        "kid_nul": mint(headers={"kid": header["kid"] + "\x00"}),
        "expired": mint(iat=now - 3600, nbf=now - 3600, exp=now - 600),
        "nbf_future": mint(nbf=now + 600),
        "wrong_iss": mint(iss="https://evil.example"),
        "wrong_aud": mint(aud="some-other-api"),
        "missing_exp": mint(exp=None),
        "missing_sub": mint(sub=None),
        "refresh_token": signed_in["refresh_token"],
        "id_token": mint(headers={"typ": "JWT"}),
        "no_typ": mint(headers={"typ": None}),
        "unknown_crit": mint(headers={"crit": ["urn:example:must-understand"],
                                      "urn:example:must-understand": True}),
        "20kb": mint(padding="A" * 20_000),  # over the 8 KB token limit, under the 32 KB header limit (a 100 KB one is a 431)
        "not_base64url": padded_head + "." + body + "." + signature,
        "not_base64url_chars": head + ".%%%." + signature,
        "tampered_payload": head + "." + tampered_body + "." + signature,
    }


@pytest.fixture(scope="module")
def answers(loud_gateway, tokens) -> dict[str, httpx.Response]:
    url, _, _ = loud_gateway
    with httpx.Client(base_url=url, timeout=10) as client:
        return {name: client.get(ME, headers={"Authorization": f"Bearer {token}"})
                for name, token in tokens.items()}


HOSTILE = [
    "alg_none", "alg_none_with_signature", "hs256_with_public_key", "key_not_in_jwks",
    "key_not_in_jwks_with_real_kid", "jwk_header", "jku_header", "x5u_header", "x5c_header",
    "kid_path", "kid_sql", "kid_nul", "expired", "nbf_future", "wrong_iss", "wrong_aud",
    "missing_exp", "missing_sub", "refresh_token", "id_token", "no_typ", "unknown_crit",
    "20kb", "not_base64url", "not_base64url_chars", "tampered_payload",
]


def test_every_case_is_listed(tokens):
    assert sorted(tokens) == sorted(HOSTILE)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_token_is_refused_with_the_envelope(answers, name):
    answer = answers[name]
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    doc = answer.json()
    assert doc["success"] is False and doc["code"] == "UNAUTHENTICATED"
    assert doc["request_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize("name,reason", [
    ("alg_none", "malformed"), ("alg_none_with_signature", "algorithm"), ("hs256_with_public_key", "algorithm"), ("key_not_in_jwks", "unknown key"),
    ("kid_path", "key id"), ("kid_nul", "key id"), ("expired", "expired"), ("nbf_future", "not valid yet"),
    ("id_token", "not an access token"), ("unknown_crit", "critical"), ("20kb", "malformed"),
    ("tampered_payload", "invalid"),
])
def test_the_refusal_names_the_failed_check(answers, name, reason):
    # A wrong check passing by luck (e.g. "malformed" for everything) would hide a gap.
    assert reason in answers[name].json()["message"].lower()


def test_jku_and_x5u_are_never_fetched(answers, attacker):
    assert answers["jku_header"].status_code == 401
    _, _, listener = attacker
    assert listener.connections == 0


def test_the_real_token_still_works(loud_gateway, stack, tokens):
    # The same gateway accepts a well-formed token: the refusals above are not a broken gateway.
    url, _, _ = loud_gateway
    user_id = stack.call(stack.auth.user_by_email, ADMIN).id
    token = stack.call(stack.auth.mint_access_token, user_id)
    answer = httpx.get(url + ME, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text


def test_nothing_logged_contains_a_token(loud_gateway, tokens, answers):
    _, _, log_path = loud_gateway
    # Poll until the access log lines of the last requests have reached the file.
    deadline = time.monotonic() + 10
    while (logged := log_path.read_bytes().decode("utf-8", "replace")).count(ME) < len(HOSTILE):
        assert time.monotonic() < deadline, "the log never captured these requests"
        time.sleep(0.05)
    assert '"level":"debug"' in logged or "debug " in logged  # and at debug level
    for name, token in tokens.items():
        assert token not in logged, name
        signature = token.rsplit(".", 1)[-1]
        if len(signature) >= 16:
            assert signature not in logged, name
