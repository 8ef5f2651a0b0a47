"""The gateway's answers checked against its own OpenAPI document, as they arrive.

`Contract.problems()` finds the operation a request hit (path template and method), the
document's response for the status, and checks the answer against it: the body with a
JSON Schema validator (Draft 2020-12, the dialect of OpenAPI 3.1), no body where none is
documented (HEAD, 304), every required header present, and every header the document
speaks of (ETag, Location, RateLimit-*, Retry-After, X-Request-ID, X-Cache, WWW-Authenticate)
declared for that status and valid. tests/conftest.py runs it on every answer the
integration tests receive from a gateway, so no test passes on an answer the document
does not describe.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from typing import Any, Mapping

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from runtime.endpoint import discover
from runtime.openapi import HEADERS, _error_schema, document

_DOC_URI = "urn:erp-gateway:openapi"
_SPOKEN_OF = {name.lower(): name for name in HEADERS}


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Contract:
    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(_DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
        # Literal paths before templated ones, so /a/b wins over /a/{id}.
        templates = sorted(doc["paths"], key=lambda p: (p.count("{"), p))
        self.paths = [(re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(p)) + "$"), p) for p in templates]
        self.seen: Counter[tuple[str, str, int]] = Counter()  # (method, template, status) checked

    @cache  # noqa: B019 (one Contract per test session: the cache lives as long anyway)
    def _validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{_DOC_URI}#{pointer}"}, registry=self.registry,
                                    format_checker=FormatChecker())

    def template(self, path: str) -> str | None:
        path = path.rstrip("/") or "/"
        for pattern, template in self.paths:
            if pattern.match(path):
                return template
        return None

    def problems(self, method: str, path: str, status: int, headers: Mapping[str, str], body: bytes) -> list[str]:
        template = self.template(path)
        operation = self.doc["paths"].get(template, {}).get(method.lower()) if template else None
        if operation is None:
            # Not an operation of the document (unknown route, 405, OPTIONS): errors still use the envelope.
            if status >= 400 and method != "HEAD":
                return [f"body: {e.message}" for e in _generic_error().iter_errors(_json(body))]
            return []
        self.seen[(method.upper(), template, status)] += 1
        answer = operation["responses"].get(str(status))
        where = f"{method} {template} -> {status}"
        if answer is None:
            return [f"{where}: status not documented (documented: {', '.join(operation['responses'])})"]
        problems = []
        declared = {name.lower(): spec for name, spec in answer.get("headers", {}).items()}
        for name, spec in declared.items():
            spec = self._header(spec)
            value = headers.get(name)
            if value is None:
                if spec.get("required"):
                    problems.append(f"{where}: required header {name} is missing")
                continue
            problems += [f"{where}: header {name}={value!r}: {e.message}"
                         for e in Draft202012Validator(spec["schema"]).iter_errors(_header_value(value, spec["schema"]))]
        for name in headers:
            if name.lower() in _SPOKEN_OF and name.lower() not in declared:
                problems.append(f"{where}: header {name} is sent but not documented for this status")
        content = answer.get("content")
        if content is None or method.upper() == "HEAD":
            if body:
                problems.append(f"{where}: a body where the document declares none")
            return problems
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{status}/content/application~1json/schema"
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return problems + [f"{where}: body is not JSON: {body[:200]!r}"]
        problems += [f"{where}: body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
                     for e in self._validator(pointer).iter_errors(data)]
        return problems

    def _header(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = spec.get("$ref")
        if ref is None:
            return spec
        node: Any = self.doc
        for token in ref.removeprefix("#/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node


def _header_value(value: str, schema: Mapping[str, Any]) -> Any:
    if schema.get("type") == "integer":
        return int(value) if re.fullmatch(r"-?\d+", value) else value
    return value


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


@cache
def _generic_error() -> Draft202012Validator:
    return Draft202012Validator(_error_schema())


@cache
def contract() -> Contract:
    """The document this checkout serves (tests/integration/test_openapi.py checks they are equal)."""
    return Contract(document(discover()))
