"""GraphQL at /graphql against the real gateway on Granian and the emulated backends.

Security (principal, RBAC, tenancy) is the REST pipeline's; errors carry extensions.code;
a failing field leaves the rest of the answer intact; DataLoaders batch into Batch* RPCs,
counted at the emulator; limits refuse before anything runs.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from emulator.services.faults import NO_FAULT, Fault
from tests.conftest import login

GRAPHQL_RESPONSE = "application/graphql-response+json"


def gql(client, query, token=None, variables=None, accept=GRAPHQL_RESPONSE, **extra):
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return client.post("/graphql", json=body, headers=headers)


def codes(answer) -> list[str]:
    return [e["extensions"]["code"] for e in answer.json().get("errors", [])]


def calls(stack, service: str, method: str) -> int:
    full = {"crm": "CrmService", "hrm": "HrmService", "finance": "FinanceService", "auth": "AuthService"}[service]
    name = f"/erp.{service}.v1.{full}/{method}"
    return stack.call(lambda: stack.stack.backends.servers[service].interceptor.calls[name])


@pytest.fixture(scope="module")
def tokens(gateway):
    with gateway.client() as c:
        return {who: login(c, f"{who}@acme.example")["access_token"] for who in ("admin", "viewer", "employee")} | {
            "globex": login(c, "admin@globex.example")["access_token"]}


def test_me_over_post_with_graphql_response_media_type(http, tokens):
    answer = gql(http, "{ me { email roles { name } organization { domain } } }", tokens["admin"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    me = answer.json()["data"]["me"]
    assert me == {"email": "admin@acme.example", "roles": [{"name": "admin"}], "organization": {"domain": "acme.example"}}


def test_plain_json_clients_get_application_json(http, tokens):
    answer = gql(http, "{ me { email } }", tokens["admin"], accept="application/json")
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"data": {"me": {"email": "admin@acme.example"}}}


def test_get_runs_queries_and_refuses_mutations(http, tokens):
    auth = {"Authorization": f"Bearer {tokens['admin']}", "Accept": GRAPHQL_RESPONSE}
    answer = http.get("/graphql", params={"query": "{ me { email } }"}, headers=auth)
    assert answer.status_code == 200 and answer.json()["data"]["me"]["email"] == "admin@acme.example"
    mutation = 'mutation { deleteCustomer(id: "x") }'
    refused = http.get("/graphql", params={"query": mutation}, headers=auth)
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert codes(refused) == ["METHOD_NOT_ALLOWED"] and "data" not in refused.json()


def test_request_errors_have_codes_and_no_data(http):
    broken = gql(http, "{ me { email ")
    assert broken.status_code == 400 and codes(broken) == ["GRAPHQL_PARSE_FAILED"] and "data" not in broken.json()
    unknown = gql(http, "{ me { salary } }")
    assert unknown.status_code == 400 and codes(unknown) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "salary" in unknown.json()["errors"][0]["message"]
    # The same documents with plain JSON: 200, errors only (the spec's legacy behaviour).
    legacy = gql(http, "{ me { email ", accept="application/json")
    assert legacy.status_code == 200 and codes(legacy) == ["GRAPHQL_PARSE_FAILED"]
    not_json = http.post("/graphql", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and codes(not_json) == ["BAD_REQUEST"]
    missing = http.post("/graphql", json={"variables": {}})
    assert missing.status_code == 400 and "query" in missing.json()["errors"][0]["message"]
    wrong_type = gql(http, "query($n: Int!) { employees(first: $n) { totalCount } }", variables={"n": "ten"})
    assert wrong_type.status_code == 400 and codes(wrong_type) == ["BAD_USER_INPUT"]


def test_anonymous_and_bad_tokens(http):
    anonymous = gql(http, "{ gateway { name } me { email } }")
    assert anonymous.status_code == 200
    assert anonymous.json()["data"] == {"gateway": {"name": "erp-gateway"}, "me": None}
    assert codes(anonymous) == ["UNAUTHENTICATED"]
    forged = gql(http, "{ me { email } }", token="not.a.token")
    assert forged.status_code == 401 and codes(forged) == ["UNAUTHENTICATED"]
    assert forged.headers["www-authenticate"].startswith("Bearer")


def test_a_forbidden_field_leaves_the_rest(http, tokens):
    # viewer: crm.*:read and hrm.departments:read, not hrm.employees:read.
    answer = gql(http, "{ me { email } departments(first: 2) { totalCount } employees(first: 2) { totalCount } }",
                 tokens["viewer"])
    body = answer.json()
    assert answer.status_code == 200
    assert body["data"]["me"]["email"] == "viewer@acme.example"
    assert body["data"]["departments"]["totalCount"] > 0 and body["data"]["employees"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and error["path"] == ["employees"]
    assert "hrm.employees:read" in error["message"]


def test_mutations_are_checked_whole_before_they_run(http, tokens, stack):
    before = calls(stack, "crm", "CreateCustomer")
    # viewer may not create customers: nothing runs, not even the allowed logout beside it.
    answer = gql(http, 'mutation { createCustomer(input: {name: "X"}) { id } logout { revoked } }', tokens["viewer"])
    assert answer.status_code == 403 and codes(answer) == ["FORBIDDEN"] and "data" not in answer.json()
    assert calls(stack, "crm", "CreateCustomer") == before
    assert gql(http, "{ me { email } }", tokens["viewer"]).json()["data"]["me"]  # not logged out


def test_a_backend_failure_in_one_field_leaves_the_rest(http, tokens, stack):
    finance = stack.stack.backends.servers["finance"].interceptor
    stack.call(setattr, finance, "fault", Fault(error_rate=1.0))
    try:
        answer = gql(http, "{ me { email } invoices(first: 1, status: \"paid\") { totalCount } "
                           "customers(first: 1) { totalCount } }", tokens["admin"])
    finally:
        stack.call(setattr, finance, "fault", NO_FAULT)
    body = answer.json()
    assert answer.status_code == 200
    assert body["data"]["me"]["email"] == "admin@acme.example" and body["data"]["customers"]["totalCount"] > 0
    assert body["data"]["invoices"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["invoices"], "BACKEND_UNAVAILABLE")]


def test_bad_arguments_are_bad_user_input_naming_the_field(http, tokens):
    answer = gql(http, 'mutation { createEmployee(input: {firstName: "", lastName: "Doe"}) { id } }', tokens["admin"])
    [error] = answer.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "first_name" in error["extensions"]["errors"]
    too_many = gql(http, "{ employees(first: 500) { totalCount } }", tokens["admin"])
    assert codes(too_many) == ["BAD_USER_INPUT"] and "first" in too_many.json()["errors"][0]["extensions"]["errors"]


def test_other_organizations_records_are_not_found(http, tokens):
    acme_employee = gql(http, "{ employees(first: 1) { nodes { id } } }", tokens["admin"]).json()
    employee_id = acme_employee["data"]["employees"]["nodes"][0]["id"]
    answer = gql(http, "query($id: ID!) { employee(id: $id) { id } }", tokens["globex"], {"id": employee_id})
    assert answer.json()["data"]["employee"] is None and codes(answer) == ["NOT_FOUND"]
    globex = gql(http, "{ employees(first: 100) { nodes { id } } }", tokens["globex"]).json()
    assert employee_id not in {n["id"] for n in globex["data"]["employees"]["nodes"]}


def test_relay_cursors_page_through_everything(http, tokens):
    query = "query($after: String) { customers(first: 2, after: $after) { totalCount edges { cursor node { id } } " \
            "pageInfo { hasNextPage endCursor } } }"
    seen, after = [], None
    while True:
        page = gql(http, query, tokens["admin"], {"after": after}).json()["data"]["customers"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    rest = http.get("/api/v1/crm/customers", params={"page_size": 100},
                    headers={"Authorization": f"Bearer {tokens['admin']}"}).json()["data"]
    assert seen == [c["id"] for c in rest["items"]] and len(seen) == page["totalCount"] > 2
    bad = gql(http, query, tokens["admin"], {"after": "garbage"})
    assert codes(bad) == ["BAD_USER_INPUT"]


def test_writes_invalidate_the_rest_cache_they_share(http, tokens):
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    assert http.get("/api/v1/crm/customers", params={"page_size": 100}, headers=auth).status_code == 200
    name = f"GraphQL Customer {uuid.uuid4().hex[:8]}"
    created = gql(http, "mutation($n: String!) { createCustomer(input: {name: $n}) { id name status } }",
                  tokens["admin"], {"n": name}).json()["data"]["createCustomer"]
    assert created["name"] == name and created["status"] == "lead"
    listed = http.get("/api/v1/crm/customers", params={"page_size": 100}, headers=auth)
    assert listed.headers["x-cache"] == "MISS" and name in {c["name"] for c in listed.json()["data"]["items"]}
    updated = gql(http, 'mutation($id: ID!) { updateCustomer(id: $id, input: {status: "active"}) { status } }',
                  tokens["admin"], {"id": created["id"]}).json()["data"]["updateCustomer"]
    assert updated == {"status": "active"}
    assert gql(http, "mutation($id: ID!) { deleteCustomer(id: $id) }", tokens["admin"],
               {"id": created["id"]}).json()["data"] == {"deleteCustomer": True}
    assert http.get(f"/api/v1/crm/customers/{created['id']}", headers=auth).status_code == 404


def test_sign_in_flows(http):
    signed = gql(http, 'mutation { login(email: "employee@acme.example", password: "demo-pass-123") '
                       "{ accessToken refreshToken tokenType user { email } } }").json()["data"]["login"]
    assert signed["tokenType"] == "Bearer" and signed["user"]["email"] == "employee@acme.example"
    wrong = gql(http, 'mutation { login(email: "employee@acme.example", password: "nope") { accessToken } }')
    assert codes(wrong) == ["UNAUTHENTICATED"]
    renewed = gql(http, "mutation($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken } }",
                  variables={"t": signed["refreshToken"]}).json()["data"]["refresh"]
    assert gql(http, "mutation { logout { revoked } }", renewed["accessToken"]).json()["data"]["logout"]["revoked"]
    assert gql(http, "{ me { email } }", renewed["accessToken"]).status_code == 401
    domain = f"gql{uuid.uuid4().hex[:8]}.example"
    registered = gql(http, "mutation($i: RegisterInput!) { register(input: $i) { user { email roles { name } } } }",
                     variables={"i": {"firstName": "Ada", "lastName": "L", "email": f"ada@{domain}",
                                      "password": "a-long-pass-123", "passwordConfirmation": "a-long-pass-123",
                                      "organizationName": "Gql Org", "domain": domain}}).json()
    assert registered["data"]["register"]["user"] == {"email": f"ada@{domain}", "roles": [{"name": "admin"}]}


def test_fifty_employees_with_department_and_manager_make_three_backend_calls(http, stack):
    domain = f"batch{uuid.uuid4().hex[:8]}.example"
    admin = http.post("/api/v1/auth/register", json={
        "first_name": "Bea", "last_name": "Batch", "email": f"bea@{domain}", "password": "a-long-pass-123",
        "password_confirmation": "a-long-pass-123", "organization_name": "Batch Org", "domain": domain,
    }).json()["data"]["access_token"]
    auth = {"Authorization": f"Bearer {admin}"}

    def create(path, body):
        answer = http.post(path, json=body, headers=auth)
        assert answer.status_code == 201, answer.text
        return answer.json()["data"]["id"]

    departments = [create("/api/v1/hrm/departments", {"name": f"Dept {i}"}) for i in range(3)]
    managers = [create("/api/v1/hrm/employees", {"first_name": f"Boss{i}", "last_name": "M",
                                                 "department_id": departments[i]}) for i in range(3)]
    for i in range(47):
        create("/api/v1/hrm/employees", {"first_name": f"E{i}", "last_name": "W", "department_id": departments[i % 3],
                                         "manager_id": managers[i % 3]})
    query = "{ employees(first: 50) { totalCount nodes { firstName department { name } manager { firstName } } } }"
    counted = ("ListEmployees", "BatchGetDepartments", "BatchGetEmployees", "GetEmployee", "GetDepartment")
    before = {m: calls(stack, "hrm", m) for m in counted}
    body = gql(http, query, admin).json()
    after = {m: calls(stack, "hrm", m) for m in counted}
    assert "errors" not in body
    nodes = body["data"]["employees"]["nodes"]
    assert len(nodes) == 50 and sum(1 for n in nodes if n["manager"]) == 47
    assert all(n["department"]["name"].startswith("Dept") for n in nodes)
    assert {m: after[m] - before[m] for m in counted} == {
        "ListEmployees": 1, "BatchGetDepartments": 1, "BatchGetEmployees": 1, "GetEmployee": 0, "GetDepartment": 0}


def test_limits_refuse_before_execution(http, tokens, stack):
    deep = "{ me { organization { name } } " + "employees(first: 1) { nodes { " + "manager { " * 9 + "id" + \
           " }" * 9 + " } } }"
    answer = gql(http, deep, tokens["admin"])
    assert answer.status_code == 400 and codes(answer) == ["QUERY_TOO_DEEP"]
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    assert codes(gql(http, aliases, tokens["admin"])) == ["TOO_MANY_ALIASES"]
    before = calls(stack, "hrm", "ListEmployees")
    costly = "{ employees(first: 100) { nodes { department { employees(first: 100) { nodes { id } } } } } }"
    answer = gql(http, costly, tokens["admin"])
    assert answer.status_code == 400 and codes(answer) == ["QUERY_TOO_COMPLEX"]
    assert answer.json()["errors"][0]["extensions"]["actual"] > 10_000
    assert calls(stack, "hrm", "ListEmployees") == before  # nothing ran
    huge = "{ me { id } }" + " " * 20_000
    assert codes(gql(http, huge, tokens["admin"])) == ["DOCUMENT_TOO_LARGE"]
    tokens_ = "{ " + "me { id } " * 700 + "}"
    assert codes(gql(http, tokens_, tokens["admin"])) == ["TOO_MANY_TOKENS"]


def test_automatic_persisted_queries(http, tokens):
    query = "{ me { email } } # " + uuid.uuid4().hex
    sha = hashlib.sha256(query.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    auth = {"Authorization": f"Bearer {tokens['admin']}", "Accept": GRAPHQL_RESPONSE}
    unknown = http.post("/graphql", json={"extensions": ext}, headers=auth)
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
    mismatch = http.post("/graphql", json={"query": query + " ", "extensions": ext}, headers=auth)
    assert mismatch.status_code == 400 and "does not match" in mismatch.json()["errors"][0]["message"]
    registered = http.post("/graphql", json={"query": query, "extensions": ext}, headers=auth)
    assert registered.json()["data"]["me"]["email"] == "admin@acme.example"
    import json
    by_hash = http.get("/graphql", params={"extensions": json.dumps(ext)}, headers=auth)
    assert by_hash.status_code == 200 and by_hash.json()["data"]["me"]["email"] == "admin@acme.example"


def test_introspection_is_on_by_default(http):
    answer = gql(http, "{ __schema { queryType { name } } }")
    assert answer.json()["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.fixture(scope="module")
def limited(stack):
    """A gateway with a user budget of 4 requests and a login budget of 2 per email and IP."""
    from emulator.processes import stop
    from tests.support import granian_env, start_gateway

    process, url = start_gateway(granian_env(stack.environment(), ERP_RATE_LIMITS_POLICIES_USER_LIMIT="4",
                                             ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT="2"))
    yield url
    stop(process)


def test_the_rate_limits_of_rest_apply(limited):
    import httpx

    with httpx.Client(base_url=limited, timeout=10) as http:
        token = login(http, "manager@acme.example")["access_token"]
        # The budget counts every request, a refused one too, whether or not it reads the cache.
        answers = [gql(http, "{ me { email } }", token), gql(http, "{ me { nope } }", token),
                   gql(http, "{ departments(first: 1) { totalCount } }", token), gql(http, "{ me { email } }", token),
                   gql(http, "{ me { email } }", token)]
        assert [a.status_code for a in answers] == [200, 400, 200, 200, 429]
        assert answers[0].headers["ratelimit-limit"] == "4" and answers[3].headers["ratelimit-remaining"] == "0"
        assert codes(answers[4]) == ["RATE_LIMITED"] and int(answers[4].headers["retry-after"]) > 0
        assert "data" not in answers[4].json()
        # Signing in through GraphQL counts against the same per-email login budget as REST.
        mutation = 'mutation { login(email: "viewer@acme.example", password: "wrong-password") { accessToken } }'
        tries = [codes(gql(http, mutation)) for _ in range(3)]
        assert tries == [["UNAUTHENTICATED"], ["UNAUTHENTICATED"], ["RATE_LIMITED"]]
