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


def test_a_forked_worker_never_repeats_its_parents_ids():
    """Ids come from a pool of random bytes; a fork must not inherit the unused part of it,
    or two Granian workers would stamp the same ids."""
    import os

    new_request_id()  # the parent's pool is now filled and partly unused
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave without running pytest's teardown
        os.write(write, ",".join(new_request_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    parent = {new_request_id() for _ in range(5)}
    assert len(child) == 5 and not child & parent


def test_ids_stay_distinct_across_pool_refills():
    seen = {new_request_id() for _ in range(3 * 4096 // 16 + 7)}  # three refills and a bit
    assert len(seen) == 3 * 4096 // 16 + 7
