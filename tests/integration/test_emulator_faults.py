"""Faults in the emulated backends: latency, error rate, kill and restart, `gw backends --fault`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulator.ports import free_port
from emulator.services import crm
from emulator.services.faults import NO_FAULT, Fault, merge, parse_fault
from proto.erp.crm.v1 import crm_pb2, crm_pb2_grpc
from tests.support import GW, clean_env, poll_ready

ORG = (("x-organization-id", "org-1"),)


@pytest.mark.parametrize("spec, service, fault", [
    ("crm=latency:2s", "crm", Fault(latency=2.0)),
    ("hrm=error:0.5", "hrm", Fault(error_rate=0.5)),
    ("hrm=error:1:internal", "hrm", Fault(error_rate=1.0, error_code=grpc.StatusCode.INTERNAL)),
    ("crm=down", "crm", Fault(down=True)),
    ("finance=latency:200ms,error:0.1", "finance", Fault(latency=0.2, error_rate=0.1)),
])
def test_fault_specs_parse(spec, service, fault):
    assert parse_fault(spec) == (service, fault)


@pytest.mark.parametrize("spec", ["crm", "crm=", "=down", "crm=slow", "crm=latency:soon", "crm=error:1.5",
                                  "crm=error:x", "crm=error:0.5:NOPE", "crm=error:0.5:OK", "crm=down:now"])
def test_bad_fault_specs_are_refused(spec):
    with pytest.raises(ValueError):
        parse_fault(spec)


def test_repeated_faults_for_one_service_combine():
    faults: dict[str, Fault] = {}
    for spec in ("crm=latency:1s", "crm=error:0.2", "hrm=down"):
        merge(faults, *parse_fault(spec))
    assert faults == {"crm": Fault(latency=1.0, error_rate=0.2), "hrm": Fault(down=True)}
    assert not NO_FAULT and faults["crm"]


def run_crm(test):
    """Run `test(server, stub, health)` against a fresh emulated CRM on a free port."""

    async def main():
        server = crm.build()
        await server.start("127.0.0.1", 0)
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                await test(server, crm_pb2_grpc.CrmServiceStub(channel), health_pb2_grpc.HealthStub(channel))
        finally:
            await server.stop(0)

    asyncio.run(main())


async def timed(call):
    started = time.monotonic()
    try:
        await call
        return None, time.monotonic() - started
    except grpc.aio.AioRpcError as exc:
        return exc.code(), time.monotonic() - started


def test_latency_delays_service_calls_but_not_health_checks():
    async def test(server, stub, health):
        server.interceptor.fault = Fault(latency=0.3)
        code, took = await timed(stub.ListCustomers(crm_pb2.ListCustomersRequest(), metadata=ORG, timeout=5))
        assert code is None and took >= 0.3
        # A health check answers while a slowed call is still waiting: it is not delayed.
        server.interceptor.fault = Fault(latency=30)
        slow = asyncio.ensure_future(stub.ListCustomers(crm_pb2.ListCustomersRequest(), metadata=ORG, timeout=60))
        code, _ = await timed(health.Check(health_pb2.HealthCheckRequest(service=""), timeout=20))
        assert code is None and not slow.done()
        slow.cancel()

    run_crm(test)


def test_error_rate_fails_that_share_of_calls_with_the_chosen_code():
    async def test(server, stub, health):
        request = crm_pb2.ListCustomersRequest()
        server.interceptor.fault = Fault(error_rate=1.0, error_code=grpc.StatusCode.INTERNAL)
        codes = [(await timed(stub.ListCustomers(request, metadata=ORG, timeout=5)))[0] for _ in range(5)]
        assert codes == [grpc.StatusCode.INTERNAL] * 5
        server.interceptor.random.seed(1)
        server.interceptor.fault = Fault(error_rate=0.5)
        codes = [(await timed(stub.ListCustomers(request, metadata=ORG, timeout=5)))[0] for _ in range(60)]
        failed = codes.count(grpc.StatusCode.UNAVAILABLE)
        assert 10 < failed < 50 and codes.count(None) == 60 - failed
        assert server.interceptor.calls["/erp.crm.v1.CrmService/ListCustomers"] == 65
        server.interceptor.fault = NO_FAULT
        assert (await timed(stub.ListCustomers(request, metadata=ORG, timeout=5)))[0] is None

    run_crm(test)


def test_a_call_past_its_deadline_leaves_nothing_running_at_the_backend():
    async def test(server, stub, health):
        server.interceptor.fault = Fault(latency=5.0)
        calls = [timed(stub.ListCustomers(crm_pb2.ListCustomersRequest(), metadata=ORG, timeout=0.2))
                 for _ in range(20)]
        results = await asyncio.gather(*calls)
        assert {code for code, _ in results} == {grpc.StatusCode.DEADLINE_EXCEEDED}
        assert max(took for _, took in results) < 5.0  # none waited out the backend's latency
        for _ in range(50):  # the server cancels each handler once its deadline passes
            if server.interceptor.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        assert server.interceptor.in_flight == 0

    run_crm(test)


def test_kill_refuses_calls_and_restart_brings_the_same_data_back_on_the_same_port():
    async def test(server, stub, health):
        created = await stub.CreateCustomer(crm_pb2.CreateCustomerRequest(customer=crm_pb2.Customer(name="Ada")),
                                            metadata=ORG, timeout=5)
        address = server.address
        await server.kill()
        assert not server.running
        code, _ = await timed(stub.GetCustomer(crm_pb2.GetCustomerRequest(id=created.id), metadata=ORG, timeout=2))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert await server.restart() == address
        got = await stub.GetCustomer(crm_pb2.GetCustomerRequest(id=created.id), metadata=ORG, timeout=5,
                                     wait_for_ready=True)
        assert got.name == "Ada"

    run_crm(test)


def test_gw_backends_applies_faults_given_on_the_command_line(tmp_path: Path):
    env_file = tmp_path / "backends.env"
    process = subprocess.Popen(
        [*GW, "backends", "--free-ports", "--env-file", str(env_file),
         "--fault", "crm=down", "--fault", "hrm=latency:300ms", "--fault", "hrm=error:0"],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())

        async def check():
            async def call(service, rpc):
                async with grpc.aio.insecure_channel(env[f"ERP_GRPC_SERVICES_{service.upper()}"]) as channel:
                    return await timed(rpc(channel))

            def health(channel):
                return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)

            def list_employees(channel):
                from proto.erp.hrm.v1 import hrm_pb2, hrm_pb2_grpc

                return hrm_pb2_grpc.HrmServiceStub(channel).ListEmployees(hrm_pb2.ListEmployeesRequest(),
                                                                          metadata=ORG, timeout=5)

            assert (await call("crm", health))[0] == grpc.StatusCode.UNAVAILABLE
            assert (await call("finance", health))[0] is None
            code, took = await call("hrm", list_employees)
            assert code is None and took >= 0.3

        asyncio.run(check())
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=15)
    assert "crm: down" in out and "hrm: latency 300ms" in out


def test_gw_backends_refuses_a_bad_fault():
    done = subprocess.run([*GW, "backends", "--free-ports", "--fault", "billing=down"],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no emulated service named 'billing'" in done.stderr


def test_gw_serve_takes_the_same_faults():
    done = subprocess.run([*GW, "serve", "--port", "1", "--fault", "crm=sideways"],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--fault" in done.stderr and "sideways" in done.stderr

    port = free_port()
    process = subprocess.Popen([*GW, "serve", "--port", str(port), "--fault", "crm=down"],
                               env=clean_env(), stdout=subprocess.PIPE, text=True)
    try:
        banner = ""
        while "crm: down" not in banner:
            line = process.stdout.readline()
            assert line, "gw serve exited before printing its faults"
            banner += line
        answer = poll_ready(f"http://127.0.0.1:{port}", lambda a: a.json()["data"]["dependencies"]["crm"]["status"] == "down")
        report = answer.json()["data"]
        assert report["dependencies"]["crm"]["status"] == "down"
        assert report["dependencies"]["hrm"]["status"] == "up" and report["status"] == "degraded"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
