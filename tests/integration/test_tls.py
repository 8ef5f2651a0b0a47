"""TLS everywhere: HTTPS on the gateway (Granian's TLS, a certificate this test makes, a
client that verifies it), HSTS only then, and the gRPC backends over mutual TLS, so the
caller's organization and user metadata never travel in clear text."""

from __future__ import annotations

import asyncio
import ssl

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from emulator.processes import stop
from runtime.backends.channels import open_channel
from runtime.config import load_config
from tests.conftest import StackThread
from tests.pki import TestCA
from tests.support import DEMO_PASSWORD, granian_env, poll_ready, start_gateway

HSTS = "Strict-Transport-Security"
SERVICES = ("auth", "crm", "hrm", "finance")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = TestCA(tmp_path_factory.mktemp("pki"))
    return {
        "ca": ca,
        "gateway": ca.issue("gateway"),
        "backend": ca.issue("backend"),
        "client": ca.issue("gateway-client", hosts=(), client=True),
    }


@pytest.fixture(scope="module")
def mtls_stack(pki):
    """Every backend serves TLS and requires a client certificate issued by the test CA."""
    backend = pki["backend"]
    creds = {name: grpc.ssl_server_credentials([(backend.key_pem, backend.cert_pem)],
                                               root_certificates=pki["ca"].cert_pem, require_client_auth=True)
             for name in SERVICES}
    running = StackThread(tls=creds)
    yield running
    running.close()


def tls_env(stack, pki) -> dict[str, str]:
    env = {"ERP_SERVER_TLS_ENABLED": "true",
           "ERP_SERVER_TLS_CERT_FILE": str(pki["gateway"].cert_file),
           "ERP_SERVER_TLS_KEY_FILE": str(pki["gateway"].key_file)}
    for name in SERVICES:
        prefix = f"ERP_GRPC_TLS_{name.upper()}_"
        env[prefix + "CA_FILE"] = str(pki["ca"].cert_file)
        env[prefix + "CERT_FILE"] = str(pki["client"].cert_file)
        env[prefix + "KEY_FILE"] = str(pki["client"].key_file)
    return granian_env(stack.environment(), **env)


@pytest.fixture(scope="module")
def trusting(pki) -> ssl.SSLContext:
    """A client that trusts the test CA only, and checks the host name."""
    return ssl.create_default_context(cafile=str(pki["ca"].cert_file))


@pytest.fixture(scope="module")
def https_gateway(mtls_stack, pki, trusting):
    process, url = start_gateway(tls_env(mtls_stack, pki), tls=trusting)
    yield url
    stop(process)


def test_the_gateway_serves_https_with_a_certificate_the_client_verifies(https_gateway, trusting):
    assert https_gateway.startswith("https://")
    with httpx.Client(base_url=https_gateway, verify=trusting, timeout=10) as client:
        for path in ("/health", "/no/such/route"):
            h = client.get(path).headers
            assert h[HSTS].startswith("max-age=") and int(h[HSTS].split("=")[1].split(";")[0]) >= 31536000
            assert h["X-Frame-Options"] == "DENY"


def test_a_client_that_does_not_trust_the_certificate_is_refused(https_gateway):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_gateway + "/health", timeout=10)  # the system's roots, not the test CA


def test_plain_http_on_the_https_port_gets_no_answer(https_gateway):
    with pytest.raises(httpx.HTTPError):
        httpx.get(https_gateway.replace("https://", "http://") + "/health", timeout=5)


def test_sign_in_and_domain_reads_go_to_the_backends_over_mutual_tls(https_gateway, trusting):
    with httpx.Client(base_url=https_gateway, verify=trusting, timeout=10) as client:
        ready = poll_ready(https_gateway, lambda a: a.json()["data"]["status"] == "ready", verify=trusting)
        deps = ready.json()["data"]["dependencies"]
        assert {name: (deps[name]["status"], deps[name]["tls"]) for name in SERVICES} == {
            name: ("up", "mutual") for name in SERVICES}
        login = client.post("/api/v1/auth/login", json={"email": "admin@acme.example", "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        bearer = {"Authorization": "Bearer " + login.json()["data"]["access_token"]}
        customers = client.get("/api/v1/crm/customers", headers=bearer)
        assert customers.status_code == 200 and customers.json()["data"]["items"], customers.text
        assert client.get("/api/v1/auth/me", headers=bearer).json()["data"]["email"] == "admin@acme.example"


def _health(address: str, tls) -> str:
    async def check() -> str:
        channel = open_channel(address, tls)
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        finally:
            await channel.close()

    return asyncio.run(check())


def test_a_backend_requiring_mutual_tls_refuses_plaintext_and_a_gateway_without_its_certificate(mtls_stack, pki):
    ca, client = str(pki["ca"].cert_file), pki["client"]
    address = mtls_stack.environment()["ERP_GRPC_SERVICES_CRM"]

    def tls(**files: str):
        env = {f"ERP_GRPC_TLS_CRM_{k.upper()}": v for k, v in files.items()}
        return load_config(env=env).grpc.tls["crm"]

    assert _health(address, tls(ca_file=ca, cert_file=str(client.cert_file), key_file=str(client.key_file))) == "SERVING"
    assert _health(address, None) == "UNAVAILABLE"  # plaintext
    assert _health(address, tls(ca_file=ca)) == "UNAVAILABLE"  # TLS, but no client certificate
    # A gateway that trusts another CA refuses the backend's certificate.
    other = TestCA(pki["ca"].directory / "..", name="another CA")
    assert _health(address, tls(ca_file=str(other.cert_file), cert_file=str(client.cert_file),
                                key_file=str(client.key_file))) == "UNAVAILABLE"


def test_a_tls_listener_without_its_files_stops_start_up_naming_the_key(tmp_path, pki):
    from runtime.config import ConfigError

    with pytest.raises(ConfigError, match=r"^server\.tls_key_file: missing"):
        load_config(env={"ERP_SERVER_TLS_ENABLED": "true", "ERP_SERVER_TLS_CERT_FILE": str(pki["gateway"].cert_file)})
    with pytest.raises(ConfigError, match=r"^server\.tls_cert_file: '/nope.pem' is not a readable file"):
        load_config(env={"ERP_SERVER_TLS_ENABLED": "true", "ERP_SERVER_TLS_CERT_FILE": "/nope.pem",
                         "ERP_SERVER_TLS_KEY_FILE": str(pki["gateway"].key_file)})


def test_the_production_launcher_serves_what_the_configuration_says(mtls_stack, pki, trusting):
    # `python -m runtime.serve`: host, port, workers and TLS come from configuration alone.
    import sys

    from emulator.ports import free_port, wait_for_http
    from emulator.processes import spawn

    port = free_port()
    env = {**tls_env(mtls_stack, pki), "ERP_SERVER_HOST": "127.0.0.1", "ERP_SERVER_PORT": str(port)}
    process = spawn([sys.executable, "-m", "runtime.serve"], env=env)
    try:
        assert wait_for_http(f"https://127.0.0.1:{port}/health", process, 30, trusting)
    finally:
        stop(process)
