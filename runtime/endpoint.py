"""The @endpoint decorator, the route table, and discovery of handlers/.

A handler declares everything about its route in one place; the runtime, `gw routes`,
`gw invoke` and `/openapi.json` all read the same `Route`. Nothing about a route is
written down twice.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Awaitable, Callable, Iterable, Mapping

from runtime.rbac import is_required_permission
from runtime.schema import Body, Field

Handler = Callable[..., Awaitable[Any]]

_PATH_PARAM = re.compile(r"{(\w+)}")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
AUTH_MODES = ("required", "optional", "none")

# Every `{name}` in a path: record ids are short; a longer one is a 400 before any backend call,
# and no answer ever echoes more than this much of it.
PATH_PARAMETER = Field(str, min_length=1, max_length=64, doc="A record id")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: str = "required"
    permission: str | None = None
    rate_limit: str | tuple[str, ...] | bool | None = None  # policy names added to the default; False: exempt
    cache: str | None = None  # a cache policy name (config `cache.policies`): cache-aside for GETs
    invalidates: tuple[str, ...] = ()  # cache policies a successful write makes stale
    status: int = 200
    body: Body | None = None
    max_body_bytes: int | None = None  # None: the server-wide `server.max_body_bytes`
    tags: tuple[str, ...] = ()
    query: Body | None = None  # query parameters, validated like a body into ctx.query
    etag: bool = False  # a strong ETag on 200 answers; If-None-Match -> 304
    # What `data` holds (runtime.responses): a protobuf message class, a runtime.rest.Page,
    # a Record, a Document (no envelope) or a JSON Schema dict; None: `data` is null.
    response: Any = None
    # Statuses the handler itself answers beyond what the declarations above imply (status ->
    # why, or (why, JSON Schema of the error's `data`)), e.g. login's 401 for a wrong password.
    errors: Mapping[int, Any] = field(default_factory=dict)
    upstream: bool = True  # calls a backend, so may answer 502, 503 and 504

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    @property
    def name(self) -> str:
        return f"{self.handler.__module__}.{self.handler.__name__}"

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.handler) or ""
        return doc.splitlines()[0] if doc else self.handler.__name__.replace("_", " ")


def endpoint(
    method: str,
    path: str,
    *,
    auth: bool | str = True,
    permission: str | None = None,
    rate_limit: str | tuple[str, ...] | bool | None = None,
    cache: str | None = None,
    invalidates: Iterable[str] = (),
    status: int = 200,
    body: Body | None = None,
    max_body_bytes: int | None = None,
    tags: Iterable[str] = (),
    query: Body | None = None,
    etag: bool = False,
    response: Any = None,
    errors: Mapping[int, Any] | None = None,
    upstream: bool = True,
) -> Callable[[Handler], Handler]:
    """Declare a handler: `async def fn(req, ctx, **path_params) -> data`."""
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"{path}: unsupported method {method!r}")
    mode = "required" if auth is True else "none" if auth is False else auth
    if mode not in AUTH_MODES:
        raise ValueError(f"{path}: auth must be one of {AUTH_MODES}, not {auth!r}")
    if not path.startswith("/"):
        raise ValueError(f"{path}: a path starts with /")
    if permission is not None:
        if not is_required_permission(permission):
            raise ValueError(f"{method} {path}: permission {permission!r} must be domain.resource:action, no wildcards")
        if mode == "none":
            raise ValueError(f"{method} {path}: a permission needs an authenticated caller (auth=True)")
    names = (rate_limit,) if isinstance(rate_limit, str) else rate_limit
    if not (rate_limit is None or rate_limit is False or (
            isinstance(names, tuple) and names and all(isinstance(n, str) and n for n in names))):
        raise ValueError(f"{method} {path}: rate_limit is a policy name or a tuple of them, or False to exempt the route")
    if etag and method != "GET":
        raise ValueError(f"{method} {path}: an ETag validates reads; only a GET can declare etag=True")

    def register(fn: Handler) -> Handler:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__module__}.{fn.__name__}: a handler must be `async def`")
        fn.__endpoint__ = Route(  # type: ignore[attr-defined]
            method=method,
            path=path,
            handler=fn,
            auth=mode,
            permission=permission,
            rate_limit=rate_limit,
            cache=cache,
            invalidates=tuple(invalidates),
            status=status,
            body=body,
            max_body_bytes=max_body_bytes,
            tags=tuple(tags) or (path.strip("/").split("/")[2 if path.startswith("/api/") else 0],),
            query=query,
            etag=etag,
            response=response,
            errors=dict(errors or {}),
            upstream=upstream,
        )
        return fn

    return register


class RegistryError(RuntimeError):
    pass


def discover(package: str = "handlers") -> list[Route]:
    """Import every module under `package` and collect its endpoint.

    One endpoint per module keeps the layout honest (a file's name says what it holds);
    two routes with the same method and path are a start-up error, not a silent override.
    """
    root = importlib.import_module(package)
    routes: list[Route] = []
    for module in _walk(root):
        found = [
            obj.__endpoint__
            for obj in vars(module).values()
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and hasattr(obj, "__endpoint__")
        ]
        if len(found) > 1:
            names = ", ".join(r.handler.__name__ for r in found)
            raise RegistryError(f"{module.__name__}: one endpoint per file, found {names}")
        routes.extend(found)
    seen: dict[tuple[str, str], Route] = {}
    for route in routes:
        key = (route.method, route.path)
        if key in seen:
            raise RegistryError(f"{route.method} {route.path}: declared by {seen[key].name} and {route.name}")
        seen[key] = route
    return sorted(routes, key=lambda r: (r.path, METHODS.index(r.method)))


def _walk(root: ModuleType) -> Iterable[ModuleType]:
    for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
        yield importlib.import_module(info.name)
