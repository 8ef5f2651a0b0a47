"""The sign-up journey a frontend walks, shared by the integration and e2e tests."""

from __future__ import annotations

import uuid
from typing import Callable

import httpx


def run_auth_journey(new_client: Callable[[], httpx.Client]) -> dict:
    """register -> login -> me -> refresh -> logout -> me (401) -> refresh (401).

    `new_client` gives a fresh connection each call, so that with several Granian workers
    the steps land on different workers (keep-alive pins a connection to one worker).
    """
    tag = uuid.uuid4().hex[:10]
    email = f"grace-{tag}@journey.example"
    password = "a-long-enough-password"
    with new_client() as c:
        registered = c.post(
            "/api/v1/auth/register",
            json={
                "first_name": "Grace", "last_name": "Hopper", "email": email,
                "password": password, "password_confirmation": password,
                "organization_name": f"Journey {tag}", "domain": f"journey-{tag}.example",
            },
        )
    assert registered.status_code == 201, registered.text
    assert registered.json()["data"]["user"]["roles"] == ["admin"]

    with new_client() as c:
        logged_in = c.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert logged_in.status_code == 200, logged_in.text
    tokens = logged_in.json()["data"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    with new_client() as c:
        me = c.get("/api/v1/auth/me", headers=bearer)
    assert me.status_code == 200, me.text
    assert me.json()["data"]["email"] == email
    assert "password" not in me.text

    with new_client() as c:
        refreshed = c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    fresh = refreshed.json()["data"]
    assert fresh["refresh_token"] != tokens["refresh_token"]
    fresh_bearer = {"Authorization": f"Bearer {fresh['access_token']}"}

    with new_client() as c:
        out = c.post("/api/v1/auth/logout", headers=fresh_bearer, json={"refresh_token": fresh["refresh_token"]})
    assert out.status_code == 200, out.text

    # Every worker now refuses the logged-out access token and its refresh token.
    for _ in range(4):
        with new_client() as c:
            after = c.get("/api/v1/auth/me", headers=fresh_bearer)
        assert after.status_code == 401, after.text
        assert after.json()["code"] == "UNAUTHENTICATED"
    with new_client() as c:
        spent = c.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert spent.status_code == 401, spent.text
    return {"email": email, "tokens": tokens, "fresh": fresh}
