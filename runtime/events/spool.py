"""The durable local spool: where events wait while the broker is away or the queue is full.

One directory per process (a worker takes the first `worker-<n>` slot whose lock it can get,
so a restarted gateway finds its predecessors' spools). In it, append-only segment files
`<number>.seg` of frames `length (u32) | crc32 (u32) | payload`, and a `cursor` file saying
how far replay has been acknowledged by the broker (`<segment> <offset>`).

- append() writes the frame at once (so a crashed process loses nothing the kernel has);
  sync() fsyncs, and the publisher calls it in batches (every `kafka.spool_fsync_interval`).
- Replay reads from its own position; ack() moves the cursor over what the broker has
  acknowledged, deleting segments left behind; rewind() goes back to the cursor.
- prepend() puts records before everything spooled (events that were handed to the
  producer before the outage, and come back undelivered later, keep their order).
- Bounded: `pending_bytes` never passes `max_bytes`; append() refuses past it. The fill is
  logged at 50, 75, 90 and 100 %.
- Recovery: a torn last frame (crash mid-write) fails its length or CRC and is cut off.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Iterator

log = logging.getLogger("gateway.events")

FRAME = struct.Struct("<II")
FIRST_SEGMENT = 1_000_000_000  # room below for prepend()
FILL_MARKS = (0.5, 0.75, 0.9, 1.0)


class SpoolBusy(Exception):
    """Another process holds the spool directory."""


def _segment_name(number: int) -> str:
    return f"{number:012d}.seg"


def frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(end offset, payload) of each whole, intact frame, stopping at the first bad one."""
    offset = 0
    while offset + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, offset)
        end = offset + FRAME.size + length
        if end > len(data):
            return
        payload = data[offset + FRAME.size:end]
        if zlib.crc32(payload) != crc:
            return
        yield end, payload
        offset = end


