"""Structured logs: one JSON object per line (stdout by default), in Elastic Common Schema names.

`@timestamp`, `log.level`, `log.logger`, `message`, plus whatever a caller passes with
`extra=` (the access log passes `http.request.method`, `url.path`, `http.response.status_code`,
`event.duration` in nanoseconds, `trace.id`, `user.id`, `organization.id`, `http.request.id`).
Dotted names are kept flat: Elasticsearch and OpenSearch read `a.b` as the object path.

Credentials never reach a line: the runtime logs ids (user, request, token `jti`), never
tokens or passwords, and as a second line of defence any field whose name says password,
token, secret or authorization is written as "[REDACTED]", and Bearer credentials and
JWT-shaped strings are cut out of messages and exception text.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, Callable

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_SECRET_NAME = re.compile(r"passw|token|secret|authori[sz]ation|api[_-]?key|cookie", re.I)
# "Bearer <anything>" and three base64url segments joined by dots (a JWS compact token).
_SECRET_VALUE = re.compile(r"(?i:bearer)\s+\S+|[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
REDACTED = "[REDACTED]"
ECS_VERSION = "8.11.0"


def scrub(text: str) -> str:
    return _SECRET_VALUE.sub(REDACTED, text)


def _safe(key: str, value: Any) -> Any:
    if _SECRET_NAME.search(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    return value


# Plain `extra=` names the runtime uses, in ECS terms; any other undotted name goes under
# `gateway.` (ECS: custom fields in their own namespace), so that e.g. a plain "error" string
# never collides with the `error` object in a search engine's mapping.
_ECS_NAMES = {"error": "error.message", "url": "url.full", "request_id": "http.request.id"}


def _ecs_name(key: str) -> str:
    if "." in key:
        return key
    return _ECS_NAMES.get(key) or "gateway." + key


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def ecs_document(record: logging.LogRecord, format_exception: Callable[[Any], str]) -> dict[str, Any]:
    """The record as one ECS document (also what the log shipper indexes)."""
    doc: dict[str, Any] = {
        "@timestamp": _timestamp(record),
        "log.level": record.levelname.lower(),
        "log.logger": record.name,
        "message": scrub(record.getMessage()),
        "ecs.version": ECS_VERSION,
        "process.pid": record.process,
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and value is not None:
            doc[_ecs_name(key)] = _safe(key, value)
    if record.exc_info:
        doc["error.stack_trace"] = scrub(format_exception(record.exc_info))
        doc["error.type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
    return doc


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(ecs_document(record, self.formatException), default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={_safe(k, v)}" for k, v in vars(record).items() if k not in _STANDARD and v is not None)
        line = f"{record.levelname.lower():7} {record.name}: {scrub(record.getMessage())} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def configure_logging(level: str, fmt: str, stream: str = "stdout") -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout if stream == "stdout" else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler
