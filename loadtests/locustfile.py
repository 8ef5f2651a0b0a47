"""A signed-in user's journey through the gateway, for correctness under load.

Start the gateway with its stand-in backends and rate limits raised past what the journey
sends (the defaults, 60 anonymous requests a minute per IP and 10 logins per email, would
turn it into a test of the limiter), then run Locust headless; it stops by itself after 30 s
and exits non-zero if any request failed:

    ERP_RATE_LIMITS_POLICIES_ANONYMOUS_LIMIT=100000 ERP_RATE_LIMITS_POLICIES_LOGIN_LIMIT=100000 \
        ERP_RATE_LIMITS_POLICIES_USER_LIMIT=100000 gw serve
    locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 30s --host http://127.0.0.1:8080

Journeys, as frontends make them (their shares and think time are `WEIGHTS` and `THINK`):
- `SignedInUser`: signs in once, then mostly reads its profile, sometimes checks /health and
  occasionally rotates its tokens. Users take the demo accounts in turn, so the journey spans
  roles and both organizations.
- `CustomerEditor`: a sales manager browsing, opening, creating, editing and deleting customers.
- `NotificationListener`: holds a WebSocket on /ws (first-frame auth, as a browser does), sends
  itself notifications through REST and times each one until it arrives on the socket (the
  `WS` rows: `notification` is publish-to-delivery time).
Every answer must be a 2xx with the envelope's `success: true`.
Against another deployment, set LOCUST_EMAIL and LOCUST_PASSWORD (one account for all users).

Locust in one process tops out at a few thousand req/s: use it for journeys, and
`python -m loadtests.bench` (wrk) for throughput ceilings.
"""

from __future__ import annotations

import itertools
import os
import time

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser


def _password() -> str:
    if "LOCUST_PASSWORD" in os.environ:
        return os.environ["LOCUST_PASSWORD"]
    from emulator.services.seed import DEMO_PASSWORD  # the emulator's development password

    return DEMO_PASSWORD


def _email() -> str:
    """LOCUST_EMAIL, or the emulator's demo users in turn."""
    if "LOCUST_EMAIL" in os.environ:
        return os.environ["LOCUST_EMAIL"]
    from emulator.services.seed import DEMO_USERS

    return DEMO_USERS[next(_turn) % len(DEMO_USERS)][0]


_turn = itertools.count()


def _check(response) -> dict | None:
    """Fail the request unless it is a 2xx whose envelope says success; return `data`."""
    try:
        envelope = response.json()
    except Exception:
        response.failure(f"HTTP {response.status_code}, not JSON: {(response.text or '')[:200]}")
        return None
    if not 200 <= response.status_code < 300 or envelope.get("success") is not True:
        response.failure(f"HTTP {response.status_code}: {envelope.get('code')} {envelope.get('message')}")
        return None
    response.success()
    return envelope.get("data")


# Every journey's share of the simulated users and its think time, in one place.
WEIGHTS = {"profile": 4, "customers": 3, "notifications": 1}
THINK = between(0.1, 1.0)


class _SignedIn(FastHttpUser):
    """Signs in once on start; the journeys below add their tasks."""

    abstract = True
    wait_time = THINK
    email: str | None = None  # None: the demo users in turn

    def on_start(self) -> None:
        credentials = {"email": self.email or _email(), "password": _password()}
        with self.client.post("/api/v1/auth/login", json=credentials, catch_response=True) as response:
            data = _check(response)
        if data is None:
            raise StopUser()  # without a token every other task would only measure 401s
        self._signed_in(data)

    def _signed_in(self, data: dict) -> None:
        self.refresh_token = data["refresh_token"]
        self.auth = {"Authorization": f"Bearer {data['access_token']}"}


class SignedInUser(_SignedIn):
    """Mostly reads its profile, sometimes checks /health and occasionally rotates its tokens."""

    weight = WEIGHTS["profile"]

    @task(10)
    def me(self) -> None:
        with self.client.get("/api/v1/auth/me", headers=self.auth, catch_response=True) as response:
            _check(response)

    @task(3)
    def health(self) -> None:
        with self.client.get("/health", catch_response=True) as response:
            _check(response)

    @task(1)
    def refresh(self) -> None:
        # Refresh tokens are single use: keep the rotated pair, or the next refresh is reuse.
        body = {"refresh_token": self.refresh_token}
        with self.client.post("/api/v1/auth/refresh", json=body, catch_response=True) as response:
            data = _check(response)
        if data is not None:
            self._signed_in(data)


