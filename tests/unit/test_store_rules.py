"""The emulated backends refuse what a real ERP would, even when a caller skips the gateway."""

from __future__ import annotations

import grpc
import pytest

from emulator.services import crm, finance
from emulator.services.rpc import ServiceError
from emulator.services.store import Store
from proto.erp.common.v1.common_pb2 import Money
from proto.erp.crm.v1 import crm_pb2
from proto.erp.finance.v1 import finance_pb2


def refused(call, field: str) -> str:
    with pytest.raises(ServiceError) as caught:
        call()
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details.startswith(field + ": "), caught.value.details
    return caught.value.details


@pytest.mark.parametrize("name", ["A\x00", "A\u202e", "A\n"])
def test_text_with_control_or_bidi_characters_is_refused(name):
    store = Store(crm.RESOURCES)
    refused(lambda: store.create("Customer", "org", crm_pb2.Customer(name=name)), "name")


@pytest.mark.parametrize("amount", ["\u0661\u0662", "1\n", "NaN", "Infinity"])
def test_money_takes_ascii_decimals_only(amount):
    store = Store(finance.RESOURCES)
    account = finance_pb2.Account(code="1", name="Cash", type="asset", balance=Money(amount=amount, currency="EUR"))
    refused(lambda: store.create("Account", "org", account), "balance.amount")


def test_references_into_another_service_are_looked_up_for_the_callers_organization():
    crm_store, finance_store = Store(crm.RESOURCES), Store(finance.RESOURCES)
    finance_store.lookups["Customer"] = lambda org, id: crm_store.exists("Customer", org, id)
    theirs = crm_store.create("Customer", "other-org", crm_pb2.Customer(name="C"))
    invoice = finance_pb2.Invoice(customer_id=theirs.id, number="1", total=Money(amount="1", currency="EUR"))
    assert "no customer" in refused(lambda: finance_store.create("Invoice", "org", invoice), "customer_id")
    assert finance_store.create("Invoice", "other-org", invoice).customer_id == theirs.id


def test_a_list_inside_a_record_and_the_record_itself_are_bounded():
    from emulator.services.store import MAX_LIST_ITEMS, MAX_RECORD_BYTES

    store = Store(finance.RESOURCES)
    line = finance_pb2.InvoiceLine(description="x", quantity="1", unit_price=Money(amount="1", currency="EUR"))
    many = finance_pb2.Invoice(customer_id="c", number="1", lines=[line] * (MAX_LIST_ITEMS + 1))
    refused(lambda: store.create("Invoice", "org", many), "lines")
    big_line = finance_pb2.InvoiceLine(description="x" * (MAX_RECORD_BYTES // 50), quantity="1",
                                       unit_price=Money(amount="1", currency="EUR"))
    big = finance_pb2.Invoice(customer_id="c", number="2", lines=[big_line] * 60)
    refused(lambda: store.create("Invoice", "org", big), "record")
