"""/debug/pprof: off by default, and when on, only for holders of system.debug:read."""

from __future__ import annotations

import threading

import httpx
import pytest

from emulator.processes import stop
from tests.conftest import login
from tests.support import granian_env, start_gateway

ROUTES = ["/debug/pprof/profile?seconds=1", "/debug/pprof/tasks", "/debug/pprof/heap?seconds=1"]


@pytest.fixture(scope="module")
def profiled(stack):
    env = granian_env(stack.environment(), ERP_OBSERVABILITY_PROFILING_ENABLED="true",
                      ERP_OBSERVABILITY_PROFILING_MAX_SECONDS="5s")
    process, url = start_gateway(env)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    stop(process)


def bearer(client: httpx.Client, email: str) -> dict:
    return {"Authorization": "Bearer " + login(client, email)["access_token"]}


@pytest.mark.parametrize("route", ROUTES)
def test_off_by_default_even_for_super_admin(http, route):
    answer = http.get(route, headers=bearer(http, "super-admin@acme.example"))
    assert answer.status_code == 404
    assert answer.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize("route", ROUTES)
def test_refused_without_the_permission(profiled, route):
    assert profiled.get(route).status_code == 401
    answer = profiled.get(route, headers=bearer(profiled, "admin@acme.example"))  # admin: auth.*:* only
    assert answer.status_code == 403
    assert "system.debug:read" in answer.json()["message"]


def test_cpu_profile_sees_the_requests_served_meanwhile(profiled):
    auth = bearer(profiled, "super-admin@acme.example")
    stop_traffic = threading.Event()

    def traffic():
        with httpx.Client(base_url=str(profiled.base_url), timeout=10) as other:
            while not stop_traffic.is_set():
                other.get("/health")

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        answer = profiled.get("/debug/pprof/profile", params={"seconds": 1}, headers=auth)
    finally:
        stop_traffic.set()
        worker.join()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert "function calls" in answer.text
    # The requests served meanwhile went through the pipeline while the profiler ran.
    assert "pipeline.py" in answer.text and "middleware.py" in answer.text


def test_task_dump_lists_the_workers_tasks(profiled):
    answer = profiled.get("/debug/pprof/tasks", headers=bearer(profiled, "super-admin@acme.example"))
    assert answer.status_code == 200, answer.text
    tasks = answer.json()["data"]
    monitor = [t for t in tasks if t["name"] == "health-monitor"]
    assert len(monitor) == 1 and any("health.py" in frame and "_run" in frame for frame in monitor[0]["stack"])
    assert len([t for t in tasks if t["current"]]) == 1  # the request asking


def test_memory_top_allocations(profiled):
    answer = profiled.get("/debug/pprof/heap", params={"seconds": 1}, headers=bearer(profiled, "super-admin@acme.example"))
    assert answer.status_code == 200, answer.text
    report = answer.json()["data"]
    assert report["top"] and all(":" in site["site"] and site["bytes"] > 0 for site in report["top"])


@pytest.mark.parametrize("seconds, problem", [("0", "must be at least 1"), ("6", "must be at most 5"),
                                              ("soon", "must be an integer")])
def test_seconds_out_of_bounds_is_named(profiled, seconds, problem):
    answer = profiled.get("/debug/pprof/profile", params={"seconds": seconds},
                          headers=bearer(profiled, "super-admin@acme.example"))
    assert answer.status_code == 400
    assert answer.json()["errors"]["seconds"] == [problem]


def test_one_profile_at_a_time(profiled):
    auth = bearer(profiled, "super-admin@acme.example")
    answers = []
    first = threading.Thread(target=lambda: answers.append(profiled.get("/debug/pprof/profile?seconds=2", headers=auth)))
    first.start()
    try:
        with httpx.Client(base_url=str(profiled.base_url), timeout=30) as other:
            # Wait until the first profile runs (its task shows in the dump), then ask for another.
            for _ in range(100):
                tasks = other.get("/debug/pprof/tasks", headers=auth).json()["data"]
                if any("cpu_profile" in frame for t in tasks for frame in t["stack"]):
                    break
            second = other.get("/debug/pprof/heap?seconds=1", headers=auth)
    finally:
        first.join()
    assert second.status_code == 409 and second.json()["code"] == "CONFLICT"
    assert answers[0].status_code == 200
