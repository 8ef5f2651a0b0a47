"""The auth backend: users, organizations, password sign-in, RS256 access tokens, refresh sessions.

Refresh tokens are opaque, stored only as SHA-256 hashes, and single use. Every token of one
sign-in belongs to one session (the access token's ``sid``): refreshing spends the presented
token and issues the next one in the same session; presenting a spent token means it was
stolen or replayed, so the whole session is revoked.
"""

from __future__ import annotations

import asyncio
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
from emulator.services.roles import PERMISSIONS, ROLE_NAMES, ROLES
from emulator.services.rpc import Caller, ServiceError, invalid, not_found, require_org
from runtime.schema import FORBIDDEN_CHARACTERS, FORBIDDEN_PROBLEM
from runtime.timestamps import timestamp
from emulator.services.server import ServiceServer
from emulator.services.service_accounts import ServiceAccounts
from emulator.services.store import MAX_BATCH, paginate
from proto.erp.auth.v1 import auth_pb2, auth_pb2_grpc
from proto.erp.auth.v1.contract import REVOKED_SESSION_TRAILER

CLIENT_ID = "erp-frontend"
REFRESH_TTL = 7 * 86400
REMEMBER_ME_TTL = 30 * 86400
KEY_RETENTION_MARGIN = 60  # seconds a retired key outlives the last token it signed (clock skew)
MIN_PASSWORD = 8
# scrypt cost: low enough that seeding a dozen demo users stays ~0.15 s; a production
# service would use n >= 2**15.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**12, 8, 1
# Applied with fullmatch: `$` would accept a trailing newline.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DOMAIN = re.compile(r"(?=.{1,253}\Z)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_BAD_CREDENTIALS = "invalid email or password"  # one message for every failure: no enumeration
_BAD_REFRESH = "invalid or expired refresh token"
_TAKEN = "email or domain: already registered"  # one answer for either: no enumeration


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                            p=int(p))
    return hmac.compare_digest(actual.hex(), digest)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _timestamp(seconds: float) -> Timestamp:
    return timestamp(seconds)  # milliseconds: the one precision of runtime.timestamps


def _unauthenticated(details: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAUTHENTICATED, details)


@dataclass
class _Account:
    user: auth_pb2.User
    password_hash: str


@dataclass
class _Session:
    """One sign-in: the family of refresh tokens rotated from it."""

    id: str
    user_id: str
    ttl: int
    revoked: bool = False


@dataclass
class _RefreshToken:
    session_id: str
    expires_at: float
    spent: bool = False


