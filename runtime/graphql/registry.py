"""@resolver: declares which schema field a function resolves, like @endpoint for routes.

    @resolver("Query", "employees")
    async def employees(ctx, parent, first, after, department_id=None): ...

A resolver gets the request's `runtime.context.Context` (principal, backends, loaders),
the parent object (a dict with the proto field names, or None at the root) and the field's
arguments with snake_case names. Discovery imports every module of a package and collects
the declared functions, and the fields a module declares in bulk (`runtime.graphql.crud.Fields`,
counted once wherever imported); two functions for one field stop start-up.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, Callable, Mapping

Resolver = Callable[..., Any]


def resolver(type_name: str, field_name: str) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        fn.__resolves__ = (type_name, field_name)  # type: ignore[attr-defined]
        return fn

    return register


def subscriber(type_name: str, field_name: str) -> Callable[[Resolver], Resolver]:
    """A Subscription field's source: `fn(ctx, parent, **args)` returns an async iterator
    whose items each become one result (graphql-core's `subscribe`)."""

    def register(fn: Resolver) -> Resolver:
        fn.__resolves__ = (type_name, field_name)  # type: ignore[attr-defined]
        fn.__subscribes__ = True  # type: ignore[attr-defined]
        return fn

    return register


Key = tuple[str, str]  # (type, field)


class Fields(dict[Key, Resolver]):
    """Resolvers declared in bulk, by (type, field), merged from several mappings
    (runtime.graphql.crud builds them); discovery collects them like @resolver functions."""

    def __init__(self, *parts: Mapping[Key, Resolver]) -> None:
        super().__init__()
        for part in parts:
            for key, fn in part.items():
                if key in self:
                    raise RuntimeError(f"{key[0]}.{key[1]}: declared twice")
                self[key] = fn


def discover(package: str) -> dict[tuple[str, str], Resolver]:
    root = importlib.import_module(package)
    modules = [root] + [importlib.import_module(i.name)
                        for i in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + ".")]
    found: dict[tuple[str, str], Resolver] = {}
    owner: dict[tuple[str, str], str] = {}
    seen: set[int] = set()  # a Fields imported by another module counts once
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, Fields):
                if id(obj) in seen:
                    continue
                seen.add(id(obj))
                pairs = list(obj.items())
            else:
                key = getattr(obj, "__resolves__", None)
                if key is None or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                    continue
                pairs = [(key, obj)]
            for key, fn in pairs:
                if key in found:
                    raise RuntimeError(f"{key[0]}.{key[1]}: resolved by both {owner[key]} and {module.__name__}")
                found[key], owner[key] = fn, module.__name__
    return found
