"""A generic in-memory record store: per organization, insertion-ordered, validated by a table.

crm, hrm and finance differ only in their ``Resource`` tables; the rules (required fields,
allowed values, unique fields, same-organization references, field-mask updates, paging) are
written once here. A record of another organization is indistinguishable from a missing one.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from emulator.services.rpc import ServiceError, invalid, not_found
from runtime.schema import FORBIDDEN_CHARACTERS, FORBIDDEN_PROBLEM
from runtime.timestamps import now

M = TypeVar("M", bound=Message)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_BATCH = 1000
MAX_RECORD_BYTES = 65_536  # a record, encoded: bounded work for every read of it
MAX_LIST_ITEMS = 100  # items of a list inside a record (invoice lines)
IMMUTABLE = frozenset({"id", "organization_id", "created_at", "updated_at"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # fullmatch: `$` accepts a trailing newline
_CURRENCY = re.compile(r"[A-Z]{3}")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,18})?")


@dataclass(frozen=True)
class Resource:
    """How one entity type is validated, filtered and named in its service's RPCs."""

    message: type[Message]  # e.g. crm_pb2.Customer -> GetCustomer, ListCustomers, ...
    plural: str  # "Customers": RPC suffix; lower-cased, the repeated field of responses
    required: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()  # unique per organization -> ALREADY_EXISTS
    choices: Mapping[str, frozenset[str]] = field(default_factory=dict)
    refs: Mapping[str, str] = field(default_factory=dict)  # field -> resource in the same store
    # field -> a record kind another service holds ("Customer", "User"), looked up through
    # Store.lookups (wired by start_backends); same organization, must exist
    foreign: Mapping[str, str] = field(default_factory=dict)
    rules: "Callable[[Store, str, Message], None] | None" = None  # business rules, after the refs
    filters: tuple[str, ...] = ()  # List request fields matched exactly when set
    search: tuple[str, ...] = ()  # fields the List request's free-text `query` matches
    prepare: Callable[[Message], None] | None = None  # defaults, derived fields, extra checks

    @property
    def name(self) -> str:
        return self.message.DESCRIPTOR.name

    @property
    def field(self) -> str:  # the request field holding one record, e.g. "customer"
        return self.name.lower()


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def paginate(items: Sequence[M], page_size: int, page_token: str) -> tuple[list[M], str, int]:
    """One page of items, the token of the next page ("" on the last), and the total."""
    if page_size < 0:
        raise invalid("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    offset = 0
    if page_token:
        try:
            raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)).decode()
            prefix, _, number = raw.partition(":")
            offset = int(number)
            if prefix != "o" or offset < 0:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid("page_token", "is not a token this service issued") from None
    end = offset + size
    return list(items[offset:end]), encode_page_token(end) if end < len(items) else "", len(items)


def _now() -> Timestamp:
    return now()  # milliseconds: the one precision of runtime.timestamps


def _copy(msg: M) -> M:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _is_set(row: Message, name: str) -> bool:
    fd = row.DESCRIPTOR.fields_by_name[name]
    if fd.message_type is not None and not fd.is_repeated:
        return row.HasField(name)  # a message field is "set" even when all zeros
    return bool(getattr(row, name))


def _check_size(row: Message) -> None:
    for fd, value in row.ListFields():
        if fd.is_repeated and len(value) > MAX_LIST_ITEMS:
            raise invalid(fd.name, f"at most {MAX_LIST_ITEMS} items")
    if row.ByteSize() > MAX_RECORD_BYTES:
        raise invalid("record", f"is larger than {MAX_RECORD_BYTES} bytes encoded")


def _check_text(msg: Message, prefix: str = "") -> None:
    """No control or bidirectional-override characters in any string of the record."""
    for fd, value in msg.ListFields():
        if fd.message_type is not None:
            if not fd.message_type.full_name.startswith("google.protobuf."):
                for i, item in enumerate(value) if fd.is_repeated else [(None, value)]:
                    _check_text(item, f"{prefix}{fd.name}" + (f"[{i}]" if i is not None else "") + ".")
            continue
        if fd.type == fd.TYPE_STRING:
            for text in value if fd.is_repeated else [value]:
                if FORBIDDEN_CHARACTERS.search(text):
                    raise invalid(prefix + fd.name, FORBIDDEN_PROBLEM)


def decimal(text: str) -> Decimal | None:
    """An ASCII decimal string as a Decimal, else None (Decimal() alone takes Unicode digits)."""
    if not _DECIMAL.fullmatch(text):
        return None
    return Decimal(text)


def _check_money(msg: Message, prefix: str = "") -> None:
    """Every Money anywhere in the record is a currency code and a decimal string."""
    for fd, value in msg.ListFields():
        if fd.message_type is None or fd.message_type.full_name.startswith("google.protobuf."):
            continue
        for i, item in enumerate(value) if fd.is_repeated else [(None, value)]:
            path = f"{prefix}{fd.name}" + (f"[{i}]" if i is not None else "")
            if fd.message_type.full_name != "erp.common.v1.Money":
                _check_money(item, path + ".")
                continue
            if not _CURRENCY.fullmatch(item.currency):
                raise invalid(f"{path}.currency", "must be an ISO 4217 code such as USD")
            if decimal(item.amount) is None:
                raise invalid(f"{path}.amount", "must be a decimal string")


