"""Declarative request-body schemas: validation with field-named errors, and JSON Schema.

One declaration serves three readers: the runtime validates bodies with it before the handler
runs, `/openapi.json` publishes it, and `gw routes` shows it. All problems are reported at
once, keyed by field, so a form can mark every wrong input in one round trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Mapping

from runtime.errors import ValidationFailed

# Every pattern is applied with fullmatch (a `$` would also accept a trailing newline) and
# spells digits [0-9] (`\d` also matches Arabic-Indic and other Unicode digits).
# Email: deliberately simple (RFC 5322 is not a useful target for sign-up forms): one @, no
# spaces, a dot in the domain, and the RFC 5321 length limits.
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+")
_DOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,6})?")
_CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
# Refused in every text field: C0 and C1 controls (NUL, newlines, escapes), DEL, and the
# bidirectional overrides and isolates that make stored text display as something else.
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORBIDDEN_PROBLEM = "must not contain control or bidirectional-override characters"

_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number", list: "array", dict: "object"}


@dataclass(frozen=True)
class Field:
    type: type
    required: bool = True
    default: Any = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    format: str | None = None  # "email", "domain", "decimal", "currency", "date"
    items: "Field | None" = None  # element schema of a list
    properties: "Body | None" = None  # schema of a nested object (type dict), e.g. money
    doc: str = ""

    def check(self, value: Any) -> str | None:
        """The problem with `value`, or None when it is acceptable."""
        # bool is a subclass of int in Python; JSON clients mean different things by them.
        if self.type is int and (isinstance(value, bool) or not isinstance(value, int)):
            return "must be an integer"
        if self.type is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return "must be a number"
        if self.type not in (int, float) and not isinstance(value, self.type):
            return f"must be {_article(_JSON_TYPES[self.type])}"
        if isinstance(value, str) and FORBIDDEN_CHARACTERS.search(value):
            return FORBIDDEN_PROBLEM
        if isinstance(value, (str, list)):
            if self.min_length is not None and len(value) < self.min_length:
                unit = "characters" if isinstance(value, str) else "items"
                return f"must be at least {self.min_length} {unit}"
            if self.max_length is not None and len(value) > self.max_length:
                unit = "characters" if isinstance(value, str) else "items"
                return f"must be at most {self.max_length} {unit}"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        if self.choices is not None and value not in self.choices:
            return "must be one of: " + ", ".join(map(str, self.choices))
        if self.format == "email" and not _EMAIL.fullmatch(value):
            return "must be a valid email address"
        if self.format == "domain" and not _DOMAIN.fullmatch(value.lower()):
            return "must be a valid domain name such as example.com"
        if self.format == "decimal" and not _DECIMAL.fullmatch(value):
            return "must be a decimal number as a string, such as \"120.50\""
        if self.format == "currency" and not _CURRENCY.fullmatch(value):
            return "must be a three-letter ISO 4217 currency code such as EUR"
        if self.format == "date" and not _is_date(value):
            return "must be a date as YYYY-MM-DD"
        if self.properties is not None:
            try:
                self.properties.validate(value)
            except ValidationFailed as exc:  # one line per inner field, named: "amount: currency must be ..."
                return "; ".join(f"{name} {problem}" for name, found in (exc.errors or {}).items() for problem in found)
        if self.items is not None:
            for i, item in enumerate(value):
                problem = self.items.check(item)
                if problem:
                    return f"item {i} {problem}"
        return None

    def json_schema(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": _JSON_TYPES[self.type]}
        for key, value in (("minLength", self.min_length), ("maxLength", self.max_length)):
            if value is not None and self.type is str:
                doc[key] = value
        for key, value in (("minItems", self.min_length), ("maxItems", self.max_length)):
            if value is not None and self.type is list:
                doc[key] = value
        if self.minimum is not None:
            doc["minimum"] = self.minimum
        if self.maximum is not None:
            doc["maximum"] = self.maximum
        if self.choices is not None:
            doc["enum"] = list(self.choices)
        if self.format in ("email", "date"):
            doc["format"] = self.format
        elif self.format in _PATTERNS:  # so generated clients and fuzzers know the shape too
            doc["pattern"] = "^" + _PATTERNS[self.format].pattern + "$"  # JSON Schema patterns search
        if self.properties is not None:
            doc.update(self.properties.json_schema())
        if self.items is not None:
            doc["items"] = self.items.json_schema()
        if self.doc:
            doc["description"] = self.doc
        if not self.required and self.default is not None:
            doc["default"] = self.default
        return doc


_PATTERNS = {"decimal": _DECIMAL, "currency": _CURRENCY}


def _is_date(value: str) -> bool:
    try:
        return bool(_DATE.fullmatch(value)) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


Check = Callable[[Mapping[str, Any]], "tuple[str, str] | None"]


def same_as(name: str, other: str, problem: str) -> Check:
    """A cross-field check: `name` must equal `other` (e.g. a password confirmation)."""

    def check(data: Mapping[str, Any]) -> tuple[str, str] | None:
        if name in data and other in data and data[name] != data[other]:
            return name, problem
        return None

    return check


@dataclass(frozen=True)
class Body:
    """A JSON object body: named fields, optional cross-field checks."""

    name: str
    fields: Mapping[str, Field]
    checks: tuple[Check, ...] = field(default=())
    # An update (PATCH) body: every field optional, at least one present.
    partial: bool = False

    def validate(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationFailed(
                "Request body must be a JSON object", errors={"body": ["must be a JSON object"]}
            )
        errors: dict[str, list[str]] = {}
        clean: dict[str, Any] = {}
        for key in data:
            if key not in self.fields:
                # Named so the client finds it, but never echoed at unbounded length.
                shown = key if len(key) <= 64 else key[:64] + "..."
                errors.setdefault(shown, []).append("is not a recognised field")
        for name, spec in self.fields.items():
            if name not in data or data[name] is None:
                if spec.required and not self.partial:
                    errors.setdefault(name, []).append("is required")
                elif spec.default is not None and not self.partial:
                    clean[name] = spec.default
                continue
            problem = spec.check(data[name])
            if problem:
                errors.setdefault(name, []).append(problem)
            else:
                clean[name] = data[name]
        if self.partial and not errors and not clean:
            errors["body"] = ["must contain at least one field to change"]
        if not errors:
            for check in self.checks:
                found = check(clean)
                if found:
                    errors.setdefault(found[0], []).append(found[1])
        if errors:
            raise ValidationFailed(errors=errors)
        return clean

    def validate_query(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate query-string parameters: numbers and flags arrive as text, so parse them first.

        A repeated parameter arrives as a list and fails its type check, naming the parameter.
        """
        data = dict(params)
        for name, value in data.items():
            spec = self.fields.get(name)
            if spec is None or not isinstance(value, str):
                continue
            if spec.type is int and _INTEGER.fullmatch(value):
                data[name] = int(value)
            elif spec.type is bool and value in ("true", "false"):
                data[name] = value == "true"
        return self.validate(data)

    def json_schema(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "object",
            "properties": {name: spec.json_schema() for name, spec in self.fields.items()},
            "additionalProperties": False,
        }
        required = [n for n, s in self.fields.items() if s.required and not self.partial]
        if required:
            doc["required"] = required
        if self.partial:
            doc["minProperties"] = 1
        return doc


# Fields several bodies share.
EMAIL = Field(str, format="email", max_length=254, doc="Email address")
NEW_PASSWORD = Field(str, min_length=8, max_length=128, doc="At least 8 characters")


def text(min_length: int = 1, max_length: int = 200, *, required: bool = True, doc: str = "") -> Field:
    return Field(str, required=required, min_length=min_length, max_length=max_length, doc=doc)
