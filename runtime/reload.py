"""Hot reload of the policies an operator tunes while the gateway runs: the RBAC roles, the
rate-limit policies and CORS. Each worker watches CONFIG_FILE (a stat every
`server.reload_interval`); when it changes, the whole file is loaded and validated like at
start-up, and only then are the new policies swapped in, between two requests. A file that
does not load (bad YAML, a bad value, a role cycle, a route naming a rate-limit policy that
is gone) is refused with one log line and the running policies stay. Keys outside these
sections need a restart (`kill -HUP` the Granian master restarts workers one at a time); a
change to them is logged as such.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any, Callable

from runtime.config import Config, ConfigError, load_config
from runtime.endpoint import RegistryError
from runtime.rbac import Policy
from runtime.security.cors import Cors
from runtime.security.route_limits import derived_limits, reload_derived

log = logging.getLogger("gateway")

RELOADABLE = ("rbac", "rate_limits", "cors")


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ConfigReloader:
    """Watches one file; `apply(config)` swaps the live objects, raising to refuse."""

    def __init__(self, path: str, interval: float, current: Config,
                 apply: Callable[[Config], None], load: Callable[[], Config] = load_config) -> None:
        self.path, self.interval, self.current = path, interval, current
        self.apply, self.load = apply, load
        self.signature = _signature(path)
        self.reloads = 0
        self.refusals = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="config-reload")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            signature = _signature(self.path)
            if signature is not None and signature != self.signature:
                self.signature = signature
                self.check()

    def check(self) -> bool:
        """Load the file now; True when its policies were applied."""
        try:
            new = self.load()
            self.apply(new)
        except (ConfigError, RegistryError, ValueError) as exc:
            self.refusals += 1
            log.error("configuration reload refused; the running policies stay",
                      extra={"file": self.path, "error": str(exc)[:500]})
            return False
        stale = [f.name for f in dataclasses.fields(new) if f.name not in RELOADABLE
                 and getattr(new, f.name) != getattr(self.current, f.name)]
        if stale:
            log.warning("configuration changed outside rbac, rate_limits and cors: restart workers to apply",
                        extra={"sections": stale})
        self.current = new
        self.reloads += 1
        log.info("configuration reloaded", extra={"file": self.path, "sections": list(RELOADABLE)})
        return True


def swap_policies(middleware: Any, state: Any) -> Callable[[Config], None]:
    """The `apply` of a gateway: build everything first (any error refuses the file), then
    swap, so a request sees either the old policies or the new, never a mix."""

    def apply(new: Config) -> None:
        policy = Policy(new.rbac.roles)
        cors = Cors(new.cors)
        # The routes', and those GraphQL derived from them (its default budget, its login).
        resources = state.resources
        for limits in [*state.route_limits, *(derived_limits(resources) if resources is not None else ())]:
            limits.check(new)  # a route's named policy must still exist
        for limits in state.route_limits:
            limits.reload(new)
        if resources is not None:
            reload_derived(resources, new)
        state.resources.policy = policy
        middleware.cors = cors
        realtime = getattr(state, "realtime", None)
        if realtime is not None:  # channel ACLs and the WebSocket Origin check follow too
            state.resources.realtime.policy = policy
            realtime.reload_origins(new)

    return apply
