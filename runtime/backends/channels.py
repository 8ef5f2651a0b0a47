"""One long-lived gRPC channel per backend per worker (the stub each service speaks is
declared by its domain, runtime.domains).

Channels are created in the ASGI lifespan (after Granian forks its workers): a gRPC
channel must never cross a fork.
"""

from __future__ import annotations

from typing import Any

import grpc

MAX_MESSAGE_BYTES = 16 * 1024 * 1024

CHANNEL_OPTIONS = [
    # Keepalive finds dead connections (a restarted backend, a dropped NAT entry) before a
    # request does; 20 s stays under common idle timeouts of load balancers.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Reconnect quickly after a backend restarts instead of backing off for up to 2 minutes:
    # a restarted backend is found within about a second, about one breaker cool-down.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    # Retries are ours (runtime.backends.client), with a budget; don't stack gRPC's on top.
    ("grpc.enable_retries", 0),
]


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as fh:
        return fh.read()


def credentials(tls: Any) -> grpc.ChannelCredentials:
    """TLS to a backend from its `grpc.tls.<service>` entry: the CA its certificate must
    chain to (else the system roots) and, for mutual TLS, our client certificate and key."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file),
        private_key=_read(tls.key_file),
        certificate_chain=_read(tls.cert_file),
    )


def open_channel(target: str, tls: Any = None) -> grpc.aio.Channel:
    """Plaintext without `tls`; else TLS (mutual when it has a client certificate), so the
    caller's organization and user metadata never cross the network in clear text."""
    if tls is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    options = list(CHANNEL_OPTIONS)
    if tls.server_name:  # the certificate names the service, not the address we dial
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(target, credentials(tls), options=options)
