"""Compile the project's .proto contracts into the Python modules committed next to them.

Paths are relative to the repository root (``-I .``), so ``proto/erp/crm/v1/crm.proto``
becomes the importable module ``proto.erp.crm.v1.crm_pb2``. A test regenerates into a
temporary directory and compares byte for byte, so committed modules never go stale.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

try:
    from grpc_tools import protoc
except ImportError:  # production installs leave the emulator's extra out
    raise SystemExit("gw proto needs the emulator extra: pip install -e '.[emulator]'") from None

REPO = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO / "proto"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def sources() -> list[Path]:
    """Every .proto under proto/, in a stable order."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def outputs_for(source: Path, out_dir: Path = REPO) -> list[Path]:
    """The files protoc writes for one source (the grpc plugin writes one even without services)."""
    rel = source.relative_to(REPO).with_suffix("")
    return [out_dir / rel.parent / f"{rel.name}{suffix}" for suffix in SUFFIXES]


def generate(out_dir: Path | None = None) -> list[Path]:
    """Run protoc in-process over every source; write into the repo, or into out_dir."""
    out = Path(out_dir) if out_dir is not None else REPO
    out.mkdir(parents=True, exist_ok=True)
    # grpc_tools bundles the well-known types (timestamp, field_mask, empty).
    well_known = files("grpc_tools") / "_proto"
    protos = sources()
    args = [
        "grpc_tools.protoc",
        f"--proto_path={REPO}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed; see the messages above")
    return [path for src in protos for path in outputs_for(src, out)]


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
