"""runtime.serve: the `server` configuration becomes the Granian flags that neither the
command line nor a GRANIAN_* variable sets."""

from __future__ import annotations

import itertools
import sys

import pytest

from runtime.config import ConfigError, load_config
from runtime.serve import APP_TARGET, command


def flags_of(args: list[str]) -> dict[str, str]:
    return dict(itertools.pairwise(args))


@pytest.fixture
def tls_server(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return load_config(env={
        "ERP_SERVER_HOST": "127.0.0.2", "ERP_SERVER_PORT": "8443", "ERP_SERVER_WORKERS": "3",
        "ERP_SERVER_READ_TIMEOUT": "5s", "ERP_SERVER_SHUTDOWN_TIMEOUT": "20s",
        "ERP_SERVER_TLS_ENABLED": "true", "ERP_SERVER_TLS_CERT_FILE": str(cert), "ERP_SERVER_TLS_KEY_FILE": str(key),
        "ERP_SERVER_TLS_MIN_VERSION": "1.3",
    }).server


def test_with_no_arguments_everything_comes_from_configuration(tls_server):
    args = command(tls_server)
    assert args[:3] == [sys.executable, "-m", "granian"] and APP_TARGET in args and "--factory" in args
    flags = flags_of(args)
    assert flags["--host"] == "127.0.0.2" and flags["--port"] == "8443" and flags["--workers"] == "3"
    assert flags["--http1-header-read-timeout"] == "5000" and flags["--workers-kill-timeout"] == "20"
    assert flags["--ssl-certificate"] == tls_server.tls_cert_file and flags["--ssl-keyfile"] == tls_server.tls_key_file
    assert flags["--ssl-protocol-min"] == "tls1.3"


def test_granian_s_own_flags_and_variables_win(tls_server):
    args = command(tls_server, ["--port", "9000", APP_TARGET], {"GRANIAN_WORKERS": "2"})
    flags = flags_of(args)
    assert flags["--port"] == "9000" and args.count("--port") == 1  # the command line's
    assert "--workers" not in args  # GRANIAN_WORKERS decides
    assert flags["--host"] == "127.0.0.2" and flags["--ssl-certificate"] == tls_server.tls_cert_file  # the rest: config


def test_no_tls_flags_without_tls():
    assert not [a for a in command(load_config(env={}).server) if a.startswith("--ssl")]


def test_a_pkcs1_key_is_refused_at_start_up_with_the_conversion(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"server\.tls_key_file: .* is not PKCS#8.*openssl pkcs8 -topk8"):
        load_config(env={"ERP_SERVER_TLS_ENABLED": "1", "ERP_SERVER_TLS_CERT_FILE": str(cert),
                         "ERP_SERVER_TLS_KEY_FILE": str(key)})
