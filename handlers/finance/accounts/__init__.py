"""Accounts: the chart of accounts."""

from proto.erp.finance.v1 import finance_pb2
from runtime.rest import MONEY, Collection
from runtime.schema import Field, text

TYPES = ("asset", "liability", "equity", "revenue", "expense")  # the contract's Account.type values

ACCOUNTS = Collection(
    "finance",
    finance_pb2.Account,
    fields={
        "code": text(1, 20, doc="Unique within the organization, e.g. 1000"),
        "name": text(1, 200),
        "type": Field(str, choices=TYPES),
        "balance": MONEY,
    },
)
