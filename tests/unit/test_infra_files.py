"""The deployment files in infra/ are valid for the tools that read them: hadolint for the
Dockerfile, the Kubernetes OpenAPI schemas (offline, from kubernetes-validate) for the
manifests, and the policies the issue asks of each (non-root, probes, read-only root...)."""

from __future__ import annotations

import copy
import pathlib
import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

INFRA = pathlib.Path(__file__).resolve().parents[2] / "infra"
K8S_VERSION = "1.33"  # preStop `sleep` needs 1.30+


def manifests() -> dict[str, dict]:
    kustomization = yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())
    docs = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((INFRA / "k8s" / name).read_text()):
            docs[doc["kind"]] = doc
    return docs


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(pathlib.Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(INFRA / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    lines = [line.strip() for line in (INFRA / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and " AS build" in stages[0]
    final = lines[lines.index(stages[1]):]
    assert any(line.startswith("USER 10001") for line in final)
    assert any(line.startswith("HEALTHCHECK") for line in final)
    assert not any("pip install" in line or "apt-get" in line for line in final), "build tools in the final image"
    assert any(line.startswith('ENTRYPOINT ["python3", "-m", "runtime.serve"]') for line in final)


def test_every_manifest_validates_against_the_kubernetes_schema():
    docs = manifests()
    assert set(docs) == {
        "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "NetworkPolicy",
    }
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_would_catch_a_mistake():
    deployment = copy.deepcopy(manifests()["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_deployment_probes_security_and_graceful_termination():
    spec = manifests()["Deployment"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    # Grace period longer than the drain: preStop pause + the gateway's shutdown timeout.
    config = manifests()["ConfigMap"]["data"]
    drain = int(config["ERP_SERVER_SHUTDOWN_TIMEOUT"].rstrip("s"))
    assert spec["terminationGracePeriodSeconds"] > container["lifecycle"]["preStop"]["sleep"]["seconds"] + drain


def test_the_secret_manifest_holds_no_secret():
    secret = manifests()["Secret"]
    assert all(value == "" for value in secret["stringData"].values())


def test_compose_runs_two_gateways_behind_nginx_with_every_peer():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway-1", "gateway-2", "nginx", "valkey", "kafka", "backends"} <= set(services)
    nginx_conf = (INFRA / "nginx" / "erp-gateway.conf").read_text()
    for name in ("gateway-1", "gateway-2"):
        assert f"server {name}:8080" in nginx_conf
        assert services[name]["healthcheck"]["test"][-1] == "runtime.probe"


def test_compose_names_its_third_party_images_fully_and_lets_them_be_replaced():
    # podman resolves no short names ("did not resolve to an alias and no unqualified-search
    # registries are defined"): a registry host in every default; infra/standins replaces them.
    services = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    for name, variable in (("valkey", "VALKEY_IMAGE"), ("kafka", "KAFKA_IMAGE"), ("nginx", "NGINX_IMAGE")):
        image = services[name]["image"]
        assert image.startswith(f"${{{variable}:-") and image.endswith("}"), image
        default = image[len(variable) + 4:-1]
        assert "." in default.split("/")[0], f"{name}: {default} is a short name"
