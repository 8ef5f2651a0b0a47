"""Generated request ids are uuid4 hex, as /openapi.json promises; well-formed incoming ones are kept."""

import uuid

from runtime.request_id import new_request_id, request_id


def test_generated_ids_are_uuid4_hex_and_distinct():
    seen = set()
    for _ in range(2000):
        rid = new_request_id()
        parsed = uuid.UUID(hex=rid)
        assert parsed.hex == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(rid)
    assert len(seen) == 2000


def test_incoming_id_kept_only_when_well_formed():
    assert request_id("abc-123_XYZ.9:z") == "abc-123_XYZ.9:z"
    for bad in (None, "", "short", "a" * 129, "abcdefgh\n", "abc def ghi"):
        generated = request_id(bad)
        assert generated != bad and uuid.UUID(hex=generated).version == 4
