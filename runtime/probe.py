"""`python -m runtime.probe [PATH]`: exit 0 when the local gateway answers PATH (default
/health) with 2xx, else 1. The container's HEALTHCHECK: the image has no curl, and the port
comes from the same GRANIAN_PORT the server was started with."""

from __future__ import annotations

import os
import sys
import urllib.request


def probe(path: str = "/health", timeout: float = 2.0) -> bool:
    port = os.environ.get("GRANIAN_PORT", "8080")
    scheme = "https" if os.environ.get("GRANIAN_SSL_CERTIFICATE") else "http"
    url = f"{scheme}://127.0.0.1:{port}{path}"
    context = None
    if scheme == "https":  # probing our own loopback listener: its name is not 127.0.0.1
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            return 200 <= answer.status < 300
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(0 if probe(sys.argv[1] if len(sys.argv) > 1 else "/health") else 1)
