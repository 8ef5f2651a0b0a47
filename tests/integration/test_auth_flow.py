"""The auth endpoints end to end against the gateway on Granian and the emulated backends."""

from __future__ import annotations

from tests.conftest import login
from tests.journey import run_auth_journey


def test_journey(gateway):
    done = run_auth_journey(gateway.client)
    # The access token from before the refresh was never logged out, but its refresh
    # token was spent by the rotation: reusing it is refused.
    with gateway.client() as c:
        reuse = c.post("/api/v1/auth/refresh", json={"refresh_token": done["tokens"]["refresh_token"]})
    assert reuse.status_code == 401


def test_logout_without_body_revokes_the_session_refresh_token(http):
    tokens = login(http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.post("/api/v1/auth/logout", headers=bearer).status_code == 200
    assert http.get("/api/v1/auth/me", headers=bearer).status_code == 401
    refused = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 401


def test_logout_needs_a_token(http):
    answer = http.post("/api/v1/auth/logout")
    assert answer.status_code == 401
    assert answer.json()["code"] == "UNAUTHENTICATED"


def test_login_answer_shape(http):
    tokens = login(http, "viewer@acme.example")
    assert set(tokens) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["user"]["roles"] == ["viewer"]
    assert tokens["user"]["organization_id"]


def test_health_needs_nothing(http):
    answer = http.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"success": True, "message": "OK", "data": {"status": "ok"}}


def test_ready_reports_every_dependency(http):
    answer = http.get("/ready")
    assert answer.status_code == 200, answer.text
    report = answer.json()["data"]
    assert report["status"] == "ready"
    assert set(report["dependencies"]) == {"auth", "crm", "hrm", "finance", "valkey"}
    for dependency in report["dependencies"].values():
        assert dependency["status"] == "up"
        assert dependency["latency_ms"] >= 0


def test_logout_revokes_every_access_token_of_the_session(http):
    first = login(http)
    refreshed = http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()["data"]
    older, newer = first["access_token"], refreshed["access_token"]
    assert http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {older}"}).status_code == 200
    assert http.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {newer}"}).status_code == 200
    # The older token of the same session was never presented at logout, yet it is refused.
    assert http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {older}"}).status_code == 401
    other_session = login(http)
    assert http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other_session['access_token']}"}).status_code == 200
