"""REST resources over the CRUD backends: list, get, create, update and delete, written once.

Every CRM, HRM and finance contract has the same shape per entity (AIP-style List/Get/Create/
Update(entity + FieldMask)/Delete), so one `Collection` per entity says what differs, which
fields a client may write and which filters a list takes, and each handler file is a
declaration plus one call:

    CUSTOMERS = Collection("crm", crm_pb2.Customer, fields={...}, filters={...})

    @endpoint("GET", "/api/v1/crm/customers/{id}", permission="crm.customers:read", ...)
    async def get_customer(req, ctx, id):
        return await CUSTOMERS.get(ctx, id)

Bodies use the proto field names, money as `{"amount": "120.50", "currency": "EUR"}`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from runtime.context import Context
from runtime.errors import PayloadTooLarge, ValidationFailed
from runtime.protobuf import to_dict
from runtime.reply import Reply
from runtime.schema import Body, Field

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

MONEY = Field(
    dict,
    properties=Body("Money", {
        "amount": Field(str, format="decimal", doc="Decimal string, e.g. \"120.50\""),
        "currency": Field(str, format="currency", doc="ISO 4217 code, e.g. EUR"),
    }),
    doc="An amount of money; never a binary float",
)

PAGING = {
    "page_size": Field(int, required=False, default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE,
                       doc="How many items per page"),
    "page_token": Field(str, required=False, min_length=1, max_length=512,
                        doc="The `next_page_token` of the previous page; opaque"),
}

# Query parameters whose List request field has another name.
_REQUEST_FIELD = {"q": "query"}


@dataclass(frozen=True)
class Page:
    """A list answer's `data`: `{items: [message...], next_page_token, total_size}`."""

    message: type[Message]


@dataclass(frozen=True)
class Collection:
    """One entity of a CRUD backend, as a REST collection."""

    service: str  # the backend: ctx.backends.<service>
    message: type[Message]  # e.g. crm_pb2.Customer -> ListCustomers, GetCustomer, ...
    fields: Mapping[str, Field]  # what a client may write: the create body; PATCH takes any subset
    filters: Mapping[str, Field] = field(default_factory=dict)  # list query parameters
    plural: str = ""  # RPC suffix of List/BatchGet; default: the message name + "s"

    @property
    def name(self) -> str:
        return self.message.DESCRIPTOR.name

    @cached_property
    def _plural(self) -> str:
        return self.plural or self.name + "s"

    @cached_property
    def create_body(self) -> Body:
        return Body(f"Create{self.name}", self.fields)

    @cached_property
    def update_body(self) -> Body:
        # Every field optional; at least one; the fields sent become the update mask.
        return Body(f"Update{self.name}", self.fields, partial=True)

    @cached_property
    def query(self) -> Body:
        return Body(f"List{self._plural}Query", {**PAGING, **self.filters})

    @cached_property
    def page(self) -> Page:
        return Page(self.message)

    @cached_property
    def _pb2(self) -> Any:  # the generated module holding the request messages
        return importlib.import_module(self.message.__module__)

    def _request(self, rpc: str, **values: Any) -> Message:
        return getattr(self._pb2, f"{rpc}Request")(**values)

    def _call(self, ctx: Context, rpc: str, request: Message) -> Any:
        return getattr(getattr(ctx.backends, self.service), rpc)(request)

    def _record(self, ctx: Context, data: Mapping[str, Any], **extra: Any) -> Message:
        record = json_format.ParseDict({**data, **extra}, self.message())
        limit = ctx.resources.config.limits.max_record_bytes
        size = record.ByteSize()
        if size > limit:  # bounded work per record, for every later read of it too
            raise PayloadTooLarge(f"A {self.name.lower()} is at most {limit} bytes encoded",
                                  errors={"body": [f"encodes to {size} bytes; the limit is {limit}"]})
        return record

    async def list(self, ctx: Context) -> dict[str, Any]:
        query = dict(ctx.query or {})
        request = self._request(
            f"List{self._plural}",
            page_size=query.pop("page_size", DEFAULT_PAGE_SIZE),
            page_token=query.pop("page_token", ""),
            **{_REQUEST_FIELD.get(name, name): value for name, value in query.items()},
        )
        answer = await self._call(ctx, f"List{self._plural}", request)
        limit, size = ctx.resources.config.limits.max_response_bytes, answer.ByteSize()
        if size > limit:  # refused before it is encoded, cached or sent
            raise ValidationFailed("This page is too large; ask for fewer items", errors={
                "page_size": [f"the page is {size} bytes encoded, over the {limit} byte limit; ask for fewer items"]})
        return {
            "items": [to_dict(row) for row in getattr(answer, self._plural.lower())],
            "next_page_token": answer.next_page_token,
            "total_size": answer.total_size,
        }

    async def get(self, ctx: Context, id: str) -> dict[str, Any]:
        return to_dict(await self._call(ctx, f"Get{self.name}", self._request(f"Get{self.name}", id=id)))

    async def create(self, ctx: Context) -> Reply:
        one = self.name.lower()
        created = await self._call(
            ctx, f"Create{self.name}", self._request(f"Create{self.name}", **{one: self._record(ctx, ctx.body or {})})
        )
        return Reply(to_dict(created), message=f"{self.name} created",
                     headers={"Location": f"{ctx.route.path}/{created.id}"})

    async def update(self, ctx: Context, id: str) -> Reply:
        one = self.name.lower()
        request = self._request(
            f"Update{self.name}",
            **{one: self._record(ctx, ctx.body or {}, id=id)},
            update_mask=FieldMask(paths=sorted(ctx.body or {})),  # exactly the fields sent, even "" or 0
        )
        updated = await self._call(ctx, f"Update{self.name}", request)
        return Reply(to_dict(updated), message=f"{self.name} updated")

    async def delete(self, ctx: Context, id: str) -> Reply:
        # 200 with the envelope (data null), not 204: every answer of this API is an envelope.
        await self._call(ctx, f"Delete{self.name}", self._request(f"Delete{self.name}", id=id))
        return Reply(None, message=f"{self.name} deleted")
