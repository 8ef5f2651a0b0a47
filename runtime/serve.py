"""`python -m runtime.serve [granian options] runtime.app:create_app`: Granian's own command
line and settings (GRANIAN_* variables included), with one change: on Linux the listening
socket is bound once, in the supervisor, and shared by every worker.

Granian 2.8 on Linux gives each worker its own SO_REUSEPORT listener, and the kernel resets
the connections queued on a listener when its worker exits: a rolling restart (`kill -HUP`
of the master, a respawned worker) under load refuses requests (9 in one SIGHUP in
tests/integration/test_hot_reload.py before this). With one shared listener the accept queue
outlives every worker, so a restart loses nothing; this is the path Granian itself takes on
macOS and Windows. The trade: connections are no longer spread over the workers by the
kernel's hash but taken by whichever worker accepts first. Granian is pinned below its next
minor version because this reaches into one private method; the SIGHUP test guards it.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from granian import cli
from granian.net import SocketSpec
from granian.server import mp

_granian_init_shared_socket = mp.MPServer._init_shared_socket


def _init_shared_socket(self: Any) -> None:
    if self.bind_uds or not sys.platform.startswith("linux"):
        _granian_init_shared_socket(self)  # already shared there
        return
    self._shd = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
    self._sfd = self._shd.get_fd()
    self._ssp = None  # workers take the shared descriptor instead of binding their own
    self._sso = socket.socket(fileno=self._sfd)
    self._sso.set_inheritable(True)


def main() -> None:
    mp.MPServer._init_shared_socket = _init_shared_socket
    cli.entrypoint()


if __name__ == "__main__":
    main()
