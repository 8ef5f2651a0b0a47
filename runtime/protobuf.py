"""Protobuf messages -> JSON-ready dicts for responses."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def to_dict(message: Message) -> dict[str, Any]:
    # Field names as in the .proto (snake_case, like the REST contract), defaults included
    # so clients see every field; timestamps become RFC 3339 strings.
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