class Store:
    def __init__(self, resources: Iterable[Resource]) -> None:
        self.resources = {r.name: r for r in resources}
        # kind -> exists(organization, id), for references into another service's records
        self.lookups: dict[str, Callable[[str, str], bool]] = {}
        # resource name -> organization id -> record id -> record (dicts keep insertion order)
        self._rows: dict[str, defaultdict[str, dict[str, Message]]] = {
            name: defaultdict(dict) for name in self.resources
        }

    def _table(self, kind: str, org: str) -> dict[str, Message]:
        return self._rows[kind][org]

    def _existing(self, kind: str, org: str, id: str) -> Message:
        if not id:
            raise invalid("id", "is required")
        row = self._table(kind, org).get(id)
        if row is None:
            raise not_found(kind, id)
        return row

    def exists(self, kind: str, org: str, id: str) -> bool:
        return id in self._table(kind, org)

    def get(self, kind: str, org: str, id: str) -> Message:
        return _copy(self._existing(kind, org, id))

    def batch_get(self, kind: str, org: str, ids: Sequence[str]) -> list[Message]:
        if len(ids) > MAX_BATCH:
            raise invalid("ids", f"at most {MAX_BATCH} per call")
        table = self._table(kind, org)
        found = (table.get(i) for i in dict.fromkeys(ids))  # request order, duplicates once
        return [_copy(row) for row in found if row is not None]

    def list(self, kind: str, org: str, *, page_size: int = 0, page_token: str = "",
             filters: Mapping[str, str] | None = None, query: str = "") -> tuple[list[Message], str, int]:
        spec, wanted = self.resources[kind], {k: v for k, v in (filters or {}).items() if v}
        needle = query.strip().lower()
        rows = [
            row for row in self._table(kind, org).values()
            if all(getattr(row, k) == v for k, v in wanted.items())
            and (not needle or any(needle in getattr(row, f).lower() for f in spec.search))
        ]
        page, token, total = paginate(rows, page_size, page_token)
        return [_copy(r) for r in page], token, total

    def create(self, kind: str, org: str, record: Message) -> Message:
        row = _copy(record)
        for name in IMMUTABLE:
            row.ClearField(name)
        row.id, row.organization_id = str(uuid.uuid4()), org
        self._validate(kind, org, row)
        row.created_at.CopyFrom(_now())
        row.updated_at.CopyFrom(row.created_at)
        self._table(kind, org)[row.id] = row
        return _copy(row)

    def update(self, kind: str, org: str, patch: Message, mask: FieldMask | None = None) -> Message:
        current = self._existing(kind, org, patch.id)
        paths = list(mask.paths) if mask is not None and mask.paths else [
            fd.name for fd, _ in patch.ListFields() if fd.name not in IMMUTABLE  # AIP-134 implied mask
        ]
        fields = patch.DESCRIPTOR.fields_by_name
        for path in paths:
            top = path.split(".", 1)[0]
            if top not in fields:
                raise invalid("update_mask", f"unknown field {path!r}")
            if top in IMMUTABLE:
                raise invalid("update_mask", f"{path!r} cannot be changed")
        row = _copy(current)
        if paths:
            FieldMask(paths=paths).MergeMessage(patch, row, replace_message_field=True,
                                                replace_repeated_field=True)
        self._validate(kind, org, row)
        row.updated_at.CopyFrom(_now())
        self._table(kind, org)[row.id] = row
        return _copy(row)

    def delete(self, kind: str, org: str, id: str) -> None:
        self._existing(kind, org, id)
        del self._table(kind, org)[id]

    def _validate(self, kind: str, org: str, row: Message) -> None:
        spec = self.resources[kind]
        if spec.prepare is not None:  # first: it fills defaults and derived fields
            spec.prepare(row)
        for name in spec.required:
            if not _is_set(row, name):
                raise invalid(name, "is required")
        for name, allowed in spec.choices.items():
            if getattr(row, name) not in allowed:
                raise invalid(name, f"must be one of {', '.join(sorted(allowed))}")
        if "email" in row.DESCRIPTOR.fields_by_name and row.email and not _EMAIL.fullmatch(row.email):
            raise invalid("email", "must be a valid email address")
        _check_size(row)
        _check_text(row)
        _check_money(row)
        for name, target in spec.refs.items():
            ref = getattr(row, name)
            if ref and ref not in self._table(target, org):  # another org's id: as if absent
                raise invalid(name, f"no {target.lower()} {ref!r} in this organization")
        for name, target in spec.foreign.items():
            ref, exists = getattr(row, name), self.lookups.get(target)
            if ref and exists is not None and not exists(org, ref):
                raise invalid(name, f"no {target.lower()} {ref!r} in this organization")
        if spec.rules is not None:
            spec.rules(self, org, row)
        for name in spec.unique:
            value = getattr(row, name)
            if value and any(getattr(other, name) == value and other.id != row.id
                             for other in self._table(kind, org).values()):
                raise ServiceError(grpc.StatusCode.ALREADY_EXISTS,
                                   f"{name}: {value!r} already exists")


def defaults(**values: str) -> Callable[[Message], None]:
    """A ``prepare`` hook that fills empty string fields, e.g. a new deal's stage."""

    def prepare(row: Message) -> None:
        for name, value in values.items():
            if not getattr(row, name):
                setattr(row, name, value)

    return prepare
