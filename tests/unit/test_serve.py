"""runtime.serve: the `server` configuration becomes Granian's command line."""

from __future__ import annotations

import itertools
import sys

from runtime.config import load_config
from runtime.serve import command


def test_listener_keys_become_granian_flags(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    server = load_config(env={
        "ERP_SERVER_HOST": "127.0.0.2", "ERP_SERVER_PORT": "8443", "ERP_SERVER_WORKERS": "3",
        "ERP_SERVER_READ_TIMEOUT": "5s", "ERP_SERVER_SHUTDOWN_TIMEOUT": "20s",
        "ERP_SERVER_TLS_ENABLED": "true", "ERP_SERVER_TLS_CERT_FILE": str(cert), "ERP_SERVER_TLS_KEY_FILE": str(key),
        "ERP_SERVER_TLS_MIN_VERSION": "1.3",
    }).server
    args = command(server)
    assert args[:3] == [sys.executable, "-m", "granian"]
    flags = dict(itertools.pairwise(args))
    assert flags["--host"] == "127.0.0.2" and flags["--port"] == "8443" and flags["--workers"] == "3"
    assert flags["--http1-header-read-timeout"] == "5000" and flags["--workers-kill-timeout"] == "20"
    assert flags["--ssl-certificate"] == str(cert) and flags["--ssl-keyfile"] == str(key)
    assert flags["--ssl-protocol-min"] == "tls1.3"


def test_no_tls_flags_without_tls():
    assert not [a for a in command(load_config(env={}).server) if a.startswith("--ssl")]


def test_a_pkcs1_key_is_refused_at_start_up_with_the_conversion(tmp_path):
    import pytest

    from runtime.config import ConfigError

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"server\.tls_key_file: .* is not PKCS#8.*openssl pkcs8 -topk8"):
        load_config(env={"ERP_SERVER_TLS_ENABLED": "1", "ERP_SERVER_TLS_CERT_FILE": str(cert),
                         "ERP_SERVER_TLS_KEY_FILE": str(key)})
