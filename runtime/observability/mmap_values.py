"""prometheus-client's multiprocess value (one float in a per-process mmap file), cheaper per update.

prometheus-client's own `MultiProcessValue` asks the kernel for the process id on every
update (to notice a fork) and goes through three calls per write: with five updates per
request (in-flight up and down, the request counter, the latency histogram's sum and bucket)
plus the cache counter, metrics were ~11 µs of CPU per request in a Granian worker
(loadtests/README.md). This class writes the same files, in the same format (`<kind>_<pid>.db`,
read by `multiprocess.MultiProcessCollector` and `mark_process_dead` as before), but notices a
fork with `os.register_at_fork` instead, and writes the packed value straight into the map.
`reopen_after_fork()` is also called by `metrics.worker_started()`, for a process created in
any other way.
"""

from __future__ import annotations

import os
import struct
from threading import Lock
from typing import Any

from prometheus_client.mmap_dict import MmapedDict, mmap_key

_pack = struct.Struct(b"dd").pack
_lock = Lock()  # one for every value, as prometheus-client's: MmapedDict is not thread-safe when it grows
_files: dict[str, MmapedDict] = {}
_values: list["MmapValue"] = []
_pid = os.getpid()


class MmapValue:
    """What prometheus-client's metric classes expect of `values.ValueClass`."""

    _multiprocess = True
    __slots__ = ("_params", "_file", "_key", "_value", "_timestamp", "_position")

    def __init__(self, typ: str, metric_name: str, name: str, labelnames: Any, labelvalues: Any, help_text: str,
                 multiprocess_mode: str = "", **kwargs: Any) -> None:
        self._params = typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode
        with _lock:
            _check_pid()
            self._open()
            _values.append(self)

    def _open(self) -> None:
        typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode = self._params
        prefix = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
        file = _files.get(prefix)
        if file is None:
            file = _files[prefix] = MmapedDict(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], f"{prefix}_{_pid}.db"))
        self._file = file
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        self._value, self._timestamp = file.read_value(self._key)  # also allocates the key's slot
        self._position = file._positions[self._key]

    # One slice assignment, as prometheus-client does (pack_into would show a reader a 0).
    def inc(self, amount: float) -> None:
        with _lock:
            self._value = value = self._value + amount
            self._timestamp = 0.0
            position = self._position
            self._file._m[position:position + 16] = _pack(value, 0.0)

    def set(self, value: float, timestamp: float | None = None) -> None:
        with _lock:
            self._value = value
            self._timestamp = timestamp = timestamp or 0.0
            position = self._position
            self._file._m[position:position + 16] = _pack(value, timestamp)

    def set_exemplar(self, exemplar: Any) -> None:
        return  # not kept in multiprocess mode (as prometheus-client)

    def get(self) -> float:
        with _lock:
            return self._value

    def get_exemplar(self) -> None:
        return None


def _check_pid() -> None:
    """In a new process: new files, every value starting from what its file holds (nothing)."""
    global _pid
    if os.getpid() == _pid:
        return
    _pid = os.getpid()
    for file in _files.values():
        file.close()
    _files.clear()
    for value in _values:
        value._open()


def reopen_after_fork() -> None:
    with _lock:
        _check_pid()


os.register_at_fork(after_in_child=lambda: _check_pid())