class Spool:
    def __init__(self, directory: str | os.PathLike, max_bytes: int, segment_bytes: int = 16 << 20) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(max_bytes // 4, 4096))
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._segments: list[int] = []  # numbers, ascending
        self._sizes: dict[int, int] = {}
        self._write_fd: int | None = None
        self._cursor = (FIRST_SEGMENT, 0)  # acknowledged up to here
        self._cursor_saved = self._cursor
        self._read = self._cursor  # replay reads from here
        self._read_file = None
        self._read_buffer = b""
        self._read_buffer_at = (0, 0)
        self.pending_records = 0
        self.dirty = False
        self._retired: list[int] = []  # write fds of full segments, to fsync and close
        self._dir_dirty = False
        self.appended = 0
        self.refused = 0
        self._mark = 0  # index into FILL_MARKS of the next mark to log

    # ------------------------------------------------------------------ opening

    def open(self, blocking: bool = False) -> "Spool":
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(str(self.dir)) from None
        self._lock_fd = fd
        self._recover()
        return self

    @classmethod
    def claim(cls, root: str | os.PathLike, max_bytes: int, slots: int = 256) -> "Spool":
        """The first `worker-<n>` slot under `root` no live process holds."""
        for n in range(slots):
            try:
                return cls(Path(root) / f"worker-{n}", max_bytes).open()
            except SpoolBusy:
                continue
        raise SpoolBusy(f"all {slots} spool slots under {root} are taken")

    def _recover(self) -> None:
        numbers = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        cursor_file = self.dir / "cursor"
        if cursor_file.exists():
            seg, off = cursor_file.read_text().split()
            self._cursor = (int(seg), int(off))
        elif numbers:
            self._cursor = (numbers[0], 0)
        for number in numbers:
            if number < self._cursor[0]:  # acknowledged before a crash, not yet deleted
                os.unlink(self.dir / _segment_name(number))
                continue
            path = self.dir / _segment_name(number)
            data = path.read_bytes()
            start = self._cursor[1] if number == self._cursor[0] else 0
            end = 0
            for end, _ in frames(data):  # noqa: B007  (the last frame's end is what counts)
                pass
            if end < len(data):
                if number != numbers[-1]:
                    log.error("spool segment %s is damaged after byte %d; replaying what precedes", path, end)
                with open(path, "r+b") as fh:  # a torn last frame: cut it off
                    fh.truncate(end)
            self.pending_records += sum(1 for at, _ in frames(data[:end]) if at > start)
            self._segments.append(number)
            self._sizes[number] = end
        if not self._segments:
            self._cursor = (max(self._cursor[0], FIRST_SEGMENT), 0)
        self._cursor_saved = self._cursor
        self._read = self._cursor
        if self.pending_records:
            log.warning("spool %s holds %d events from before; replaying them when the broker is reachable",
                        self.dir, self.pending_records)

    # ------------------------------------------------------------------ writing

    @property
    def pending_bytes(self) -> int:
        total = sum(self._sizes.values())
        if self._cursor[0] in self._sizes:
            total -= self._cursor[1]
        return total

    def append(self, payload: bytes) -> bool:
        frame = FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._lock_fd is None:  # closed (the worker is stopping): the slot is not ours now
                self.refused += 1
                log.error("event spool %s is closed: event refused", self.dir)
                return False
            if self.pending_bytes + len(frame) > self.max_bytes:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    log.error("event spool %s is full (%d bytes): %d events refused", self.dir, self.max_bytes,
                              self.refused)
                self._log_fill(1.0)
                return False
            if self._write_fd is None or self._sizes[self._segments[-1]] >= self.segment_bytes:
                self._roll()
            assert self._write_fd is not None  # _roll() opened the current segment
            os.write(self._write_fd, frame)
            self._sizes[self._segments[-1]] += len(frame)
            self.pending_records += 1
            self.appended += 1
            self.dirty = True
            self._log_fill(self.pending_bytes / self.max_bytes)
        return True

    def _log_fill(self, fill: float) -> None:
        while self._mark < len(FILL_MARKS) and fill >= FILL_MARKS[self._mark]:
            log.warning("event spool %s is %d%% full (%d events waiting)", self.dir,
                        round(FILL_MARKS[self._mark] * 100), self.pending_records)
            self._mark += 1

    def _roll(self) -> None:
        # No fsync here: append() runs on the request path. The full segment and the
        # directory entry of the new one are synced by the next sync(), in the background.
        if self._write_fd is not None:
            self._retired.append(self._write_fd)
        number = self._segments[-1] + 1 if self._segments else self._cursor[0]
        self._write_fd = os.open(self.dir / _segment_name(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(number)
        self._sizes[number] = os.fstat(self._write_fd).st_size
        self._dir_dirty = True

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync(self) -> None:
        """fsync what was appended and persist the acknowledged cursor (batched by the caller)."""
        with self._lock:
            fd, dirty, retired, dir_dirty = self._write_fd, self.dirty, self._retired, self._dir_dirty
            self.dirty, self._retired, self._dir_dirty = False, [], False
            cursor = self._cursor
        for old in retired:
            os.fsync(old)
            os.close(old)
        if dir_dirty:
            self._fsync_dir()
        if dirty and fd is not None:
            try:
                os.fsync(fd)
            except OSError:  # closed meanwhile by a reset; nothing left to make durable
                pass
        if cursor != self._cursor_saved:
            tmp = self.dir / "cursor.tmp"
            with open(tmp, "w") as fh:
                fh.write(f"{cursor[0]} {cursor[1]}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dir / "cursor")
            self._cursor_saved = cursor

    def prepend(self, payloads: list[bytes]) -> None:
        """Records older than everything spooled: a segment before the cursor's."""
        if not payloads:
            return
        with self._lock:
            if self.pending_records == 0 and self._segments:
                self._reset_locked()
            # Segments before the cursor's are deleted, so the one below the first is free. (The
            # publisher only prepends before replay has acknowledged anything of this spool.)
            number = self._segments[0] - 1 if self._segments else self._cursor[0]
            data = b"".join(FRAME.pack(len(p), zlib.crc32(p)) + p for p in payloads)
            path = self.dir / _segment_name(number)
            with open(path, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._segments.insert(0, number)
            self._sizes[number] = len(data)
            self.pending_records += len(payloads)
            self._cursor = self._read = (number, 0)
            self._close_reader()
        self._fsync_dir()
        self.sync()

    # ------------------------------------------------------------------ replay

    def read_next(self) -> tuple[tuple[int, int], bytes] | None:
        """The next record after the read position (position after it, payload), or None."""
        while True:
            seg, off = self._read
            with self._lock:
                if seg not in self._sizes:
                    later = [n for n in self._segments if n > seg]
                    if not later:
                        return None
                    self._read = (later[0], 0)
                    self._close_reader()
                    continue
                size = self._sizes[seg]
                last = seg == self._segments[-1]
            if off >= size:
                if last:
                    return None
                with self._lock:
                    later = [n for n in self._segments if n > seg]
                self._read = (later[0], 0)
                self._close_reader()
                continue
            record = self._frame_at(seg, off, size)
            if record is None:
                return None
            end, payload = record
            self._read = (seg, end)
            return self._read, payload

    def _frame_at(self, seg: int, off: int, size: int) -> tuple[int, bytes] | None:
        start_seg, start_off = self._read_buffer_at
        if start_seg != seg or not (start_off <= off < start_off + len(self._read_buffer)) or \
                off + FRAME.size > start_off + len(self._read_buffer):
            with open(self.dir / _segment_name(seg), "rb") as fh:
                fh.seek(off)
                self._read_buffer = fh.read(min(size - off, 1 << 20))
            self._read_buffer_at = (seg, off)
            start_off = off
        rel = off - start_off
        length, crc = FRAME.unpack_from(self._read_buffer, rel)
        if rel + FRAME.size + length > len(self._read_buffer):
            with open(self.dir / _segment_name(seg), "rb") as fh:
                fh.seek(off)
                self._read_buffer = fh.read(max(FRAME.size + length, min(size - off, 1 << 20)))
            self._read_buffer_at = (seg, off)
            rel = 0
            if FRAME.size + length > len(self._read_buffer):
                return None  # not all written yet
        payload = self._read_buffer[rel + FRAME.size:rel + FRAME.size + length]
        if zlib.crc32(payload) != crc:
            return None
        return off + FRAME.size + length, payload

    def _close_reader(self) -> None:
        self._read_buffer, self._read_buffer_at = b"", (0, 0)

    def ack(self, position: tuple[int, int], records: int) -> None:
        """The broker has everything up to `position` (`records` more of them)."""
        with self._lock:
            self._cursor = position
            self.pending_records = max(0, self.pending_records - records)
            for number in [n for n in self._segments if n < position[0]]:
                self._segments.remove(number)
                del self._sizes[number]
                os.unlink(self.dir / _segment_name(number))
            if self.pending_bytes < self.max_bytes * FILL_MARKS[0]:
                self._mark = 0

    def rewind(self) -> None:
        self._read = self._cursor
        self._close_reader()

    def reset_if_empty(self) -> bool:
        """Everything acknowledged: delete the segments and start afresh."""
        with self._lock:
            if self.pending_records or self._read != self._cursor:
                return False
            self._reset_locked()
        self.sync()
        return True

    def _reset_locked(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        next_number = (self._segments[-1] + 1) if self._segments else self._cursor[0]
        for number in self._segments:
            os.unlink(self.dir / _segment_name(number))
        self._segments.clear()
        self._sizes.clear()
        self._cursor = self._read = (next_number, 0)
        self._close_reader()
        self._mark = 0

    def close(self) -> None:
        self.sync()
        with self._lock:
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def snapshot(self) -> dict[str, int | float]:
        pending = self.pending_bytes
        return {"pending": self.pending_records, "bytes": pending, "max_bytes": self.max_bytes,
                "fill": round(pending / self.max_bytes, 4), "refused": self.refused}


def read_spool(directory: str | os.PathLike) -> Iterator[bytes]:
    """Every pending payload of a spool directory, in order, without taking it (for tail)."""
    root = Path(directory)
    cursor = (0, 0)
    if (root / "cursor").exists():
        seg, off = (root / "cursor").read_text().split()
        cursor = (int(seg), int(off))
    for path in sorted(root.glob("*.seg")):
        number = int(path.stem)
        if number < cursor[0]:
            continue
        for end, payload in frames(path.read_bytes()):
            if number == cursor[0] and end <= cursor[1]:
                continue
            yield payload
