"""User and role management over REST and GraphQL, against the gateway on Granian and the
emulated auth service: an organization admin manages its own organization's users only,
nobody grants (or takes away) more than they hold, and a change of roles or a deactivation
reaches the user's very next request (their tokens are refused, their cached profile
dropped), on REST and GraphQL alike. The demo users keep their roles: these tests change
only users they create."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import login
from tests.integration.test_graphql import codes, gql

USERS = "/api/v1/auth/users"
NEW_PASSWORD = "new-member-pass-1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def tokens(gateway):
    with gateway.client() as c:
        return {who: login(c, f"{who}@acme.example")["access_token"]
                for who in ("admin", "manager", "super-admin")} | {
            "globex": login(c, "admin@globex.example")["access_token"]}


def new_member(http, admin_token, roles=None, **fields) -> dict:
    body = {"email": f"member-{uuid.uuid4().hex[:10]}@acme.example", "first_name": "New", "last_name": "Member",
            "password": NEW_PASSWORD, **fields}
    if roles is not None:
        body["roles"] = roles
    created = http.post(USERS, headers=bearer(admin_token), json=body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"{USERS}/{created.json()['data']['id']}"
    return created.json()["data"]


def test_an_admin_creates_lists_reads_and_renames_users_of_its_organization(http, tokens):
    member = new_member(http, tokens["admin"])
    assert member["roles"] == ["employee"] and member["is_active"] is True and "password" not in member
    headers = bearer(tokens["admin"])
    listed = http.get(USERS, headers=headers, params={"page_size": 100})
    assert listed.status_code == 200
    emails = {u["email"] for u in listed.json()["data"]["items"]}
    assert member["email"] in emails and "admin@acme.example" in emails
    assert not any(e.endswith("@globex.example") for e in emails)
    assert http.get(f"{USERS}/{member['id']}", headers=headers).json()["data"]["email"] == member["email"]
    renamed = http.patch(f"{USERS}/{member['id']}", headers=headers, json={"last_name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["data"]["last_name"] == "Renamed" and renamed.json()["data"]["first_name"] == "New"
    # The new member signs in with the password the admin set.
    assert login(http, member["email"], NEW_PASSWORD)["user"]["id"] == member["id"]


def test_a_role_change_reaches_the_users_next_request(http, tokens):
    member = new_member(http, tokens["admin"])
    session = login(http, member["email"], NEW_PASSWORD)
    own = bearer(session["access_token"])
    # Cached profile and a refused write before the change.
    assert http.get("/api/v1/auth/me", headers=own).json()["data"]["roles"] == ["employee"]
    assert http.get("/api/v1/auth/me", headers=own).headers["X-Cache"] == "HIT"
    assert http.post("/api/v1/crm/customers", headers=own, json={"name": "Not yet"}).status_code == 403

    granted = http.post(f"{USERS}/{member['id']}/roles", headers=bearer(tokens["admin"]), json={"role": "manager"})
    assert granted.status_code == 200, granted.text
    assert sorted(granted.json()["data"]["roles"]) == ["employee", "manager"]

    # The token with the old roles is refused at once (not in 15 minutes), REST and GraphQL;
    # its refresh token is dead too.
    assert http.get("/api/v1/auth/me", headers=own).status_code == 401
    assert codes(gql(http, "{ me { email } }", session["access_token"])) == ["UNAUTHENTICATED"]
    assert http.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    # Signing in again gives the new roles, and the profile is not the cached old one.
    again = bearer(login(http, member["email"], NEW_PASSWORD)["access_token"])
    me = http.get("/api/v1/auth/me", headers=again)
    assert sorted(me.json()["data"]["roles"]) == ["employee", "manager"] and me.headers["X-Cache"] == "MISS"
    assert http.post("/api/v1/crm/customers", headers=again, json={"name": "Now allowed"}).status_code == 201

    revoked = http.delete(f"{USERS}/{member['id']}/roles/manager", headers=bearer(tokens["admin"]))
    assert revoked.status_code == 200 and revoked.json()["data"]["roles"] == ["employee"]
    assert http.get("/api/v1/auth/me", headers=again).status_code == 401
    # Revoking a role not held changes nothing and ends no session.
    third = bearer(login(http, member["email"], NEW_PASSWORD)["access_token"])
    assert http.delete(f"{USERS}/{member['id']}/roles/manager", headers=bearer(tokens["admin"])).status_code == 200
    assert http.get("/api/v1/auth/me", headers=third).status_code == 200


def test_deactivation_ends_every_session_and_sign_in(http, tokens):
    member = new_member(http, tokens["admin"])
    session = login(http, member["email"], NEW_PASSWORD)
    off = http.patch(f"{USERS}/{member['id']}", headers=bearer(tokens["admin"]), json={"is_active": False})
    assert off.status_code == 200 and off.json()["data"]["is_active"] is False
    assert http.get("/api/v1/auth/me", headers=bearer(session["access_token"])).status_code == 401
    assert http.post("/api/v1/auth/login", json={"email": member["email"], "password": NEW_PASSWORD}).status_code == 401
    on = http.patch(f"{USERS}/{member['id']}", headers=bearer(tokens["admin"]), json={"is_active": True})
    assert on.status_code == 200 and on.json()["data"]["is_active"] is True
    assert login(http, member["email"], NEW_PASSWORD)["user"]["id"] == member["id"]


def test_without_the_permission_it_is_forbidden(http, tokens):
    member = new_member(http, tokens["admin"])
    manager = bearer(tokens["manager"])
    for answer in (http.get(USERS, headers=manager),
                   http.post(USERS, headers=manager, json={"email": "x@acme.example", "first_name": "X",
                                                           "last_name": "Y", "password": NEW_PASSWORD}),
                   http.patch(f"{USERS}/{member['id']}", headers=manager, json={"first_name": "Z"}),
                   http.post(f"{USERS}/{member['id']}/roles", headers=manager, json={"role": "viewer"}),
                   http.delete(f"{USERS}/{member['id']}/roles/employee", headers=manager)):
        assert answer.status_code == 403, answer.text
        assert answer.json()["code"] == "FORBIDDEN"


def test_another_organizations_users_are_not_found(http, tokens):
    member = new_member(http, tokens["admin"])
    globex = bearer(tokens["globex"])
    for answer in (http.get(f"{USERS}/{member['id']}", headers=globex),
                   http.patch(f"{USERS}/{member['id']}", headers=globex, json={"is_active": False}),
                   http.post(f"{USERS}/{member['id']}/roles", headers=globex, json={"role": "admin"}),
                   http.delete(f"{USERS}/{member['id']}/roles/employee", headers=globex)):
        assert answer.status_code == 404, answer.text
    assert login(http, member["email"], NEW_PASSWORD)["user"]["is_active"] is True
    listed = http.get(USERS, headers=globex, params={"page_size": 100}).json()["data"]["items"]
    assert member["id"] not in {u["id"] for u in listed}


def test_nobody_grants_above_their_own_nor_touches_a_superior_or_themselves(http, tokens):
    admin = bearer(tokens["admin"])
    member = new_member(http, tokens["admin"])
    above = http.post(f"{USERS}/{member['id']}/roles", headers=admin, json={"role": "super_admin"})
    assert above.status_code == 403 and above.json()["errors"]["role"] == ["super_admin grants more than you hold"]
    created = http.post(USERS, headers=admin, json={"email": f"boss-{uuid.uuid4().hex[:8]}@acme.example",
                                                    "first_name": "B", "last_name": "O", "password": NEW_PASSWORD,
                                                    "roles": ["viewer", "super_admin"]})
    assert created.status_code == 403 and list(created.json()["errors"]) == ["roles"]
    superior = login(http, "super-admin@acme.example")["user"]
    demote = http.delete(f"{USERS}/{superior['id']}/roles/super_admin", headers=admin)
    assert demote.status_code == 403 and "id" in demote.json()["errors"]
    disable = http.patch(f"{USERS}/{superior['id']}", headers=admin, json={"is_active": False})
    assert disable.status_code == 403
    me = http.get("/api/v1/auth/me", headers=admin).json()["data"]
    own = http.delete(f"{USERS}/{me['id']}/roles/admin", headers=admin)
    assert own.status_code == 403 and "role" in own.json()["errors"]
    assert http.patch(f"{USERS}/{me['id']}", headers=admin, json={"is_active": False}).status_code == 403
    # The super admin may grant it (and it is theirs to grant).
    up = http.post(f"{USERS}/{member['id']}/roles", headers=bearer(tokens["super-admin"]), json={"role": "super_admin"})
    assert up.status_code == 200 and "super_admin" in up.json()["data"]["roles"]


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", USERS, {"email": "not-an-email", "first_name": "A", "last_name": "B", "password": NEW_PASSWORD}, "email"),
    ("post", USERS, {"email": "short@acme.example", "first_name": "A", "last_name": "B", "password": "short"},
     "password"),
    ("post", USERS, {"email": "r@acme.example", "first_name": "A", "last_name": "B", "password": NEW_PASSWORD,
                     "roles": ["wizard"]}, "roles"),
    ("post", USERS, {"email": "r@acme.example", "first_name": "A", "last_name": "B", "password": NEW_PASSWORD,
                     "roles": "employee"}, "roles"),
    ("post", USERS, {"email": "admin@acme.example", "first_name": "A", "last_name": "B", "password": NEW_PASSWORD},
     "email"),
    ("patch", "{member}", {"is_active": "no"}, "is_active"),
    ("patch", "{member}", {"first_name": ""}, "first_name"),
    ("patch", "{member}", {"email": "new@acme.example"}, "email"),
    ("post", "{member}/roles", {"role": "wizard"}, "role"),
    ("post", "{member}/roles", {}, "role"),
    ("delete", "{member}/roles/wizard", None, "role"),
])
def test_bad_input_names_the_field(http, tokens, method, path, body, field):
    member = new_member(http, tokens["admin"])
    url = path.replace("{member}", f"{USERS}/{member['id']}")
    kwargs = {"json": body} if body is not None else {}
    answer = http.request(method.upper(), url, headers=bearer(tokens["admin"]), **kwargs)
    assert answer.status_code in (400, 409), answer.text
    assert field in answer.json()["errors"], answer.text


# -- GraphQL ---------------------------------------------------------------------------------

CREATE = """mutation($input: CreateUserInput!) { createUser(input: $input) { id email isActive roles { name } } }"""
ASSIGN = """mutation($id: ID!, $role: String!) { assignRole(userId: $id, role: $role) { id roles { name } } }"""
REVOKE = """mutation($id: ID!, $role: String!) { revokeRole(userId: $id, role: $role) { id roles { name } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id lastName isActive } }"""


def test_graphql_user_and_role_mutations(http, tokens):
    email = f"gql-{uuid.uuid4().hex[:10]}@acme.example"
    created = gql(http, CREATE, tokens["admin"], {"input": {"email": email, "firstName": "G", "lastName": "Q",
                                                           "password": NEW_PASSWORD, "roles": ["viewer"]}})
    assert "errors" not in created.json(), created.text
    user = created.json()["data"]["createUser"]
    assert user["email"] == email and user["roles"] == [{"name": "viewer"}] and user["isActive"]
    session = login(http, email, NEW_PASSWORD)
    assigned = gql(http, ASSIGN, tokens["admin"], {"id": user["id"], "role": "employee"})
    assert assigned.json()["data"]["assignRole"]["roles"] == [{"name": "viewer"}, {"name": "employee"}]
    assert codes(gql(http, "{ me { email } }", session["access_token"])) == ["UNAUTHENTICATED"]
    fresh = login(http, email, NEW_PASSWORD)["access_token"]
    me = gql(http, "{ me { roles { name } } }", fresh).json()["data"]["me"]
    assert me == {"roles": [{"name": "viewer"}, {"name": "employee"}]}
    revoked = gql(http, REVOKE, tokens["admin"], {"id": user["id"], "role": "viewer"})
    assert revoked.json()["data"]["revokeRole"]["roles"] == [{"name": "employee"}]
    updated = gql(http, UPDATE, tokens["admin"], {"id": user["id"], "input": {"lastName": "L", "isActive": False}})
    assert updated.json()["data"]["updateUser"] == {"id": user["id"], "lastName": "L", "isActive": False}


def test_graphql_forbidden_other_organization_and_escalation(http, tokens):
    member = new_member(http, tokens["admin"])
    # Without the permission: the mutation is checked whole before it runs.
    assert codes(gql(http, ASSIGN, tokens["manager"], {"id": member["id"], "role": "viewer"})) == ["FORBIDDEN"]
    assert codes(gql(http, ASSIGN, tokens["globex"], {"id": member["id"], "role": "viewer"})) == ["NOT_FOUND"]
    above = gql(http, ASSIGN, tokens["admin"], {"id": member["id"], "role": "super_admin"})
    assert codes(above) == ["FORBIDDEN"] and above.json()["data"] == {"assignRole": None}
    assert "role" in above.json()["errors"][0]["extensions"]["errors"]


def test_graphql_bad_input_is_bad_user_input_naming_the_field(http, tokens):
    member = new_member(http, tokens["admin"])
    bad = gql(http, CREATE, tokens["admin"], {"input": {"email": "nope", "firstName": "A", "lastName": "B",
                                                       "password": "short"}})
    assert codes(bad) == ["BAD_USER_INPUT"]
    assert set(bad.json()["errors"][0]["extensions"]["errors"]) == {"email", "password"}
    unknown = gql(http, ASSIGN, tokens["admin"], {"id": member["id"], "role": "wizard"})
    assert codes(unknown) == ["BAD_USER_INPUT"] and "role" in unknown.json()["errors"][0]["extensions"]["errors"]
    empty = gql(http, UPDATE, tokens["admin"], {"id": member["id"], "input": {"firstName": ""}})
    assert codes(empty) == ["BAD_USER_INPUT"] and "first_name" in empty.json()["errors"][0]["extensions"]["errors"]
