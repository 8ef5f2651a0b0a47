from __future__ import annotations

import sys
import textwrap

import pytest

from runtime.endpoint import METHODS, RegistryError, discover, endpoint


def make_package(tmp_path, monkeypatch, files: dict[str, str]) -> str:
    name = f"fake_handlers_{abs(hash(tmp_path)) % 10**8}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for path, source in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent != root and not (target.parent / "__init__.py").exists():
            (target.parent / "__init__.py").write_text("")
        target.write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


HANDLER = """
from runtime import endpoint

@endpoint("{method}", "{path}", auth=False)
async def {fn}(req, ctx):
    '''Summary line.'''
    return 1
"""


def test_discovers_handlers_in_subpackages(tmp_path, monkeypatch):
    pkg = make_package(tmp_path, monkeypatch, {
        "a/one.py": HANDLER.format(method="GET", path="/one", fn="one"),
        "b/two.py": HANDLER.format(method="POST", path="/two", fn="two"),
    })
    routes = discover(pkg)
    assert [(r.method, r.path, r.auth, r.summary) for r in routes] == [
        ("GET", "/one", "none", "Summary line."), ("POST", "/two", "none", "Summary line."),
    ]


def test_two_endpoints_in_one_file_is_an_error(tmp_path, monkeypatch):
    source = HANDLER.format(method="GET", path="/x", fn="x") + HANDLER.format(method="GET", path="/y", fn="y")
    pkg = make_package(tmp_path, monkeypatch, {"both.py": source})
    with pytest.raises(RegistryError, match="one endpoint per file"):
        discover(pkg)


def test_duplicate_route_is_an_error(tmp_path, monkeypatch):
    pkg = make_package(tmp_path, monkeypatch, {
        "a.py": HANDLER.format(method="GET", path="/same", fn="a"),
        "b.py": HANDLER.format(method="GET", path="/same", fn="b"),
    })
    with pytest.raises(RegistryError, match="GET /same"):
        discover(pkg)


def test_decorator_rejects_mistakes():
    with pytest.raises(ValueError):
        endpoint("FETCH", "/x")
    with pytest.raises(ValueError):
        endpoint("GET", "x")
    with pytest.raises(ValueError):
        endpoint("GET", "/x", auth="maybe")
    with pytest.raises(TypeError):
        endpoint("GET", "/x")(lambda req, ctx: None)


def test_the_real_handlers_follow_the_rules():
    routes = discover()
    assert {(r.method, r.path) for r in routes} >= {
        ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/me"), ("GET", "/health"), ("GET", "/ready"),
    }
    assert all(r.method in METHODS for r in routes)
    # The dependency rule: handlers never import each other.
    for route in routes:
        module = sys.modules[route.handler.__module__]
        imported = {getattr(v, "__module__", "") for v in vars(module).values()}
        assert not any(m.startswith("handlers.") and m != module.__name__ for m in imported), route.name
