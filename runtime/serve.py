"""`python -m runtime.serve [granian options] runtime.app:create_app`: Granian's own command
line and settings (GRANIAN_* variables included), with one option of ours: with
`server.shared_listener` (ERP_SERVER_SHARED_LISTENER=true), the listening socket is bound once, in the supervisor, and shared by
every worker (on Linux; elsewhere Granian already does so).

Granian 2.8 on Linux gives each worker its own SO_REUSEPORT listener, and the kernel resets
the connections queued on a listener when its worker exits: a rolling restart (`kill -HUP`
of the master, a respawned worker) under load refuses requests (9 in one SIGHUP in
tests/integration/test_hot_reload.py before this). With one shared listener the accept queue
outlives every worker, so a restart loses nothing; this is the path Granian itself takes on
macOS and Windows. The trade, and why it is off by default: connections are no longer spread
over the workers by the kernel's hash but taken by whichever worker accepts first, and one
worker then takes nearly all of them (measured: WebSocket clients on fresh connections all
landed on one of two workers). Turn it on where rolling worker restarts under load matter
more than spreading connections (one worker per process, several pods); behind a load
balancer that retries refused connections (infra/nginx), restarts lose nothing either way.
Granian is pinned below its next minor version because this reaches into one private
method; the SIGHUP test guards it.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from granian import cli
from granian.net import SocketSpec
from granian.server import mp

from runtime.config import ConfigError, load_config

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


def _wants_shared_listener() -> bool:
    try:
        return load_config().server.shared_listener
    except ConfigError:
        return False  # the workers report the error, in the one format start-up uses


def main() -> None:
    if _wants_shared_listener():
        mp.MPServer._init_shared_socket = _init_shared_socket
    cli.entrypoint()


if __name__ == "__main__":
    main()
