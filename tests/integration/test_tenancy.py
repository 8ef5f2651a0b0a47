"""One organization never reads or changes another's data, whatever id it passes (OWASP API1).

For every resource with a `/{id}` route: an Acme id asked for by a Globex admin is 404 on
GET, PATCH and DELETE, exactly like an id that does not exist, and the Acme row is intact.
"""

from __future__ import annotations


import pytest

from runtime.endpoint import discover
from tests.conftest import login

ITEM_ROUTES = [r for r in discover() if r.path.endswith("/{id}")]
COLLECTIONS = sorted({r.path[: -len("/{id}")] for r in ITEM_ROUTES if r.method == "GET"})


def harmless_patch(route) -> dict:
    """A valid partial body: the first free-text field of the route's schema."""
    for name, spec in route.body.fields.items():
        if spec.type is str and spec.format is None and spec.choices is None:
            return {name: "t" * max(spec.min_length or 1, 3)}
    pytest.fail(f"{route.path}: no free-text field to patch")


@pytest.fixture(scope="module")
def admins(gateway):
    with gateway.client() as c:
        acme = login(c, "admin@acme.example")["access_token"]
        globex = login(c, "admin@globex.example")["access_token"]
    return {"acme": {"Authorization": f"Bearer {acme}"}, "globex": {"Authorization": f"Bearer {globex}"}}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_other_organizations_ids_are_not_found(gateway, admins, collection):
    with gateway.client() as c:
        listed = c.get(collection, headers=admins["acme"])
        assert listed.status_code == 200, listed.text
        items = listed.json()["data"]["items"]
        assert items, f"seed data has no {collection}"
        acme_item = items[0]
        item_path = f"{collection}/{acme_item['id']}"

        for route in (r for r in ITEM_ROUTES if r.path == collection + "/{id}"):
            body = harmless_patch(route) if route.method == "PATCH" else None
            answer = c.request(route.method, item_path, headers=admins["globex"], json=body)
            assert answer.status_code == 404, (route.method, item_path, answer.text)
            assert answer.json()["code"] == "NOT_FOUND"
            # Nothing of the row leaks (the id itself is what the caller sent).
            assert acme_item["organization_id"] not in answer.text
            assert answer.json().get("data") is None

        # Globex's own list never shows Acme rows.
        theirs = c.get(collection, headers=admins["globex"], params={"page_size": 100}).json()["data"]["items"]
        assert all(i["organization_id"] != acme_item["organization_id"] for i in theirs)
        assert acme_item["id"] not in {i["id"] for i in theirs}

        # And the Acme row is untouched.
        again = c.get(item_path, headers=admins["acme"])
        assert again.status_code == 200
        assert again.json()["data"] == acme_item


def test_every_item_route_is_covered():
    assert len(COLLECTIONS) >= 8
    assert {r.method for r in ITEM_ROUTES} >= {"GET", "PATCH", "DELETE"}
