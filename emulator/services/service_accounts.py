"""Service accounts of the emulated auth service: machine clients of one organization with
their own grants, a client id and a secret kept only as a hash, and the OAuth 2.0
client-credentials grant that turns the pair into a short-lived access token.

Tokens of an account carry `roles: []`, a `permissions` claim (its grants) and, as their
session (`sid`), the account's current generation: rotating the secret starts a new
generation, and the gateway revokes every token of the old one by that session id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from google.protobuf.timestamp_pb2 import Timestamp

from emulator.services.keys import KeyRing
from emulator.services.rpc import ServiceError, invalid, not_found
from proto.erp.auth.v1 import auth_pb2

SECRET_PREFIX = "erp_sk_"  # so that leaked secrets can be found by secret scanners
MAX_PERMISSIONS = 50
_SEGMENT = r"(?:[a-z][a-z0-9_]*|\*)"
_GRANT = re.compile(rf"\A{_SEGMENT}\.{_SEGMENT}:{_SEGMENT}\Z")
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}\Z")
_BAD_CLIENT = "invalid client credentials"  # one answer for an unknown id and a wrong secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


@dataclass
class _Record:
    account: auth_pb2.ServiceAccount
    secret_hash: str


class ServiceAccounts:
    def __init__(self, keys: KeyRing, *, issuer: str, audience: str, access_ttl: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys, self.issuer, self.audience = keys, issuer, audience
        self.access_ttl, self.clock = access_ttl, clock
        self._records: dict[str, _Record] = {}  # account id -> record
        self._by_client: dict[str, str] = {}  # client id -> account id

    def create(self, organization_id: str, created_by: str, name: str,
               permissions: list[str]) -> auth_pb2.ServiceAccountSecret:
        if not organization_id:
            raise invalid("organization_id", "is required (x-organization-id metadata)")
        if not _NAME.match(name):
            raise invalid("name", "must be 1-100 letters, digits, spaces, dots, dashes or underscores")
        if not permissions or len(permissions) > MAX_PERMISSIONS:
            raise invalid("permissions", f"must list 1 to {MAX_PERMISSIONS} grants")
        for grant in permissions:
            if not _GRANT.match(grant):
                raise invalid("permissions", f"{grant[:64]!r} is not domain.resource:action")
        if any(r.account.name == name and r.account.organization_id == organization_id
               for r in self._records.values()):
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS, "name: a service account of this name exists")
        now = _timestamp(self.clock())
        account = auth_pb2.ServiceAccount(
            id=str(uuid.uuid4()), organization_id=organization_id, name=name,
            permissions=sorted(set(permissions)), client_id="sa_" + secrets.token_hex(10),
            created_by=created_by, created_at=now, updated_at=now, generation=uuid.uuid4().hex)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        self._records[account.id] = _Record(account, _digest(secret))
        self._by_client[account.client_id] = account.id
        return auth_pb2.ServiceAccountSecret(account=account, client_secret=secret)

    def list(self, organization_id: str) -> list[auth_pb2.ServiceAccount]:
        return sorted((r.account for r in self._records.values() if r.account.organization_id == organization_id),
                      key=lambda a: (a.created_at.ToNanoseconds(), a.id))

    def _own(self, account_id: str, organization_id: str) -> _Record:
        record = self._records.get(account_id)
        if record is None or record.account.organization_id != organization_id:
            raise not_found("service account", account_id)  # another organization's: not found
        return record

    def get(self, account_id: str, organization_id: str) -> auth_pb2.ServiceAccount:
        return self._own(account_id, organization_id).account

    def rotate(self, account_id: str, organization_id: str) -> auth_pb2.ServiceAccountSecret:
        record = self._own(account_id, organization_id)
        previous = record.account.generation
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        record.secret_hash = _digest(secret)
        record.account.generation = uuid.uuid4().hex
        record.account.updated_at.CopyFrom(_timestamp(self.clock()))
        return auth_pb2.ServiceAccountSecret(account=record.account, client_secret=secret,
                                             previous_generation=previous)

    def delete(self, account_id: str, organization_id: str) -> auth_pb2.ServiceAccount:
        record = self._own(account_id, organization_id)
        del self._records[account_id]
        del self._by_client[record.account.client_id]
        return record.account

    def issue_token(self, client_id: str, client_secret: str) -> auth_pb2.ServiceTokenResponse:
        record = self._records.get(self._by_client.get(client_id, ""))
        # Compared in constant time, and a digest is computed for unknown ids too.
        expected = record.secret_hash if record else _digest(SECRET_PREFIX)
        if not hmac.compare_digest(_digest(client_secret), expected) or record is None:
            raise ServiceError(grpc.StatusCode.UNAUTHENTICATED, _BAD_CLIENT)
        account = record.account
        now = int(self.clock())
        account.last_used_at.CopyFrom(_timestamp(now))
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": account.id, "client_id": account.client_id,
            "iat": now, "nbf": now, "exp": now + self.access_ttl, "jti": uuid.uuid4().hex,
            "org": account.organization_id, "roles": [], "permissions": list(account.permissions),
            "sid": account.generation,
        }
        key = self.keys.current
        token = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"typ": "at+jwt", "kid": key.kid})
        return auth_pb2.ServiceTokenResponse(access_token=token, expires_in=self.access_ttl, account=account)
