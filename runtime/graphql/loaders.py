"""Per-request DataLoaders: every `load(id)` made while a query's resolvers run side by side
becomes one Batch* call to the backend.

Resolvers of sibling objects start over a few event-loop iterations (graphql-core gathers
each level of the result tree as tasks), so a loader does not dispatch on the first idle
tick but once an iteration passes that adds no new key: 50 employees' `department` fields
make one BatchGetDepartments, whatever their nesting. A loader lives in one request's
Context and never outlives it, so nothing is shared between callers or organizations.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, Awaitable, Callable, Iterable, Mapping

from runtime.protobuf import to_dict

Batch = Callable[[list[str]], Awaitable[Mapping[str, Any]]]
_MAX_SETTLE_TICKS = 16  # a bound on waiting for more keys; then dispatch what there is


class DataLoader:
    __slots__ = ("_batch", "_futures", "_queue", "_scheduled", "_task", "batches")

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self._futures: dict[str, asyncio.Future] = {}
        self._queue: list[str] = []
        self._scheduled = False
        self._task: asyncio.Future | None = None
        self.batches = 0

    def load(self, key: str) -> Awaitable[Any]:
        """The record with this id, or None when there is none (for this organization)."""
        future = self._futures.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._futures[key] = loop.create_future()
            self._queue.append(key)
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._settle, 0, _MAX_SETTLE_TICKS)
        return future

    def load_many(self, keys: Iterable[str]) -> Awaitable[list[Any]]:
        return asyncio.gather(*(self.load(k) for k in keys))

    def _settle(self, seen: int, ticks: int) -> None:
        if len(self._queue) != seen and ticks > 0:
            asyncio.get_running_loop().call_soon(self._settle, len(self._queue), ticks - 1)
            return
        keys, self._queue, self._scheduled = self._queue, [], False
        self._task = asyncio.ensure_future(self._dispatch(keys))  # kept: an unreferenced task may be collected

    async def _dispatch(self, keys: list[str]) -> None:
        self.batches += 1
        try:
            found = await self._batch(keys)
        except Exception as exc:  # every waiting field gets the backend's error
            for key in keys:
                future = self._futures.pop(key)  # a later load retries instead of repeating it
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved here: fields that stopped waiting log nothing
            return
        for key in keys:
            future = self._futures[key]
            if not future.done():
                future.set_result(found.get(key))


class Loaders:
    """The loaders of one request, created on first use: `ctx.loaders.get("hrm", hrm_pb2.Employee)`."""

    __slots__ = ("_ctx", "_loaders", "memo")

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._loaders: dict[tuple[str, str], DataLoader] = {}
        self.memo: dict[str, Any] = {}  # other once-per-request reads (e.g. ListRoles)

    @staticmethod
    def shared(coroutine: Any) -> asyncio.Future:
        """A read several fields await: started once, its answer (or error) shared."""
        return asyncio.ensure_future(coroutine)

    def get(self, service: str, message: Any, plural: str = "") -> DataLoader:
        """A loader over `BatchGet<plural>` (default: the message name + "s") of `service`."""
        key = (service, message.DESCRIPTOR.name)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = DataLoader(self._batcher(service, message, plural))
        return loader

    def _batcher(self, service: str, message: Any, plural: str) -> Batch:
        plural = plural or message.DESCRIPTOR.name + "s"
        pb2 = importlib.import_module(message.__module__)
        request_type = getattr(pb2, f"BatchGet{plural}Request")
        ctx = self._ctx

        async def batch(ids: list[str]) -> dict[str, Any]:
            answer = await getattr(getattr(ctx.backends, service), f"BatchGet{plural}")(request_type(ids=ids))
            return {row.id: to_dict(row) for row in getattr(answer, plural.lower())}

        return batch
