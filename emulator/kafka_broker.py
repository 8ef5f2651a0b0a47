"""A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) for tests
and benchmarks: the official jars that `tests/peers/kafka.sh` resolves with Maven, run on
Java 17 with free loopback ports and its data in a temporary directory.

    broker = KafkaBroker().start()      # formats the data directory, waits for a produce
    broker.bootstrap                    # "127.0.0.1:<port>"
    broker.stop(); broker.start()       # same data, same ports
    broker.kill()                       # SIGKILL, by PID
    broker.pause(); broker.resume()     # SIGSTOP / SIGCONT: a broker that hangs, sockets open
    broker.close()                      # stop and delete the data

`gw serve` does not start one: with `ERP_KAFKA_BROKERS` it publishes to whatever broker that
names, and without one it spools events to a file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from emulator.ports import free_port, wait_for_port
from emulator.processes import spawn

VERSION = "4.4.0"


def kafka_home() -> Path:
    """Where tests/peers/kafka.sh put the jars (same default, same KAFKA_HOME override)."""
    if os.environ.get("KAFKA_HOME"):
        return Path(os.environ["KAFKA_HOME"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "erp-gateway" / f"kafka-{VERSION}"


# Settings that matter on a small machine (../shared/NOTES.md): the 128 MiB default
# log-cleaner buffer crashed a 256 MiB heap at restart; one replica everywhere. The broker's
# session is Kafka's default 9 s, not shorter: with 3 s, a loaded machine starved the
# controller's queue ("Timed out heartbeat from broker 1") and the single node fenced itself,
# taking every partition offline for a moment (a kill -9 restart takes a few seconds longer).
# (Events once lost on new topics were librdkafka's, not this: runtime/events/publisher.py.)
_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions={partitions}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
broker.session.timeout.ms=9000
broker.heartbeat.interval.ms=500
"""


class KafkaBroker:
    def __init__(self, *, partitions: int = 3, heap: str = "256m", home: Path | None = None) -> None:
        self.home = home or kafka_home()
        lib = self.home / "lib"
        if not (lib / ".complete").exists():
            raise RuntimeError(f"Kafka jars missing in {lib}: run `bash tests/peers/kafka.sh` first")
        self.classpath = str(lib / "*")
        self.heap = heap
        self.dir = Path(tempfile.mkdtemp(prefix="erp-kafka-"))
        self.port, self.controller = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.config = self.dir / "server.properties"
        self.config.write_text(_PROPERTIES.format(port=self.port, controller=self.controller,
                                                  data=self.dir / "data", partitions=partitions))
        (self.dir / "log4j2.yaml").write_text(_LOG4J)
        self.process: subprocess.Popen | None = None
        self._formatted = False

    def _java(self, main: str, *args: str, **popen) -> list[str]:
        return ["java", "-Xms128m", f"-Xmx{self.heap}", "-XX:+UseSerialGC",
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.yaml'}", f"-Dkafka.logs.dir={self.dir}",
                "-cp", self.classpath, main, *args]

    def start(self, timeout: float = 90) -> "KafkaBroker":
        if not self._formatted:
            cluster = _cluster_id()
            formatted = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(self.config)),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if formatted.returncode != 0:
                raise RuntimeError(f"formatting the Kafka data directory failed: {formatted.stdout.decode()[-2000:]}")
            self._formatted = True
        log = open(self.dir / "broker.out", "ab")
        self.process = spawn(self._java("kafka.Kafka", str(self.config)), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while not wait_for_port("127.0.0.1", self.port, 0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.dir / "broker.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the Kafka broker did not start:\n{output}")
        return self

    def stop(self, timeout: float = 30) -> None:
        """A clean shutdown (SIGTERM), by PID; SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        wait_closed(self.port)

    def kill(self) -> None:
        """SIGKILL, by PID: no flush, no controlled shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP, by PID: connections stay open and nothing answers (a hung broker, a long GC)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.resume()  # a paused JVM would not hear the SIGTERM
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_closed(port: int, timeout: float = 10) -> None:
    """Until nothing listens on the port (so a restart can bind it again)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and wait_for_port("127.0.0.1", port, 0.05):
        time.sleep(0.05)


def _cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding. One in 64
    # starts with "-", which the storage tool's command line reads as an option (the format,
    # and so the broker's start, failed): Kafka's own Uuid.randomUuid() skips those too.
    import base64

    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster


_LOG4J = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""
