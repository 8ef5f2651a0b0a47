"""Protobuf messages -> JSON-ready dicts for responses."""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from runtime.timestamps import millis

_TIMESTAMP = "google.protobuf.Timestamp"


def to_dict(message: Message) -> dict[str, Any]:
    # Field names as in the .proto (snake_case, like the REST contract), defaults included
    # so clients see every field; timestamps in the one format of runtime.timestamps.
    doc = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    plan = _timestamp_fields(message.DESCRIPTOR)
    if plan:
        _normalize(plan, doc)
    return doc


Plan = tuple[tuple[str, "Plan | None", bool], ...]


@cache
def _timestamp_fields(descriptor: Descriptor, _seen: frozenset[str] = frozenset()) -> Plan:
    """(field, None for a Timestamp else the plan of the message holding some, repeated)."""
    found: list[tuple[str, Plan | None, bool]] = []
    for fd in descriptor.fields:
        kind = fd.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue
        if kind.full_name == _TIMESTAMP:
            found.append((fd.name, None, fd.is_repeated))
        elif kind.full_name not in _seen:
            inner = _timestamp_fields(kind, _seen | {descriptor.full_name})
            if inner:
                found.append((fd.name, inner, fd.is_repeated))
    return tuple(found)


def _normalize(plan: Plan, doc: dict[str, Any]) -> None:
    """Rewrite, in place, the strings MessageToDict wrote for Timestamps (string work only:
    ~0.2 us each, against ~4 us to format one from the message again)."""
    for name, inner, repeated in plan:
        value = doc.get(name)  # an unset message field is left out by MessageToDict
        if value is None:
            continue
        if inner is None:
            doc[name] = [millis(v) for v in value] if repeated else millis(value)
        elif repeated:
            for item in value:
                _normalize(inner, item)
        else:
            _normalize(inner, value)
