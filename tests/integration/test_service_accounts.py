"""Machine clients: an organization admin creates a service account with scoped grants, the
machine obtains tokens with the client-credentials grant and calls the API with them, within
its grants and its organization only; rotation and deletion cut it off on every request."""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.conftest import login
from tests.integration.test_cache import bearer

ACCOUNTS = "/api/v1/auth/service-accounts"


def create(http, headers, permissions, name=None):
    return http.post(ACCOUNTS, headers=headers, json={"name": name or f"feed-{uuid.uuid4().hex[:8]}",
                                                      "permissions": permissions})


def token(http, account) -> dict:
    answer = http.post("/api/v1/auth/token", json={"grant_type": "client_credentials",
                                                   "client_id": account["client_id"],
                                                   "client_secret": account["client_secret"]})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


@pytest.fixture()
def admin(http):
    return bearer(login(http, "admin@acme.example"))


@pytest.fixture()
def reader(http, admin):
    created = create(http, admin, ["crm.customers:read", "finance.*:read"])
    assert created.status_code == 201, created.text
    return created.json()["data"]


def test_the_secret_is_shown_once_prefixed_and_never_listed(http, admin, reader):
    assert reader["client_secret"].startswith("erp_sk_") and reader["client_id"].startswith("sa_")
    listed = http.get(ACCOUNTS, headers=admin)
    assert listed.status_code == 200
    mine = [a for a in listed.json()["data"]["items"] if a["id"] == reader["id"]]
    assert mine and "client_secret" not in mine[0]
    assert reader["client_secret"] not in listed.text


def test_a_machine_calls_within_its_grants_only(http, reader):
    issued = token(http, reader)
    assert issued["token_type"] == "Bearer" and 0 < issued["expires_in"] <= 900
    machine = {"Authorization": f"Bearer {issued['access_token']}"}
    assert http.get("/api/v1/crm/customers", headers=machine).status_code == 200
    assert http.get("/api/v1/finance/invoices", headers=machine).status_code == 200
    refused = http.post("/api/v1/crm/customers", headers=machine, json={"name": "No", "email": "no@acme.example"})
    assert refused.status_code == 403 and "crm.customers:create" in refused.json()["message"]
    assert http.get("/api/v1/hrm/employees", headers=machine).status_code == 403


def test_basic_credentials_work_and_bad_ones_get_one_answer(http, reader):
    basic = base64.b64encode(f"{reader['client_id']}:{reader['client_secret']}".encode()).decode()
    ok = http.post("/api/v1/auth/token", headers={"Authorization": f"Basic {basic}"},
                   json={"grant_type": "client_credentials"})
    assert ok.status_code == 200, ok.text
    wrong = http.post("/api/v1/auth/token", json={"grant_type": "client_credentials",
                                                  "client_id": reader["client_id"], "client_secret": "erp_sk_nope"})
    unknown = http.post("/api/v1/auth/token", json={"grant_type": "client_credentials",
                                                    "client_id": "sa_unknown", "client_secret": "erp_sk_nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"]
    bad_grant = http.post("/api/v1/auth/token", json={"grant_type": "password"})
    assert bad_grant.status_code == 400 and "grant_type" in bad_grant.json()["errors"]


def test_an_admin_cannot_grant_more_than_they_hold(http):
    sales = bearer(login(http, "admin@acme.example"))
    beyond = create(http, sales, ["crm.customers:read", "*.*:*"])
    assert beyond.status_code == 403
    assert beyond.json()["errors"]["permissions"] == ["*.*:* is beyond your own grants"]
    malformed = create(http, sales, ["crm.customers"])
    assert malformed.status_code == 400 and "permissions" in malformed.json()["errors"]


def test_roles_without_the_permission_cannot_manage_accounts(http):
    viewer = bearer(login(http, "viewer@acme.example"))
    assert create(http, viewer, ["crm.customers:read"]).status_code == 403
    assert http.get(ACCOUNTS, headers=viewer).status_code == 403


def test_rotation_and_deletion_cut_the_machine_off(http, admin, reader):
    old = {"Authorization": f"Bearer {token(http, reader)['access_token']}"}
    rotated = http.post(f"{ACCOUNTS}/{reader['id']}/rotate", headers=admin)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["data"]["client_secret"]
    assert new_secret != reader["client_secret"]
    assert http.get("/api/v1/crm/customers", headers=old).status_code == 401  # old generation revoked
    assert http.post("/api/v1/auth/token", json={"grant_type": "client_credentials", "client_id": reader["client_id"],
                                                 "client_secret": reader["client_secret"]}).status_code == 401
    fresh = {"Authorization": f"Bearer {token(http, {**reader, 'client_secret': new_secret})['access_token']}"}
    assert http.get("/api/v1/crm/customers", headers=fresh).status_code == 200
    assert http.delete(f"{ACCOUNTS}/{reader['id']}", headers=admin).status_code == 200
    assert http.get("/api/v1/crm/customers", headers=fresh).status_code == 401


def test_another_organization_cannot_see_or_touch_the_account(http, reader):
    globex = bearer(login(http, "admin@globex.example"))
    listed = http.get(ACCOUNTS, headers=globex).json()["data"]["items"]
    assert reader["id"] not in {a["id"] for a in listed}
    assert http.delete(f"{ACCOUNTS}/{reader['id']}", headers=globex).status_code == 404
    assert http.post(f"{ACCOUNTS}/{reader['id']}/rotate", headers=globex).status_code == 404
    # And the machine reads its own organization's data only.
    machine = {"Authorization": f"Bearer {token(http, reader)['access_token']}"}
    globex_customer = http.get("/api/v1/crm/customers", headers=globex).json()["data"]["items"][0]["id"]
    assert http.get(f"/api/v1/crm/customers/{globex_customer}", headers=machine).status_code == 404


def test_gw_mints_a_service_account_for_local_work(stack, http):
    from click.testing import CliRunner

    from emulator.cli import main

    minted = CliRunner().invoke(main, ["service-account", "--name", f"local-{uuid.uuid4().hex[:6]}",
                                       "--permission", "hrm.*:read"], env=stack.environment())
    assert minted.exit_code == 0, minted.output
    pairs = dict(line.split("=", 1) for line in minted.output.split())
    machine = {"Authorization": f"Bearer {token(http, pairs)['access_token']}"}
    assert http.get("/api/v1/hrm/employees", headers=machine).status_code == 200
    assert http.get("/api/v1/crm/customers", headers=machine).status_code == 403
