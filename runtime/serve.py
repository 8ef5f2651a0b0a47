"""`python -m runtime.serve [granian options] runtime.app:create_app`: Granian's own command
line and settings (GRANIAN_* variables included), with two additions.

One listener, when `server.shared_listener` is set: on Linux the listening socket is bound
once, in the supervisor, and shared by every worker. Granian 2.8 on Linux gives each worker its own SO_REUSEPORT listener, and the
kernel resets the connections queued on a listener when its worker exits: a rolling restart
(`kill -HUP` of the master, a respawned worker) under load refuses requests (9 in one SIGHUP
in tests/integration/test_hot_reload.py before this). With one shared listener the accept
queue outlives every worker, so a restart loses nothing; this is the path Granian itself
takes on macOS and Windows. The trade, and why it is off by default: connections are no
longer spread over the workers by the kernel's hash but taken by whichever worker accepts
first, and one worker then takes nearly all of them (WebSocket clients on fresh connections
all landed on one of two workers). Behind a load balancer that retries refused connections
(infra/nginx), or with Kubernetes rolling pods, restarts lose nothing without it. Granian is
pinned below its next minor version because this reaches into one private method; the
SIGHUP test guards it.

The configuration's listener. Granian reads its command line, not our configuration, so
the `server` section becomes Granian flags (`config_flags`): host, port, workers, header
read timeout, kill timeout and TLS. Each is added only when neither the command line nor
its GRANIAN_* variable says otherwise, so Granian's own settings win and an image that sets
GRANIAN_PORT keeps it. With no arguments at all, the gateway's app is served:

    python -m runtime.serve          # everything from configuration (ERP_*, CONFIG_FILE)
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

# (flag, Granian's variable for it, value) for the app itself when no arguments are given.
APP = [
    ("--interface", "GRANIAN_INTERFACE", "asgi"),
    ("--factory", "GRANIAN_FACTORY", None),
    ("--loop", "GRANIAN_LOOP", "uvloop"),
]
APP_TARGET = "runtime.app:create_app"


def config_flags(server: Any) -> list[tuple[str, str, str | None]]:
    """(flag, GRANIAN_* variable, value) for the `server` config section."""
    flags: list[tuple[str, str, str | None]] = [
        ("--host", "GRANIAN_HOST", server.host),
        ("--port", "GRANIAN_PORT", str(server.port)),
        ("--workers", "GRANIAN_WORKERS", str(server.workers)),
        ("--http1-header-read-timeout", "GRANIAN_HTTP1_HEADER_READ_TIMEOUT",
         str(max(1, round(server.read_timeout * 1000)))),
        ("--workers-kill-timeout", "GRANIAN_WORKERS_KILL_TIMEOUT", str(max(1, round(server.shutdown_timeout)))),
    ]
    if server.tls_enabled:
        flags += [
            ("--ssl-certificate", "GRANIAN_SSL_CERTIFICATE", server.tls_cert_file),
            ("--ssl-keyfile", "GRANIAN_SSL_KEYFILE", server.tls_key_file),
            ("--ssl-protocol-min", "GRANIAN_SSL_PROTOCOL_MIN", "tls" + server.tls_min_version),
        ]
        if server.tls_key_password:
            flags.append(("--ssl-keyfile-password", "GRANIAN_SSL_KEYFILE_PASSWORD", server.tls_key_password))
    return flags


def fill(args: list[str], flags: list[tuple[str, str, str | None]], environ: Any) -> list[str]:
    """`args` plus each flag neither `args` nor `environ` (GRANIAN_*) already sets."""
    given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    out = list(args)
    for flag, variable, value in flags:
        if flag not in given and variable not in environ:
            out += [flag] if value is None else [flag, value]
    return out


def command(server: Any, args: list[str] | None = None, environ: Any = None) -> list[str]:
    """The whole Granian command line runtime.serve runs for `args` (default: none)."""
    args = list(args or [])
    environ = {} if environ is None else environ
    if not args:
        args = fill([], APP, environ) + [APP_TARGET]
    return [sys.executable, "-m", "granian", *fill(args, config_flags(server), environ)]


def _load_server() -> Any:
    from runtime.config import ConfigError, load_config

    try:
        return load_config().server
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _share_one_listener() -> None:
    from granian.net import SocketSpec
    from granian.server import mp

    original = mp.MPServer._init_shared_socket

    def _init_shared_socket(self: Any) -> None:
        if self.bind_uds or not sys.platform.startswith("linux"):
            original(self)  # already shared there
            return
        self._shd = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
        self._sfd = self._shd.get_fd()
        self._ssp = None  # workers take the shared descriptor instead of binding their own
        self._sso = socket.socket(fileno=self._sfd)
        self._sso.set_inheritable(True)

    mp.MPServer._init_shared_socket = _init_shared_socket  # type: ignore[method-assign]


def main() -> None:
    from granian import cli

    from runtime.observability.multiprocess_dir import server_directory

    # Before the configuration (domain discovery imports the metrics module here, in the
    # master): the workers, forked from it, then write their metrics where /metrics sums them.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or server_directory(os.getpid())
    if directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory

    server = _load_server()
    sys.argv[1:] = command(server, sys.argv[1:], os.environ)[3:]
    if server.shared_listener:
        _share_one_listener()
    cli.entrypoint()


if __name__ == "__main__":
    main()
