"""Logout ends the presenting session, whatever refresh token the body carries (issue 10, item 2).

Against the gateway on Granian and the emulated auth service: a refresh token of another
session or another user is refused with 400 and that other session keeps working; the
caller's own session ends either way.
"""

from __future__ import annotations

from tests.conftest import login


def refresh(http, token: str) -> int:
    return http.post("/api/v1/auth/refresh", json={"refresh_token": token}).status_code


def logout(http, access: str, body: dict):
    return http.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {access}"}, json=body)


def test_logout_with_another_sessions_refresh_token_is_refused_and_ends_only_the_callers_session(http):
    mine, other = login(http, "manager@acme.example"), login(http, "manager@acme.example")
    answer = logout(http, mine["access_token"], {"refresh_token": other["refresh_token"]})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert body["errors"] == {"refresh_token": ["is not a refresh token of this session"]}
    # The caller's session is over: its access token and its refresh token are refused ...
    assert http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {mine['access_token']}"}).status_code == 401
    assert refresh(http, mine["refresh_token"]) == 401
    # ... and the other session was not touched.
    assert http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"}).status_code == 200
    assert refresh(http, other["refresh_token"]) == 200


def test_logout_with_another_users_refresh_token_leaves_that_user_signed_in(http):
    mine, theirs = login(http, "employee@acme.example"), login(http, "viewer@acme.example")
    answer = logout(http, mine["access_token"], {"refresh_token": theirs["refresh_token"]})
    assert answer.status_code == 400 and answer.json()["errors"]["refresh_token"]
    assert refresh(http, theirs["refresh_token"]) == 200
    assert refresh(http, mine["refresh_token"]) == 401


def test_logout_with_an_unknown_refresh_token_is_refused_and_still_ends_the_session(http):
    mine = login(http, "employee@acme.example")
    answer = logout(http, mine["access_token"], {"refresh_token": "not-a-token-we-issued"})
    assert answer.status_code == 400
    assert refresh(http, mine["refresh_token"]) == 401


def test_logout_with_its_own_refresh_token_ends_the_session(http):
    mine = login(http, "employee@acme.example")
    answer = logout(http, mine["access_token"], {"refresh_token": mine["refresh_token"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] is None  # the contract: logout answers data null
    assert refresh(http, mine["refresh_token"]) == 401
