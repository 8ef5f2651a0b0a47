"""Run the gateway on Granian with the listener the configuration describes.

    python -m runtime.serve          # production: host, port, workers, TLS from config

Granian reads its settings from its command line, not from our configuration, so this
turns the `server` section into Granian's flags (`granian_flags`) and execs Granian: the
keys that describe the listener (TLS, timeouts) take effect wherever the gateway runs,
`gw serve` and the tests included.
"""

from __future__ import annotations

import os
import sys
from typing import Any

APP = ["--interface", "asgi", "--factory", "runtime.app:create_app", "--loop", "uvloop"]


def granian_flags(server: Any) -> list[str]:
    """Granian flags for the `server` config section, beyond address and workers."""
    flags = [
        "--http1-header-read-timeout", str(max(1, round(server.read_timeout * 1000))),
        "--workers-kill-timeout", str(max(1, round(server.shutdown_timeout))),
    ]
    if server.tls_enabled:
        flags += ["--ssl-certificate", server.tls_cert_file, "--ssl-keyfile", server.tls_key_file,
                  "--ssl-protocol-min", "tls" + server.tls_min_version]
        if server.tls_key_password:
            flags += ["--ssl-keyfile-password", server.tls_key_password]
    return flags


def command(server: Any) -> list[str]:
    return [sys.executable, "-m", "granian", *APP, "--host", server.host, "--port", str(server.port),
            "--workers", str(server.workers), *granian_flags(server)]


def main() -> None:
    from runtime.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    args = command(config.server)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
