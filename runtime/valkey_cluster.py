"""The request-path client against a Valkey Cluster (`redis.mode: cluster`).

`ClusterMux` is `runtime.valkey_mux.ValkeyMux` with a slot map in front: one ValkeyMux per
node (its own multiplexed connections, watchdog and circuit breaker: a dead primary fails
fast for its slots only), and a table of the 16384 slots to the primary serving each.

- A command goes to the primary of its first key's slot: CRC16 (binascii.crc_hqx is the
  XMODEM CRC the cluster uses) of the key, or of its `{hash tag}`. Keys one script or one
  multi-key command touches must share a slot: the callers put a hash tag in them
  (runtime.cache, runtime.realtime.hub) or split the call per slot (`by_slot`: the rate
  limiters; EXISTS, DEL, MGET here).
- The map comes from CLUSTER SLOTS, asked of any node that answers (seeds first). `MOVED`
  repoints that slot at once and refreshes the whole map in the background; `ASK` sends
  `ASKING` and the command in one write to the importing node (a slot being migrated);
  `TRYAGAIN` (a multi-key command while its keys are split by a migration) waits a moment.
- Node loss: its calls fail fast (the node's breaker; every caller has a fallback) and wake
  the watcher, which refreshes the map every `REFRESH_FAST` seconds until every primary in it
  answers, so a promoted replica takes over as soon as the cluster says so.
- Scripts: NOSCRIPT loads the script on every primary, then retries.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from binascii import crc_hqx
from typing import Any, Awaitable, Callable, Iterable, Sequence

from valkey import exceptions as errors

from runtime.valkey_mux import Script, ValkeyMux, pack, parse_address

log = logging.getLogger("gateway.valkey")

SLOTS = 16384
MAX_REDIRECTS = 5
REFRESH_FAST = 0.25  # seconds between map refreshes while a primary does not answer
TRYAGAIN_WAIT = 0.02

# Where a command's first key is: 1 = its first argument, 3 = after EVAL(SHA)'s script and
# key count, 0 = no key (any primary serves it). Not listed: the first argument, unless the
# upper-cased name says otherwise (_position).
_KEYLESS = ("PING", "SCRIPT", "CLUSTER", "INFO", "TIME", "ECHO", "HELLO", "CLIENT", "ASKING",
            "READONLY", "SCAN", "DBSIZE", "FLUSHALL", "FLUSHDB", "CONFIG", "WAIT", "AUTH", "SELECT")
_SCRIPTED = ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO")
_KEY_AT: dict[Any, int] = {**dict.fromkeys(_KEYLESS, 0), **dict.fromkeys(_SCRIPTED, 3),
                           **dict.fromkeys(("GET", "SET", "DEL", "EXISTS", "MGET", "INCR", "INCRBY", "PTTL",
                                            "PEXPIRE", "EXPIRE", "ZADD", "XADD", "XRANGE", "PUBLISH"), 1)}
_SLOT_CACHE: dict[Any, int] = {}  # key -> slot: the request path asks for the same keys again and again
_SLOT_CACHE_MAX = 65536


def key_slot(key: Any) -> int:
    """The cluster slot of `key` (str or bytes), honouring a non-empty `{hash tag}`."""
    slot = _SLOT_CACHE.get(key)
    if slot is None:
        raw = key.encode() if type(key) is str else bytes(key)
        start = raw.find(b"{")
        if start >= 0:
            end = raw.find(b"}", start + 1)
            if end > start + 1:
                raw = raw[start + 1:end]
        slot = crc_hqx(raw, 0) & 16383
        if len(_SLOT_CACHE) >= _SLOT_CACHE_MAX:
            _SLOT_CACHE.clear()
        _SLOT_CACHE[key] = slot
    return slot


def _position(name: Any) -> int:
    name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
    return _KEY_AT.get(name, 1)


def command_slot(args: Sequence[Any]) -> int | None:
    """The slot a command must run on, None when any node will do."""
    at = _KEY_AT.get(args[0])
    if at is None:
        at = _position(args[0])
    if at == 1:
        return key_slot(args[1]) if len(args) > 1 else None
    if at == 3:
        return key_slot(args[3]) if len(args) > 3 and int(args[2]) > 0 else None
    return None


def _address(raw: Any, fallback: str) -> str:
    host = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    return host or fallback


class ClusterMux(ValkeyMux):
    """ValkeyMux's interface over a cluster (see the module docstring)."""

    def __init__(self, seeds: Sequence[tuple[str, int]], *, password: str = "", timeout: float = 1.0,
                 connections: int = 1, max_pending: int = 4096, cooldown: float = 1.0,
                 refresh_interval: float = 5.0) -> None:
        host, port = seeds[0]
        super().__init__(host, port, password=password, timeout=timeout, connections=connections,
                         max_pending=max_pending, cooldown=cooldown)  # the seed's own breaker stays unused
        self.seeds = [(h, int(p)) for h, p in seeds]
        self.refresh_interval = refresh_interval
        self._node_settings = dict(password=password, timeout=timeout, connections=connections,
                                   max_pending=max_pending, cooldown=cooldown)
        self.nodes: dict[tuple[str, int], ValkeyMux] = {}
        self.primaries: list[tuple[str, int]] = []
        self.replicas: dict[tuple[str, int], list[tuple[str, int]]] = {}  # primary -> its replicas
        self._table: list[ValkeyMux | None] = [None] * SLOTS
        self._mapped = False
        self._refresh_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._watcher: asyncio.Task | None = None
        self.on_topology: list[Callable[[], None]] = []  # called when the set of primaries changes
        self.redirects = {"moved": 0, "ask": 0, "tryagain": 0}  # for /ready, tests and the bench
        self.info: dict[str, str] = {}  # the last CLUSTER INFO (cluster_state, ...)
        self.refreshes = 0

    @classmethod
    def from_config(cls, redis: Any) -> "ClusterMux":
        seeds = [(redis.host, redis.port)] + [parse_address(s) for s in redis.cluster_nodes]
        return cls(seeds, password=redis.password, timeout=redis.timeout, connections=redis.connections,
                   cooldown=redis.breaker_cooldown, refresh_interval=redis.cluster_refresh_interval)

    # ------------------------------------------------------------------ state

    @property
    def available(self) -> bool:
        """Every primary of the map answers (a dead one's slots fail fast until a failover)."""
        return self._mapped and all(self.nodes[a].available for a in self.primaries)

    @property
    def breaker_state(self) -> str:
        states = {self.nodes[a].breaker.state for a in self.primaries}
        return "closed" if states <= {"closed"} else "open" if "open" in states else "half_open"

    def describe(self) -> dict[str, Any]:
        """What /ready shows of the cluster."""
        covered = sum(1 for n in self._table if n is not None)
        return {
            "state": self.info.get("cluster_state", "unknown"),
            "slots_covered": covered,
            "primaries": {f"{h}:{p}": {"breaker": self.nodes[(h, p)].breaker.state,
                                       "replicas": [f"{rh}:{rp}" for rh, rp in self.replicas.get((h, p), [])]}
                          for h, p in self.primaries},
            "redirects": dict(self.redirects),
        }

    def by_slot(self, keys: Sequence[Any]) -> list[list[int]] | None:
        slots = [key_slot(k) for k in keys]
        first = slots[0] if slots else 0
        if all(s == first for s in slots):
            return None
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(slots):
            groups.setdefault(s, []).append(i)
        return list(groups.values())

    # ------------------------------------------------------------------ commands

    def execute(self, *args: Any) -> Awaitable[Any]:
        return self._route(pack(args), command_slot(args))

    def execute_many(self, commands: Iterable[Sequence[Any]]) -> Awaitable[list[Any]]:
        """Each command to its slot's node; those bound for one node still share one write."""
        return self._many([(pack(c), command_slot(c)) for c in commands])

    async def _many(self, routed: list[tuple[bytes, int | None]]) -> list[Any]:
        replies = await asyncio.gather(*(self._route(p, s) for p, s in routed), return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    async def evalsha(self, script: Script, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        payload = pack(("EVALSHA", script.sha, len(keys), *keys, *args))
        slot = key_slot(keys[0]) if keys else None
        try:
            return await self._route(payload, slot)
        except errors.NoScriptError:  # a new, restarted or promoted node: load it everywhere, retry once
            await self._load_everywhere(script)
            return await self._route(payload, slot)

    async def _load_everywhere(self, script: Script) -> None:
        load = pack(("SCRIPT", "LOAD", script.source))
        await asyncio.gather(*(self.nodes[a]._call(load) for a in self.primaries), return_exceptions=True)

    async def mget(self, *keys: Any) -> list[bytes | None]:
        groups = self.by_slot(keys)
        if groups is None:
            return await self.execute("MGET", *keys)
        found: list[bytes | None] = [None] * len(keys)
        answers = await self._many([(pack(("MGET", *(keys[i] for i in g))), key_slot(keys[g[0]])) for g in groups])
        for group, values in zip(groups, answers):
            for i, value in zip(group, values):
                found[i] = value
        return found

    async def delete(self, *keys: Any) -> int:
        return await self._count("DEL", keys)

    async def exists(self, *keys: Any) -> int:
        return await self._count("EXISTS", keys)

    async def _count(self, command: str, keys: Sequence[Any]) -> int:
        groups = self.by_slot(keys)
        if groups is None:
            return await self.execute(command, *keys)
        answers = await self._many([(pack((command, *(keys[i] for i in g))), key_slot(keys[g[0]])) for g in groups])
        return sum(answers)

    async def scan_keys(self, match: str, count: int = 1000) -> list[bytes]:
        """Every key matching `match` on every primary (SCAN; off the request path)."""
        await self._ensure_map()
        found: list[bytes] = []
        for address in list(self.primaries):
            node, cursor = self.nodes[address], b"0"
            while True:
                cursor, keys = await node.execute("SCAN", cursor, "MATCH", match, "COUNT", count)
                found += keys
                if cursor in (b"0", 0):
                    break
        return found

    # ------------------------------------------------------------------ routing

    async def _route(self, payload: bytes, slot: int | None) -> Any:
        node = self._table[slot] if slot is not None else None
        if node is None:
            node = await self._node_for(slot)
        try:  # node._call(payload) inlined: one coroutine frame less per call
            node._admit()
            conn = node._slots[0].conn if len(node._slots) == 1 else None
            if conn is None or conn.error is not None:
                conn = await node._connection()
            return await conn.send_one(payload)
        except errors.ResponseError as exc:
            return await self._redirected(exc, payload, slot)
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            node._failed(exc)
            self._wake.set()  # the watcher refreshes the map until every primary answers
            raise

    async def _redirected(self, exc: errors.ResponseError, payload: bytes, slot: int | None) -> Any:
        """Follow MOVED, ASK and TRYAGAIN (a few hops at most); anything else is the caller's."""
        for _ in range(MAX_REDIRECTS):
            kind, _, rest = str(exc).partition(" ")
            try:
                if kind == "MOVED":
                    self.redirects["moved"] += 1
                    moved_slot, address = rest.split(" ")
                    node = self._node(address)
                    self._table[int(moved_slot)] = node
                    self._wake.set()  # more slots have probably moved with it
                    return await node._call(payload)
                if kind == "ASK":
                    self.redirects["ask"] += 1
                    node = self._node(rest.split(" ")[1])
                    return (await node._call_many([pack(("ASKING",)), payload]))[1]
                if kind == "TRYAGAIN":
                    self.redirects["tryagain"] += 1
                    await asyncio.sleep(TRYAGAIN_WAIT)
                    return await (await self._node_for(slot))._call(payload)
                if kind == "CLUSTERDOWN":
                    self._wake.set()
            except errors.ResponseError as again:
                exc = again
                continue
            raise exc
        raise exc

    def _node(self, address: str | tuple[str, int]) -> ValkeyMux:
        if isinstance(address, str):
            host, _, port = address.rpartition(":")
            address = (host.strip("[]") or self.seeds[0][0], int(port))
        node = self.nodes.get(address)
        if node is None:
            node = self.nodes[address] = ValkeyMux(address[0], address[1], **self._node_settings)  # type: ignore[arg-type]
        return node

    async def _node_for(self, slot: int | None) -> ValkeyMux:
        await self._ensure_map()
        if slot is not None and self._table[slot] is not None:
            return self._table[slot]  # type: ignore[return-value]
        if slot is None and self.primaries:
            return self.nodes[self.primaries[0]]
        raise errors.ClusterDownError(f"CLUSTERDOWN no node serves slot {slot}")

    async def _ensure_map(self) -> None:
        if not self._mapped:
            await self.refresh()
        if self._watcher is None and not self._closed:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    # ------------------------------------------------------------------ the slot map

    async def refresh(self) -> bool:
        """Read the slot map from the first node that answers; False when none did."""
        async with self._refresh_lock:
            candidates = [*self.primaries, *self.seeds, *(a for a in self.nodes if a not in self.primaries)]
            tried: set[tuple[str, int]] = set()
            last: Exception | None = None
            for address in candidates:
                if address in tried:
                    continue
                tried.add(address)
                node = self._node(address)
                if not node.available:
                    continue  # its breaker says it is down: no wait for a timeout
                try:
                    slots, info = await node.execute_many((("CLUSTER", "SLOTS"), ("CLUSTER", "INFO")))
                except (errors.ValkeyError, OSError) as exc:
                    last = exc
                    continue
                if not slots:
                    continue  # a node that has not joined yet knows no slots
                self._apply(slots, address[0])
                self.info = dict(line.split(":", 1) for line in info.decode().split("\r\n") if ":" in line)
                self.refreshes += 1
                return True
            if not self._mapped:
                raise errors.ConnectionError(f"No Valkey Cluster node answered CLUSTER SLOTS (seeds {self.seeds}): {last}")
            return False

    def _apply(self, slots: list, asked: str) -> None:
        table: list[ValkeyMux | None] = [None] * SLOTS
        primaries: list[tuple[str, int]] = []
        replicas: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for entry in slots:
            start, end, primary, *copies = entry
            address = (_address(primary[0], asked), int(primary[1]))
            node = self._node(address)
            if address not in primaries:
                primaries.append(address)
                replicas[address] = [(_address(c[0], asked), int(c[1])) for c in copies]
            for slot in range(start, end + 1):
                table[slot] = node
        for address in [*primaries, *(r for rs in replicas.values() for r in rs)]:
            self._node(address)
        first, changed = not self._mapped, sorted(primaries) != sorted(self.primaries)
        self._table, self.primaries, self.replicas, self._mapped = table, primaries, replicas, True
        known = set(primaries) | {r for rs in replicas.values() for r in rs}
        for address in [a for a in self.nodes if a not in known and a not in self.seeds]:
            gone = self.nodes.pop(address)  # left the cluster (failed over and not back)
            asyncio.get_running_loop().create_task(gone.aclose())
        if changed:
            (log.info if first else log.warning)("valkey cluster primaries: %s", ", ".join(f"{h}:{p}" for h, p in primaries))
            for callback in self.on_topology:
                callback()

    async def _watch(self) -> None:
        """Refresh every `refresh_interval`; at once after a MOVED or a lost node, and then every
        REFRESH_FAST seconds until every primary of the map answers again."""
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.refresh_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.refresh()
                while not self._closed and not self.available:
                    await asyncio.sleep(REFRESH_FAST)
                    await self.refresh()
                    for address in self.primaries:  # a primary that came back closes its breaker now
                        node = self.nodes[address]
                        if not node.available:
                            node._probe_now()
            except Exception as exc:  # never let the watcher die
                log.debug("valkey cluster refresh failed", extra={"error": str(exc)[:200]})
                await asyncio.sleep(REFRESH_FAST)

    async def health_check(self) -> bool:
        """For the health monitor: the map is fresh, the cluster says ok, every primary answers."""
        await self.refresh()
        if self.info.get("cluster_state") != "ok":
            raise errors.ConnectionError(f"cluster_state: {self.info.get('cluster_state', 'unknown')}")
        pongs = await asyncio.gather(*(self.nodes[a].ping() for a in self.primaries), return_exceptions=True)
        down = [f"{h}:{p}" for (h, p), pong in zip(self.primaries, pongs) if pong is not True]
        if down:
            raise errors.ConnectionError(f"primaries not answering: {', '.join(down)}")
        return True

    async def aclose(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.gather(*(n.aclose() for n in list(self.nodes.values())), return_exceptions=True)
        await super().aclose()


class ClusterTracker:
    """`runtime.valkey_mux.Tracker` on every primary (in a cluster, a key's changes are pushed by
    the node that owns it): live only while every primary's tracking connection is, so the near
    cache is flushed and bypassed while any one of them is blind."""

    def __init__(self, client: ClusterMux, prefixes: Sequence[str], on_invalidate: Callable[[list | None], None],
                 on_state: Callable[[bool], None], **kwargs: Any) -> None:
        self.client = client
        self.prefixes = prefixes
        self.on_invalidate = on_invalidate
        self.on_state = on_state
        self.kwargs = kwargs
        self.live = False
        self._trackers: dict[tuple[str, int], Any] = {}
        self._live: dict[tuple[str, int], bool] = {}
        self._task: asyncio.Task | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is None:
            self.client.on_topology.append(self._reconcile)
            self._task = asyncio.get_running_loop().create_task(self._begin())

    async def _begin(self) -> None:
        while not self._closed:
            try:
                await self.client._ensure_map()
                break
            except (errors.ValkeyError, OSError):
                await asyncio.sleep(0.5)
        self._reconcile()

    def _reconcile(self) -> None:
        """One tracker per primary of the current map."""
        from runtime.valkey_mux import Tracker

        if self._closed:
            return
        wanted = set(self.client.primaries)
        for address in [a for a in self._trackers if a not in wanted]:
            tracker = self._trackers.pop(address)
            self._live.pop(address, None)
            asyncio.get_running_loop().create_task(tracker.close())
        for address in wanted - set(self._trackers):
            tracker = Tracker(self.client.nodes[address], self.prefixes, self.on_invalidate,
                              functools.partial(self._node_state, address), **self.kwargs)
            self._trackers[address] = tracker
            self._live[address] = False
            tracker.start()
        self._publish()

    def _node_state(self, address: tuple[str, int], live: bool) -> None:
        if address in self._trackers:
            self._live[address] = live
        self._publish()

    def _publish(self) -> None:
        live = bool(self._trackers) and all(self._live.values())
        if live != self.live:
            self.live = live
            self.on_state(live)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        for tracker in list(self._trackers.values()):
            await tracker.close()
        self._trackers.clear()
