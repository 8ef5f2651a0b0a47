"""Protobuf messages -> JSON-ready dicts for responses."""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from runtime.timestamps import format_timestamp

_TIMESTAMP = "google.protobuf.Timestamp"


def to_dict(message: Message) -> dict[str, Any]:
    # Field names as in the .proto (snake_case, like the REST contract), defaults included
    # so clients see every field; timestamps in the one format of runtime.timestamps.
    doc = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    if _timestamp_fields(message.DESCRIPTOR):
        _format_timestamps(message, doc)
    return doc


@cache
def _timestamp_fields(descriptor: Descriptor, _seen: frozenset[str] = frozenset()) -> tuple[tuple[str, bool, bool], ...]:
    """(field, is a Timestamp (else a message holding some), repeated) for the fields to rewrite."""
    found = []
    for fd in descriptor.fields:
        kind = fd.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue
        if kind.full_name == _TIMESTAMP:
            found.append((fd.name, True, fd.is_repeated))
        elif kind.full_name not in _seen and _timestamp_fields(kind, _seen | {descriptor.full_name}):
            found.append((fd.name, False, fd.is_repeated))
    return tuple(found)


def _format_timestamps(message: Message, doc: dict[str, Any]) -> None:
    for name, is_timestamp, repeated in _timestamp_fields(message.DESCRIPTOR):
        if name not in doc:  # an unset message field is left out by MessageToDict
            continue
        value = getattr(message, name)
        if is_timestamp:
            doc[name] = [format_timestamp(t) for t in value] if repeated else format_timestamp(value)
        elif repeated:
            for item, item_doc in zip(value, doc[name]):
                _format_timestamps(item, item_doc)
        else:
            _format_timestamps(value, doc[name])
