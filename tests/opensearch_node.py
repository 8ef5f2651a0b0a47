"""A real single-node OpenSearch on loopback, installed by tests/peers/opensearch.sh.

It refuses to run as root, so as root it runs as `nobody` (setpriv), with its own copy of the
configuration and its data and logs in a temporary directory that user owns. Free ports,
a 256 MiB heap, `number_of_replicas: 0` for the gateway's indices (one node: a replica
could never be placed and every index would stay yellow).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from emulator.ports import free_port
from emulator.processes import stop

CACHE = Path(os.environ.get("OPENSEARCH_CACHE", "/var/tmp/erp-gateway-peers")) / "opensearch"
NOBODY = 65534


class OpenSearchNode:
    def __init__(self) -> None:
        if not (CACHE / "home").exists():
            raise RuntimeError(f"OpenSearch is not installed in {CACHE}: run tests/peers/opensearch.sh")
        self.home = (CACHE / "home").resolve()
        self.java_home = (CACHE / "java_home").read_text().strip()
        # Not under pytest's tmp_path: that is private to the user running the tests, and the
        # node's user must reach its directory.
        self.workdir = Path(tempfile.mkdtemp(prefix="erp-opensearch-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "OpenSearchNode":
        config, data, logs = self.workdir / "config", self.workdir / "data", self.workdir / "logs"
        shutil.copytree(self.home / "config", config, dirs_exist_ok=True)
        data.mkdir(exist_ok=True)
        logs.mkdir(exist_ok=True)
        # jvm.options writes GC logs, heap dumps and crash files relative to the (read-only) home.
        options = config / "jvm.options"
        options.write_text(options.read_text().replace("logs/", f"{logs}/").replace("=data", f"={data}"))
        command = [
            str(self.home / "bin" / "opensearch"),
            "-E", "discovery.type=single-node", "-E", "network.host=127.0.0.1",
            "-E", f"http.port={self.port}", "-E", f"transport.port={free_port()}",
            "-E", f"path.data={data}", "-E", f"path.logs={logs}",
        ]
        if os.geteuid() == 0:
            for path in (self.workdir, config, data, logs, *config.rglob("*")):
                os.chown(path, NOBODY, NOBODY)
            command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *command]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OPENSEARCH_JAVA_HOME": self.java_home,
            "OPENSEARCH_PATH_CONF": str(config),
            "OPENSEARCH_JAVA_OPTS": "-Xms256m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UseG1GC",
            "OPENSEARCH_TMPDIR": str(self.workdir),
        }
        with open(self.workdir / "console.log", "wb") as console:
            self.process = subprocess.Popen(command, env=env, cwd=self.workdir, stdout=console, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"OpenSearch exited with {self.process.returncode}: {self.log_tail()}")
            try:
                health = httpx.get(self.url + "/_cluster/health", timeout=2)
                if health.status_code == 200 and health.json()["status"] in ("green", "yellow"):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"OpenSearch did not start in {timeout}s: {self.log_tail()}")
            time.sleep(0.25)
        template = {"index_patterns": ["erp-api-gateway*"], "template": {"settings": {"number_of_replicas": 0}}}
        httpx.put(self.url + "/_index_template/erp-gateway-logs", json=template, timeout=10).raise_for_status()
        return self

    def log_tail(self) -> str:
        logs = [self.workdir / "console.log", *sorted((self.workdir / "logs").glob("*.log"))]
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel's backlog) but nothing answers."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)  # a frozen JVM cannot act on SIGTERM
            stop(self.process)
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def search(self, query: dict, index: str = "erp-api-gateway-*") -> list[dict]:
        httpx.post(self.url + f"/{index}/_refresh", timeout=10)
        answer = httpx.post(self.url + f"/{index}/_search", json={"query": query, "size": 1000}, timeout=10)
        if answer.status_code == 404:  # no index yet
            return []
        answer.raise_for_status()
        return answer.json()["hits"]["hits"]
