"""The durable event spool: order, acknowledgement across reopen, torn frames, bounds, slots."""

from __future__ import annotations

import logging

import pytest

from runtime.events.spool import Spool, SpoolBusy, read_spool


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (item := spool.read_next()) is not None:
        out.append(item[1])
    return out


def test_records_come_back_in_order_and_acknowledged_ones_stay_gone_after_reopen(tmp_path):
    spool = Spool(tmp_path, 1 << 20, segment_bytes=64).open()  # tiny segments: many rolls
    for n in range(20):
        assert spool.append(b"event-%d" % n)
    assert spool.pending_records == 20
    position = None
    for n in range(12):
        position, payload = spool.read_next()
        assert payload == b"event-%d" % n
    spool.ack(position, 12)
    spool.close()

    again = Spool(tmp_path, 1 << 20, segment_bytes=64).open()
    assert again.pending_records == 8
    assert drain(again) == [b"event-%d" % n for n in range(12, 20)]
    assert list(read_spool(tmp_path)) == [b"event-%d" % n for n in range(12, 20)]
    assert len(list(tmp_path.glob("*.seg"))) < 10  # acknowledged segments were deleted


def test_a_torn_last_frame_is_cut_off_and_the_rest_replays(tmp_path):
    spool = Spool(tmp_path, 1 << 20).open()
    for n in range(3):
        spool.append(b"whole-%d" % n)
    spool.close()
    [segment] = tmp_path.glob("*.seg")
    with open(segment, "ab") as fh:
        fh.write(b"\x40\x00\x00\x00\x01\x02")  # a crash in the middle of a frame
    again = Spool(tmp_path, 1 << 20).open()
    assert again.pending_records == 3
    assert drain(again) == [b"whole-0", b"whole-1", b"whole-2"]
    again.append(b"after")
    assert drain(again) == [b"after"]


def test_the_spool_is_bounded_and_says_so_as_it_fills(tmp_path, caplog):
    spool = Spool(tmp_path, 4096).open()
    with caplog.at_level(logging.WARNING, logger="gateway.events"):
        accepted = sum(spool.append(b"x" * 100) for _ in range(60))
    assert accepted == 4096 // 108  # frame: 8-byte header + payload
    assert spool.refused == 60 - accepted
    assert spool.snapshot()["fill"] > 0.97
    messages = [r.getMessage() for r in caplog.records]
    for mark in ("50%", "75%", "90%", "100%"):
        assert any(mark in m for m in messages), messages
    assert any("is full" in m for m in messages)


def test_prepended_records_replay_before_everything_spooled(tmp_path):
    spool = Spool(tmp_path, 1 << 20).open()
    spool.append(b"later-1")
    spool.append(b"later-2")
    spool.prepend([b"earlier-1", b"earlier-2"])
    assert spool.pending_records == 4
    spool.close()
    assert drain(Spool(tmp_path, 1 << 20).open()) == [b"earlier-1", b"earlier-2", b"later-1", b"later-2"]


def test_an_emptied_spool_resets_and_a_slot_belongs_to_one_process(tmp_path):
    first = Spool.claim(tmp_path, 1 << 20)
    second = Spool.claim(tmp_path, 1 << 20)
    assert first.dir.name == "worker-0" and second.dir.name == "worker-1"
    with pytest.raises(SpoolBusy):
        Spool(tmp_path / "worker-0", 1 << 20).open()
    first.append(b"one")
    position, _ = first.read_next()
    first.ack(position, 1)
    assert first.reset_if_empty()
    assert list(first.dir.glob("*.seg")) == []
    first.append(b"two")
    assert drain(first) == [b"two"]
    first.close()
    assert Spool.claim(tmp_path, 1 << 20).dir.name == "worker-0"  # free again once closed