class AuthState:
    """Everything the auth service knows. Plain methods, usable from tests and the CLI."""

    def __init__(self, *, issuer: str = "erp-auth-service", audience: str = "erp-api-gateway",
                 access_ttl: int = 900, refresh_ttl: int = REFRESH_TTL,
                 remember_me_ttl: int = REMEMBER_ME_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.issuer, self.audience = issuer, audience
        self.access_ttl, self.refresh_ttl, self.remember_me_ttl = access_ttl, refresh_ttl, remember_me_ttl
        self.clock = clock
        self.keys = KeyRing(access_ttl + KEY_RETENTION_MARGIN, clock)
        self.organizations: dict[str, auth_pb2.Organization] = {}
        self._accounts: dict[str, _Account] = {}
        self._by_email: dict[str, str] = {}  # lower-cased email -> user id
        self._sessions: dict[str, _Session] = {}
        self._refresh: dict[str, _RefreshToken] = {}  # sha256(token) -> record; never the token
        self.service_accounts = ServiceAccounts(self.keys, issuer=issuer, audience=audience,
                                                access_ttl=access_ttl, clock=clock)
        # Unknown emails are checked against this, so they cost the same time as real ones.
        self._decoy_hash = hash_password(secrets.token_urlsafe(16))

    # -- directory ---------------------------------------------------------------------------

    def create_organization(self, name: str, domain: str = "") -> auth_pb2.Organization:
        domain = domain.strip().lower()
        if not name.strip():
            raise invalid("organization_name", "is required")
        if domain and not _DOMAIN.fullmatch(domain):
            raise invalid("domain", "must be a domain name such as example.com")
        if domain and any(o.domain == domain for o in self.organizations.values()):
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS, "domain: already registered")
        now = _timestamp(self.clock())
        org = auth_pb2.Organization(id=str(uuid.uuid4()), name=name.strip(), domain=domain,
                                    created_at=now, updated_at=now)
        self.organizations[org.id] = org
        return org

    def create_user(self, organization_id: str, email: str, password: str, *, first_name: str,
                    last_name: str, roles: tuple[str, ...] | list[str] = ("employee",),
                    is_active: bool = True, password_hash: str = "") -> auth_pb2.User:
        email = self._check_new_user(email, password, first_name, last_name)
        if organization_id not in self.organizations:
            raise invalid("organization_id", "no such organization")
        unknown = set(roles) - set(ROLE_NAMES)
        if unknown:
            raise invalid("roles", f"unknown roles {sorted(unknown)}")
        now = _timestamp(self.clock())
        user = auth_pb2.User(id=str(uuid.uuid4()), organization_id=organization_id, email=email,
                             first_name=first_name.strip(), last_name=last_name.strip(),
                             roles=list(roles), is_active=is_active, created_at=now,
                             updated_at=now)
        self._accounts[user.id] = _Account(user, password_hash or hash_password(password))
        self._by_email[email] = user.id
        return user

    def _check_new_user(self, email: str, password: str, first_name: str, last_name: str) -> str:
        email = email.strip().lower()
        for name, value in (("first_name", first_name), ("last_name", last_name)):
            if not value.strip():
                raise invalid(name, "is required")
        if not _EMAIL.fullmatch(email):
            raise invalid("email", "must be a valid email address")
        if len(password) < MIN_PASSWORD:
            raise invalid("password", f"must be at least {MIN_PASSWORD} characters")
        if email in self._by_email:
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS, "email: already registered")
        return email

    def user_by_email(self, email: str) -> auth_pb2.User:
        user_id = self._by_email.get(email.strip().lower())
        if user_id is None:
            raise not_found("user", email)
        return self._accounts[user_id].user

    def get_user(self, user_id: str, organization_id: str = "") -> auth_pb2.User:
        """A user; with ``organization_id``, another organization's user is NOT_FOUND."""
        account = self._accounts.get(user_id)
        if account is None or organization_id and account.user.organization_id != organization_id:
            raise not_found("user", user_id)
        return account.user

    def users(self, organization_id: str = "") -> list[auth_pb2.User]:
        return [a.user for a in self._accounts.values()
                if not organization_id or a.user.organization_id == organization_id]

    def get_organization(self, org_id: str, caller_org: str = "") -> auth_pb2.Organization:
        org = self.organizations.get(org_id)
        if org is None or caller_org and org_id != caller_org:
            raise not_found("organization", org_id)
        return org

    # -- user management ---------------------------------------------------------------------

    EDITABLE = frozenset({"first_name", "last_name", "is_active"})

    def update_user(self, organization_id: str, patch: auth_pb2.User, paths: list[str]) -> auth_pb2.UserChange:
        """Change the fields named in `paths`; deactivating ends every session of the user."""
        if not paths:
            raise invalid("update_mask", "name at least one of first_name, last_name, is_active")
        for path in paths:
            if path not in self.EDITABLE:
                raise invalid("update_mask", f"{path!r} cannot be changed here")
        user = self.get_user(patch.id, organization_id)
        for name in ("first_name", "last_name"):
            if name in paths:
                value = getattr(patch, name).strip()
                if not value:
                    raise invalid(name, "is required")
                if FORBIDDEN_CHARACTERS.search(value):
                    raise invalid(name, FORBIDDEN_PROBLEM)
                setattr(user, name, value)
        ended: list[str] = []
        if "is_active" in paths and patch.is_active != user.is_active:
            user.is_active = patch.is_active
            if not user.is_active:
                ended = self._end_sessions(user.id)
        return self._changed(user, ended)

    def set_role(self, organization_id: str, user_id: str, role: str, held: bool) -> auth_pb2.UserChange:
        """Give (`held`) or take a role; a real change ends every session of the user, whose
        tokens carry the roles they had."""
        if not role:
            raise invalid("role", "is required")
        if role not in ROLE_NAMES:
            raise invalid("role", f"unknown role {role!r}")
        user = self.get_user(user_id, organization_id)
        if (role in user.roles) == held:
            return auth_pb2.UserChange(user=user)  # nothing to change, nobody signed out
        roles = [r for r in user.roles if r != role] + ([role] if held else [])
        del user.roles[:]
        user.roles.extend(roles)
        return self._changed(user, self._end_sessions(user.id))

    def _changed(self, user: auth_pb2.User, ended: list[str]) -> auth_pb2.UserChange:
        user.updated_at.CopyFrom(_timestamp(self.clock()))
        return auth_pb2.UserChange(user=user, ended_sessions=ended,
                                   access_tokens_valid_until=self.clock() + self.access_ttl if ended else 0)

    def _end_sessions(self, user_id: str) -> list[str]:
        """Revoke every live session of a user; their ids."""
        ended = []
        for session in self._sessions.values():
            if session.user_id == user_id and not session.revoked:
                session.revoked = True
                ended.append(session.id)
        return ended

    # -- sign-in and sessions ----------------------------------------------------------------

    def authenticate(self, email: str, password: str, remember_me: bool = False) -> auth_pb2.TokenResponse:
        user_id = self._by_email.get(email.strip().lower())
        account = self._accounts.get(user_id) if user_id else None
        ok = verify_password(password, account.password_hash if account else self._decoy_hash)
        if not (ok and account and account.user.is_active):
            raise _unauthenticated(_BAD_CREDENTIALS)
        ttl = self.remember_me_ttl if remember_me else self.refresh_ttl
        session = _Session(uuid.uuid4().hex, account.user.id, ttl)
        self._sessions[session.id] = session
        return self._issue(account, session)

    def register(self, *, first_name: str, last_name: str, email: str, password: str,
                 organization_name: str, domain: str = "") -> auth_pb2.TokenResponse:
        """A new organization with this user as its admin, signed in.

        A taken email and a taken domain get one answer (ALREADY_EXISTS, _TAKEN) after the
        same work as a success (both checks, a password hash and its verification), so that
        neither the answer nor its time tells which one is taken, nor that one is."""
        domain_key = domain.strip().lower()
        if not organization_name.strip():
            raise invalid("organization_name", "is required")
        if domain_key and not _DOMAIN.fullmatch(domain_key):
            raise invalid("domain", "must be a domain name such as example.com")
        try:
            self._check_new_user(email, password, first_name, last_name)
            taken = False
        except ServiceError as error:
            if error.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
            taken = True
        taken |= bool(domain_key) and any(o.domain == domain_key for o in self.organizations.values())
        password_hash = hash_password(password)
        verify_password(password, password_hash)  # what the sign-in of a success costs
        if taken:
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS, _TAKEN)
        org = self.create_organization(organization_name, domain)
        user = self.create_user(org.id, email, password, first_name=first_name, last_name=last_name,
                                roles=("admin",), password_hash=password_hash)
        session = _Session(uuid.uuid4().hex, user.id, self.refresh_ttl)
        self._sessions[session.id] = session
        return self._issue(self._accounts[user.id], session)

    def refresh(self, refresh_token: str) -> auth_pb2.TokenResponse:
        record = self._refresh.get(_sha256(refresh_token))
        if record is None:
            raise _unauthenticated(_BAD_REFRESH)
        session = self._sessions[record.session_id]
        if record.spent:  # replay of a rotated token: the family is compromised
            session.revoked = True
            # Access tokens of the family stay valid at the gateway unless it is told: say
            # which session died and until when its access tokens could live.
            until = self.clock() + self.access_ttl
            raise ServiceError(grpc.StatusCode.UNAUTHENTICATED, _BAD_REFRESH,
                               trailers=((REVOKED_SESSION_TRAILER, f"{session.id} {until:.3f}"),))
        account = self._accounts[session.user_id]
        if session.revoked or record.expires_at <= self.clock() or not account.user.is_active:
            raise _unauthenticated(_BAD_REFRESH)
        record.spent = True
        return self._issue(account, session)

    def revoke(self, refresh_token: str = "", session_id: str = "", user_id: str = "") -> bool:
        """Revoke a session, found by one of its refresh tokens or by id. With ``user_id``,
        only that user's own sessions. True if a live session was revoked.

        A refresh token that is unknown, of another user, or (with ``session_id`` too) of
        another session is refused with INVALID_ARGUMENT and nothing is revoked: a caller
        cannot end someone else's session by naming its token."""
        if refresh_token:
            record = self._refresh.get(_sha256(refresh_token))
            owner = self._sessions.get(record.session_id) if record else None
            if (owner is None or session_id and owner.id != session_id
                    or user_id and owner.user_id != user_id):
                raise invalid("refresh_token", "is not a refresh token of this session")
            session_id = owner.id
        session = self._sessions.get(session_id)
        if session is None or session.revoked or user_id and session.user_id != user_id:
            return False
        session.revoked = True
        return True

    def _issue(self, account: _Account, session: _Session) -> auth_pb2.TokenResponse:
        token = secrets.token_urlsafe(32)
        self._refresh[_sha256(token)] = _RefreshToken(session.id, self.clock() + session.ttl)
        return auth_pb2.TokenResponse(
            user=account.user,
            access_token=self.mint_access_token(account.user.id, session_id=session.id),
            refresh_token=token, expires_in=self.access_ttl, refresh_expires_in=session.ttl,
        )

    # -- tokens and keys ---------------------------------------------------------------------

    def mint_access_token(self, user_id: str, *, session_id: str | None = None,
                          headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        """An RFC 9068 access token for a user. ``overrides`` replace claims (None removes
        one) and ``headers`` header fields, so tests can forge expired or foreign tokens."""
        user = self._accounts[user_id].user
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": user.id, "client_id": CLIENT_ID,
            "iat": now, "nbf": now, "exp": now + self.access_ttl, "jti": uuid.uuid4().hex,
            "org": user.organization_id, "roles": list(user.roles), "email": user.email,
            "sid": session_id or uuid.uuid4().hex,
        }
        claims.update(overrides)
        key = self.keys.current
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, key.private_key,
                          algorithm="RS256",
                          headers={"typ": "at+jwt", "kid": key.kid, **(headers or {})})

    def rotate_signing_key(self, withdraw_previous: bool = False) -> str:
        """Make a new key current; the old one stays in the JWKS while its tokens live, unless
        withdrawn (then its tokens stop working at once)."""
        return self.keys.rotate(withdraw_previous).kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return self.keys.jwks()


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, state: AuthState) -> None:
        self.state = state

    async def Authenticate(self, request, context):
        if not request.email or not request.password:
            raise invalid("email" if not request.email else "password", "is required")
        # scrypt releases the GIL: concurrent sign-ins hash in parallel, the loop stays free.
        return await asyncio.to_thread(self.state.authenticate, request.email, request.password,
                                       request.remember_me)

    async def Register(self, request, context):
        # On the loop, not in a thread: the taken-check and the creation must not interleave.
        return self.state.register(
            first_name=request.first_name, last_name=request.last_name, email=request.email,
            password=request.password, organization_name=request.organization_name,
            domain=request.domain)

    async def RefreshToken(self, request, context):
        if not request.refresh_token:
            raise invalid("refresh_token", "is required")
        return self.state.refresh(request.refresh_token)

    async def RevokeToken(self, request, context):
        if not request.refresh_token and not request.session_id:
            raise invalid("refresh_token", "refresh_token or session_id is required")
        revoked = self.state.revoke(request.refresh_token, request.session_id,
                                    Caller.of(context).user_id)
        return auth_pb2.RevokeTokenResponse(revoked=revoked)

    async def GetUser(self, request, context):
        if not request.id:
            raise invalid("id", "is required")
        return self.state.get_user(request.id, Caller.of(context).organization_id)

    async def BatchGetUsers(self, request, context):
        return auth_pb2.BatchGetUsersResponse(users=self._batch(
            request.ids, self.state.get_user, context))

    async def CreateServiceAccount(self, request, context):
        caller = Caller.of(context)
        return self.state.service_accounts.create(caller.organization_id, caller.user_id, request.name,
                                                  list(request.permissions))

    async def ListServiceAccounts(self, request, context):
        items, token, total = paginate(self.state.service_accounts.list(Caller.of(context).organization_id),
                                       request.page_size, request.page_token)
        return auth_pb2.ListServiceAccountsResponse(items=items, next_page_token=token, total_size=total)

    async def GetServiceAccount(self, request, context):
        return self.state.service_accounts.get(request.id, Caller.of(context).organization_id)

    async def RotateServiceAccountSecret(self, request, context):
        return self.state.service_accounts.rotate(request.id, Caller.of(context).organization_id)

    async def DeleteServiceAccount(self, request, context):
        return self.state.service_accounts.delete(request.id, Caller.of(context).organization_id)

    async def IssueServiceToken(self, request, context):
        if not request.client_id or not request.client_secret:
            raise invalid("client_id" if not request.client_id else "client_secret", "is required")
        return self.state.service_accounts.issue_token(request.client_id, request.client_secret)

    async def ListUsers(self, request, context):
        users, token, total = paginate(self.state.users(Caller.of(context).organization_id),
                                       request.page_size, request.page_token)
        return auth_pb2.ListUsersResponse(users=users, next_page_token=token, total_size=total)

    async def CreateUser(self, request, context):
        org = require_org(context)
        for name in ("first_name", "last_name", "email"):
            if FORBIDDEN_CHARACTERS.search(getattr(request, name)):
                raise invalid(name, FORBIDDEN_PROBLEM)
        # On the loop, not in a thread: the taken-check and the creation must not interleave.
        return self.state.create_user(org, request.email, request.password, first_name=request.first_name,
                                      last_name=request.last_name, roles=list(request.roles) or ["employee"])

    async def UpdateUser(self, request, context):
        if not request.user.id:
            raise invalid("id", "is required")
        return self.state.update_user(require_org(context), request.user,
                                      list(request.update_mask.paths))

    async def AssignRole(self, request, context):
        return self._set_role(request, context, True)

    async def RevokeRole(self, request, context):
        return self._set_role(request, context, False)

    def _set_role(self, request, context, held: bool) -> auth_pb2.UserChange:
        if not request.user_id:
            raise invalid("user_id", "is required")
        return self.state.set_role(require_org(context), request.user_id, request.role, held)

    async def GetOrganization(self, request, context):
        if not request.id:
            raise invalid("id", "is required")
        return self.state.get_organization(request.id, Caller.of(context).organization_id)

    async def BatchGetOrganizations(self, request, context):
        return auth_pb2.BatchGetOrganizationsResponse(organizations=self._batch(
            request.ids, self.state.get_organization, context))

    async def ListRoles(self, request, context):
        return auth_pb2.ListRolesResponse(roles=[
            auth_pb2.Role(name=n, description=d, parents=p, permissions=g) for n, d, p, g in ROLES])

    async def ListPermissions(self, request, context):
        return auth_pb2.ListPermissionsResponse(permissions=[
            auth_pb2.Permission(name=n, description=d) for n, d in PERMISSIONS])

    async def RotateSigningKey(self, request, context):
        roles = Caller.of(context).roles
        if roles and "super_admin" not in roles:  # a platform operation, not an org admin's
            raise ServiceError(grpc.StatusCode.PERMISSION_DENIED, "requires role super_admin")
        return auth_pb2.RotateSigningKeyResponse(kid=self.state.rotate_signing_key(request.withdraw_previous))

    @staticmethod
    def _batch(ids, get, context) -> list:
        """Found records in request order; unknown and other organizations' ids left out."""
        if len(ids) > MAX_BATCH:
            raise invalid("ids", f"at most {MAX_BATCH} per call")
        org, found = Caller.of(context).organization_id, []
        for i in dict.fromkeys(ids):
            try:
                found.append(get(i, org))
            except ServiceError:
                continue
        return found


def build(state: AuthState) -> ServiceServer:
    servicer = AuthServicer(state)
    return ServiceServer("auth", "erp.auth.v1.AuthService",
                         lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server))
