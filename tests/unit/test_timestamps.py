"""One timestamp format: RFC 3339, UTC, three fractional digits, whatever precision a backend keeps."""

from __future__ import annotations

import re

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from proto.erp.crm.v1 import crm_pb2
from proto.erp.finance.v1 import finance_pb2
from runtime.protobuf import to_dict
from runtime.timestamps import RFC3339_PATTERN, format_timestamp, now, timestamp

SECONDS = 1_800_000_000  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize("nanos, shown", [
    (0, "2027-01-15T08:00:00.000Z"),            # protobuf writes no fraction at all
    (120_000_000, "2027-01-15T08:00:00.120Z"),  # 3 digits
    (123_456_000, "2027-01-15T08:00:00.123Z"),  # 6 digits, truncated
    (123_456_789, "2027-01-15T08:00:00.123Z"),  # 9 digits, truncated
    (999, "2027-01-15T08:00:00.000Z"),
])
def test_to_dict_writes_every_timestamp_with_milliseconds(nanos, shown):
    customer = crm_pb2.Customer(id="c", created_at=Timestamp(seconds=SECONDS, nanos=nanos))
    doc = to_dict(customer)
    assert doc["created_at"] == shown == format_timestamp(customer.created_at)
    assert re.match(RFC3339_PATTERN, doc["created_at"])
    assert "updated_at" not in doc  # unset message fields stay out, as before


def test_every_timestamp_field_of_a_record_is_rewritten():
    payment = finance_pb2.Payment(id="p", paid_at=Timestamp(seconds=SECONDS), created_at=Timestamp(seconds=SECONDS, nanos=5),
                                  updated_at=Timestamp(seconds=SECONDS, nanos=7_000_000))
    doc = to_dict(payment)
    assert [doc[k] for k in ("paid_at", "created_at", "updated_at")] == [
        "2027-01-15T08:00:00.000Z", "2027-01-15T08:00:00.000Z", "2027-01-15T08:00:00.007Z"]


def test_the_emulated_backends_keep_milliseconds():
    assert now().nanos % 1_000_000 == 0
    assert timestamp(SECONDS + 0.1239) == Timestamp(seconds=SECONDS, nanos=123_000_000)
