"""The committed generated modules are exactly what protoc makes from the committed .proto files."""

from pathlib import Path

from emulator import protogen


def test_generated_modules_match_their_sources(tmp_path: Path) -> None:
    generated = protogen.generate(tmp_path)
    assert generated, "no .proto sources found"
    stale = []
    for path in generated:
        committed = protogen.REPO / path.relative_to(tmp_path)
        if not committed.is_file() or committed.read_bytes() != path.read_bytes():
            stale.append(str(committed.relative_to(protogen.REPO)))
    assert not stale, f"stale generated modules, run `gw proto`: {stale}"


def test_every_generated_module_has_a_source() -> None:
    expected = {p for src in protogen.sources() for p in protogen.outputs_for(src)}
    committed = {
        p for suffix in protogen.SUFFIXES for p in protogen.PROTO_ROOT.rglob(f"*{suffix}")
    }
    orphans = sorted(str(p.relative_to(protogen.REPO)) for p in committed - expected)
    assert not orphans, f"generated modules without a .proto source: {orphans}"