class CustomerEditor(_SignedIn):
    """A sales manager browsing the customer list, opening customers and editing the ones
    they created: list -> get -> create -> update -> delete, every answer checked."""

    weight = WEIGHTS["customers"]
    email = os.environ.get("LOCUST_EDITOR_EMAIL", "sales-manager@acme.example")

    def on_start(self) -> None:
        super().on_start()
        self.mine: list[str] = []

    @task(6)
    def browse(self) -> None:
        with self.client.get("/api/v1/crm/customers?page_size=20", headers=self.auth, name="/api/v1/crm/customers",
                             catch_response=True) as response:
            page = _check(response)
        if page and page["items"]:
            customer = page["items"][len(self.mine) % len(page["items"])]["id"]
            with self.client.get(f"/api/v1/crm/customers/{customer}", headers=self.auth,
                                 name="/api/v1/crm/customers/{id}", catch_response=True) as response:
                _check(response)

    @task(2)
    def create(self) -> None:
        body = {"name": f"Locust {next(_turn)}", "email": "journey@locust.example", "status": "lead"}
        with self.client.post("/api/v1/crm/customers", json=body, headers=self.auth, catch_response=True) as response:
            created = _check(response)
        if created:
            self.mine.append(created["id"])

    @task(2)
    def update(self) -> None:
        if self.mine:
            with self.client.patch(f"/api/v1/crm/customers/{self.mine[-1]}", json={"status": "prospect"},
                                   headers=self.auth, name="/api/v1/crm/customers/{id}", catch_response=True) as r:
                _check(r)

    @task(1)
    def delete(self) -> None:
        if self.mine:
            with self.client.delete(f"/api/v1/crm/customers/{self.mine.pop(0)}", headers=self.auth,
                                    name="/api/v1/crm/customers/{id}", catch_response=True) as r:
                _check(r)


class NotificationListener(_SignedIn):
    """A frontend tab: one WebSocket, notifications published to itself through REST and timed
    until they arrive. A lost or late (5 s) notification is a failure."""

    weight = WEIGHTS["notifications"]
    email = os.environ.get("LOCUST_LISTENER_EMAIL")

    def on_start(self) -> None:
        import json

        from websockets.sync.client import connect

        super().on_start()
        url = (self.host or "").replace("http", "ws", 1) + "/ws"
        started = time.perf_counter()
        try:
            self.socket = connect(url, open_timeout=10)
            self.socket.send(json.dumps({"type": "auth", "token": self.auth["Authorization"][7:]}))
            hello = json.loads(self.socket.recv(timeout=10))
            self.channel = next(c for c in hello["channels"] if c.startswith("notifications:"))
            self._report("connect", started, None if hello.get("type") == "connected" else f"got {hello}")
        except Exception as exc:  # every failure is a failed request in the report
            self._report("connect", started, exc)
            raise StopUser() from exc

    def on_stop(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()

    def _report(self, name: str, started: float, error: object) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - started) * 1000,
            response_length=0, exception=None if error is None else Exception(str(error)), context={})

    @task
    def notify_myself(self) -> None:
        import json

        marker = f"locust-{next(_turn)}"
        body = {"channel": self.channel, "data": {"marker": marker}}
        started = time.perf_counter()
        with self.client.post("/api/v1/notifications", json=body, headers=self.auth, catch_response=True) as r:
            if _check(r) is None:
                return
        deadline = started + 5
        try:
            while time.perf_counter() < deadline:
                frame = json.loads(self.socket.recv(timeout=max(0.01, deadline - time.perf_counter())))
                if frame.get("type") == "ping":
                    self.socket.send(json.dumps({"type": "pong"}))
                elif frame.get("type") == "message" and frame["data"].get("marker") == marker:
                    self._report("notification", started, None)
                    return
            self._report("notification", started, "not delivered within 5 s")
        except Exception as exc:
            self._report("notification", started, exc)
