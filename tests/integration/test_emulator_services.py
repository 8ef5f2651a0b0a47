"""The emulated backends over real gRPC and HTTP on loopback, as the gateway will use them."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable

import grpc
import jwt
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulator.services import DEFAULT_PORTS, Backends, start_backends
from emulator.services.auth import AuthState
from emulator.services.seed import DEMO_PASSWORD, DEMO_USERS
from proto.erp.auth.v1 import auth_pb2, auth_pb2_grpc
from proto.erp.common.v1.common_pb2 import Money
from proto.erp.crm.v1 import crm_pb2, crm_pb2_grpc
from proto.erp.finance.v1 import finance_pb2, finance_pb2_grpc

FREE_PORTS = dict.fromkeys(DEFAULT_PORTS, 0)
ADMIN = "admin@acme.example"
FULL_NAMES = {"auth": "erp.auth.v1.AuthService", "crm": "erp.crm.v1.CrmService",
              "hrm": "erp.hrm.v1.HrmService", "finance": "erp.finance.v1.FinanceService"}


def run(test: Callable[[Backends], Awaitable[None]]) -> None:
    async def main() -> None:
        backends = await start_backends(ports=FREE_PORTS)
        try:
            await test(backends)
        finally:
            await backends.stop(0)

    asyncio.run(main())


def org_md(backends: Backends, email: str) -> list[tuple[str, str]]:
    user = backends.auth.user_by_email(email)
    return [("x-organization-id", user.organization_id), ("x-user-id", user.id),
            ("x-roles", ",".join(user.roles)), ("x-request-id", "test")]


async def expect_code(call: Awaitable, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value.details()


def http_get(url: str) -> tuple[dict, dict]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read()), dict(resp.headers)


async def verify(backends: Backends, token: str) -> tuple[dict, dict]:
    """Verify as the gateway will: the key by kid from the JWKS URL, RS256 only."""
    client = jwt.PyJWKClient(backends.jwks_url, cache_jwk_set=False, cache_keys=False)
    key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="erp-api-gateway",
                        issuer="erp-auth-service", options={"require": ["exp", "iat", "nbf", "jti"]})
    return jwt.get_unverified_header(token), claims


def test_every_service_reports_serving() -> None:
    async def body(b: Backends) -> None:
        assert set(b.addresses) == {"auth", "crm", "hrm", "finance"}
        for name, address in b.addresses.items():
            async with grpc.aio.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                for service in ("", FULL_NAMES[name]):
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING, (name, service)
                await expect_code(stub.Check(health_pb2.HealthCheckRequest(service="nope")),
                                  grpc.StatusCode.NOT_FOUND)

    run(body)


def test_authenticate_issues_rfc9068_token_verifiable_from_jwks() -> None:
    async def body(b: Backends) -> None:
        async with grpc.aio.insecure_channel(b.addresses["auth"]) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(
                email="Admin@Acme.example", password=DEMO_PASSWORD))
            remembered = await stub.Authenticate(auth_pb2.AuthenticateRequest(
                email=ADMIN, password=DEMO_PASSWORD, remember_me=True))
        assert reply.user.email == ADMIN and list(reply.user.roles) == ["admin"]
        assert (reply.expires_in, reply.refresh_expires_in) == (900, 7 * 86400)
        assert remembered.refresh_expires_in == 30 * 86400
        header, claims = await verify(b, reply.access_token)
        assert header == {"alg": "RS256", "typ": "at+jwt", "kid": b.auth.keys.current.kid}
        assert claims["sub"] == reply.user.id and claims["org"] == reply.user.organization_id
        assert claims["roles"] == ["admin"] and claims["email"] == ADMIN
        assert claims["client_id"] == "erp-frontend" and len(claims["jti"]) == 32
        assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
        assert claims["sid"] and claims["sid"] != (await verify(b, remembered.access_token))[1]["sid"]

        jwks, headers = await asyncio.to_thread(http_get, b.jwks_url)
        assert headers["Cache-Control"] == "max-age=300"
        assert [k["kid"] for k in jwks["keys"]] == [header["kid"]]
        assert {"kty": "RSA", "use": "sig", "alg": "RS256"}.items() <= jwks["keys"][0].items()
        stats_url = b.jwks_url.replace("/.well-known/jwks.json", "/_emulator/stats")
        stats, _ = await asyncio.to_thread(http_get, stats_url)
        assert stats["jwks_fetches"] == 3 == b.jwks.jwks_fetches
        assert stats["calls"] == {name: dict(s.interceptor.calls) for name, s in b.servers.items()}
        assert stats["calls"]["auth"]["/erp.auth.v1.AuthService/Authenticate"] >= 1

    run(body)


def test_refresh_rotates_and_reuse_revokes_the_family() -> None:
    async def body(b: Backends) -> None:
        async with grpc.aio.insecure_channel(b.addresses["auth"]) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            first = await stub.Authenticate(auth_pb2.AuthenticateRequest(
                email=ADMIN, password=DEMO_PASSWORD))
            second = await stub.RefreshToken(auth_pb2.RefreshTokenRequest(
                refresh_token=first.refresh_token))
            assert second.refresh_token != first.refresh_token
            sid = (await verify(b, first.access_token))[1]["sid"]
            assert (await verify(b, second.access_token))[1]["sid"] == sid

            # Replaying the spent token revokes the session, so even the newest token dies.
            for token in (first.refresh_token, second.refresh_token):
                await expect_code(stub.RefreshToken(auth_pb2.RefreshTokenRequest(
                    refresh_token=token)), grpc.StatusCode.UNAUTHENTICATED)

            # Logout by session id revokes that session only, once.
            other = await stub.Authenticate(auth_pb2.AuthenticateRequest(
                email=ADMIN, password=DEMO_PASSWORD))
            other_sid = (await verify(b, other.access_token))[1]["sid"]
            kept = await stub.Authenticate(auth_pb2.AuthenticateRequest(
                email=ADMIN, password=DEMO_PASSWORD))
            revoke = auth_pb2.RevokeTokenRequest(session_id=other_sid)
            assert (await stub.RevokeToken(revoke)).revoked is True
            assert (await stub.RevokeToken(revoke)).revoked is False
            await expect_code(stub.RefreshToken(auth_pb2.RefreshTokenRequest(
                refresh_token=other.refresh_token)), grpc.StatusCode.UNAUTHENTICATED)
            await stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=kept.refresh_token))

    run(body)


def test_bad_credentials_and_duplicate_registration() -> None:
    async def body(b: Backends) -> None:
        async with grpc.aio.insecure_channel(b.addresses["auth"]) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            wrong = await expect_code(stub.Authenticate(auth_pb2.AuthenticateRequest(
                email=ADMIN, password="not-the-password")), grpc.StatusCode.UNAUTHENTICATED)
            unknown = await expect_code(stub.Authenticate(auth_pb2.AuthenticateRequest(
                email="nobody@acme.example", password=DEMO_PASSWORD)),
                grpc.StatusCode.UNAUTHENTICATED)
            assert wrong == unknown  # no user enumeration

            new = auth_pb2.RegisterRequest(first_name="Ada", last_name="Byron",
                                           email="ada@initrode.example", password="s3cret-pass",
                                           organization_name="Initrode", domain="initrode.example")
            reply = await stub.Register(new)
            assert list(reply.user.roles) == ["admin"] and reply.access_token
            org = await stub.GetOrganization(auth_pb2.GetOrganizationRequest(
                id=reply.user.organization_id))
            assert (org.name, org.domain) == ("Initrode", "initrode.example")
            details = await expect_code(stub.Register(new), grpc.StatusCode.ALREADY_EXISTS)
            demo = auth_pb2.RegisterRequest(first_name="X", last_name="Y", email=DEMO_USERS[0][0],
                                            password="s3cret-pass", organization_name="Z")
            # A taken email and a taken domain answer alike: no enumeration.
            assert await expect_code(stub.Register(demo), grpc.StatusCode.ALREADY_EXISTS) == details
            domain_only = auth_pb2.RegisterRequest(first_name="X", last_name="Y", email="fresh@z.example",
                                                   password="s3cret-pass", organization_name="Z",
                                                   domain="initrode.example")
            assert await expect_code(stub.Register(domain_only), grpc.StatusCode.ALREADY_EXISTS) == details
            short = auth_pb2.RegisterRequest(first_name="X", last_name="Y", email="x@y.example",
                                             password="short", organization_name="Z")
            assert (await expect_code(stub.Register(short), grpc.StatusCode.INVALID_ARGUMENT)
                    ).startswith("password:")

    run(body)


def test_list_customers_pages_through_everything_once() -> None:
    async def body(b: Backends) -> None:
        md = org_md(b, ADMIN)
        async with grpc.aio.insecure_channel(b.addresses["crm"]) as channel:
            stub = crm_pb2_grpc.CrmServiceStub(channel)
            seen, token, pages = [], "", 0
            while True:
                page = await stub.ListCustomers(crm_pb2.ListCustomersRequest(
                    page_size=3, page_token=token), metadata=md)
                seen += [c.id for c in page.customers]
                token, pages = page.next_page_token, pages + 1
                assert page.total_size == 8
                if not token:
                    break
            assert pages == 3 and len(seen) == len(set(seen)) == 8
            active = await stub.ListCustomers(crm_pb2.ListCustomersRequest(status="active"),
                                              metadata=md)
            assert active.total_size == 3 and {c.status for c in active.customers} == {"active"}
            found = await stub.ListCustomers(crm_pb2.ListCustomersRequest(query="CYBERDYNE"),
                                             metadata=md)
            assert [c.name for c in found.customers] == ["Cyberdyne Systems"]
            await expect_code(stub.ListCustomers(crm_pb2.ListCustomersRequest(
                page_token="garbage!"), metadata=md), grpc.StatusCode.INVALID_ARGUMENT)

    run(body)


def test_records_of_another_organization_do_not_exist() -> None:
    async def body(b: Backends) -> None:
        acme, globex = org_md(b, ADMIN), org_md(b, "admin@globex.example")
        async with grpc.aio.insecure_channel(b.addresses["crm"]) as channel:
            stub = crm_pb2_grpc.CrmServiceStub(channel)
            customer = (await stub.ListCustomers(crm_pb2.ListCustomersRequest(page_size=1),
                                                 metadata=acme)).customers[0]
            assert (await stub.GetCustomer(crm_pb2.GetCustomerRequest(id=customer.id),
                                           metadata=acme)).name == customer.name
            await expect_code(stub.GetCustomer(crm_pb2.GetCustomerRequest(id=customer.id),
                                               metadata=globex), grpc.StatusCode.NOT_FOUND)
            await expect_code(stub.UpdateCustomer(crm_pb2.UpdateCustomerRequest(
                customer=crm_pb2.Customer(id=customer.id, name="Hijacked")), metadata=globex),
                grpc.StatusCode.NOT_FOUND)
            await expect_code(stub.DeleteCustomer(crm_pb2.DeleteCustomerRequest(id=customer.id),
                                                  metadata=globex), grpc.StatusCode.NOT_FOUND)
            batch = await stub.BatchGetCustomers(crm_pb2.BatchGetCustomersRequest(
                ids=[customer.id]), metadata=globex)
            assert list(batch.customers) == []
            await expect_code(stub.CreateContact(crm_pb2.CreateContactRequest(
                contact=crm_pb2.Contact(customer_id=customer.id, name="Spy")), metadata=globex),
                grpc.StatusCode.INVALID_ARGUMENT)
            details = await expect_code(stub.GetCustomer(crm_pb2.GetCustomerRequest(
                id=customer.id)), grpc.StatusCode.INVALID_ARGUMENT)
            assert "x-organization-id" in details
        async with grpc.aio.insecure_channel(b.addresses["auth"]) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            acme_user = dict(acme)["x-user-id"]
            await expect_code(stub.GetUser(auth_pb2.GetUserRequest(id=acme_user), metadata=globex),
                              grpc.StatusCode.NOT_FOUND)
            users = await stub.ListUsers(auth_pb2.ListUsersRequest(), metadata=globex)
            assert users.total_size == 2 and acme_user not in {u.id for u in users.users}

    run(body)


def test_crud_validation_field_masks_and_uniqueness() -> None:
    async def body(b: Backends) -> None:
        md = org_md(b, ADMIN)
        async with grpc.aio.insecure_channel(b.addresses["crm"]) as channel:
            crm = crm_pb2_grpc.CrmServiceStub(channel)
            assert (await expect_code(crm.CreateCustomer(crm_pb2.CreateCustomerRequest(
                customer=crm_pb2.Customer(email="x@y.example")), metadata=md),
                grpc.StatusCode.INVALID_ARGUMENT)).startswith("name:")
            created = await crm.CreateCustomer(crm_pb2.CreateCustomerRequest(
                customer=crm_pb2.Customer(name="Hooli", email="ops@hooli.example",
                                          phone="+1 650 555 0100")), metadata=md)
            assert created.status == "lead" and created.organization_id == dict(md)["x-organization-id"]
            updated = await crm.UpdateCustomer(crm_pb2.UpdateCustomerRequest(
                customer=crm_pb2.Customer(id=created.id, status="active", phone=""),
                update_mask=FieldMask(paths=["status"])), metadata=md)
            assert (updated.status, updated.phone) == ("active", "+1 650 555 0100")
            await expect_code(crm.UpdateCustomer(crm_pb2.UpdateCustomerRequest(
                customer=crm_pb2.Customer(id=created.id), update_mask=FieldMask(paths=["id"])),
                metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
            await crm.DeleteCustomer(crm_pb2.DeleteCustomerRequest(id=created.id), metadata=md)
            await expect_code(crm.GetCustomer(crm_pb2.GetCustomerRequest(id=created.id),
                                              metadata=md), grpc.StatusCode.NOT_FOUND)
        async with grpc.aio.insecure_channel(b.addresses["finance"]) as channel:
            fin = finance_pb2_grpc.FinanceServiceStub(channel)
            invoice = (await fin.ListInvoices(finance_pb2.ListInvoicesRequest(page_size=1),
                                              metadata=md)).invoices[0]
            copy = finance_pb2.Invoice(customer_id=invoice.customer_id, number=invoice.number,
                                       lines=[finance_pb2.InvoiceLine(
                                           description="x", quantity="2",
                                           unit_price=Money(currency="USD", amount="1.25"))])
            await expect_code(fin.CreateInvoice(finance_pb2.CreateInvoiceRequest(invoice=copy),
                                                metadata=md), grpc.StatusCode.ALREADY_EXISTS)
            copy.number = "ACME-NEW-1"
            new = await fin.CreateInvoice(finance_pb2.CreateInvoiceRequest(invoice=copy), metadata=md)
            assert (new.total.amount, new.lines[0].amount.amount, new.status) == ("2.50", "2.50", "draft")
        calls = b.servers["finance"].interceptor.calls
        assert calls["/erp.finance.v1.FinanceService/CreateInvoice"] == 2

    run(body)


def test_rotated_keys_both_verify_until_retired() -> None:
    async def body(b: Backends) -> None:
        old_kid = b.auth.keys.current.kid
        before = b.auth.mint_access_token(b.auth.user_by_email(ADMIN).id)
        async with grpc.aio.insecure_channel(b.addresses["auth"]) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            await expect_code(stub.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(),
                                                    metadata=org_md(b, ADMIN)),
                              grpc.StatusCode.PERMISSION_DENIED)
            new_kid = (await stub.RotateSigningKey(auth_pb2.RotateSigningKeyRequest(),
                                                   metadata=org_md(b, "super-admin@acme.example"))).kid
            after = (await stub.Authenticate(auth_pb2.AuthenticateRequest(
                email=ADMIN, password=DEMO_PASSWORD))).access_token
        assert new_kid != old_kid
        jwks, _ = await asyncio.to_thread(http_get, b.jwks_url)
        assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
        assert (await verify(b, before))[0]["kid"] == old_kid
        assert (await verify(b, after))[0]["kid"] == new_kid

    run(body)


def test_retired_key_leaves_jwks_once_its_tokens_expired() -> None:
    now = [1_000_000.0]
    state = AuthState(access_ttl=900, clock=lambda: now[0])
    old = state.keys.current.kid
    new = state.rotate_signing_key()
    now[0] += 900  # a token signed just before rotation is still valid (plus skew margin)
    assert {k["kid"] for k in state.jwks()["keys"]} == {old, new}
    now[0] += 120
    assert [k["kid"] for k in state.jwks()["keys"]] == [new]
