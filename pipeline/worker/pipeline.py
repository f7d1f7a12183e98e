"""Overlapping a batch's I/O with the next batch's work, without giving up order or safety.

A batch has a CPU stage (decode, load missing users, learn, decide refreshes) and an I/O
stage (the Redis write, then lists and dead letters, then the acknowledgement that lets the
consumer commit the batch's offsets). Run strictly one after the other, the worker waits
on Redis and broker round trips with the CPU idle. ``BatchPipeline`` runs batch N+1's CPU
stage while batch N's I/O stage is in flight:

* CPU stages run one at a time, in arrival order, so every batch learns from the user states
  the previous batch left (per-user order is kept);
* I/O stages run one at a time, in the same order, so Redis sees a user's writes in order;
* a batch is acknowledged (its offsets may be committed) only after its own I/O stage is
  done, so a crash loses nothing: every unacknowledged batch is redelivered and its events,
  de-duplicated by id, change nothing that was already written;
* at most ``depth`` batches are in flight (2: one in I/O, one in its CPU stage).

A failure in a stage (a bug, not an outage: I/O errors are retried inside the stages)
poisons the in-flight batches: the pipeline drains, resets the worker's caches and runs
every batch that was not acknowledged again, one at a time through the safe path
(``fallback``), which retries once with fresh state and dead-letters a batch that fails
twice.

``exclusive`` runs work that must not interleave with batches (controls, a forget, item
updates, a handover) after every in-flight batch is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

P = TypeVar("P")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Entry(Generic[P]):
    batch: P
    ack: Callable[[], None]
    done: asyncio.Future[None]


class BatchPipeline(Generic[P, T]):
    """A two-stage pipeline over batches of type ``P`` prepared into ``T`` (see module doc).

    >>> async def demo() -> list[str]:
    ...     seen: list[str] = []
    ...     async def cpu(b: str) -> str:
    ...         seen.append("cpu " + b)
    ...         return b
    ...     async def io(b: str) -> None:
    ...         await asyncio.sleep(0)
    ...         seen.append("io " + b)
    ...     async def fallback(b: str) -> None:
    ...         seen.append("fallback " + b)
    ...     pipe = BatchPipeline(cpu, io, fallback, reset=lambda: None)
    ...     await pipe.submit("a", lambda: seen.append("ack a"))
    ...     await pipe.submit("b", lambda: seen.append("ack b"))
    ...     await pipe.drain()
    ...     return seen
    >>> asyncio.run(demo())
    ['cpu a', 'cpu b', 'io a', 'ack a', 'io b', 'ack b']
    """

    def __init__(
        self,
        cpu: Callable[[P], Awaitable[T]],
        io: Callable[[T], Awaitable[None]],
        fallback: Callable[[P], Awaitable[None]],
        *,
        reset: Callable[[], None],
        depth: int = 2,
    ) -> None:
        self._cpu = cpu
        self._io = io
        self._fallback = fallback
        self._reset = reset
        self._depth = max(1, depth)
        self._chain: asyncio.Task[None] | None = None
        self._pending: list[_Entry[P]] = []
        self._lock = asyncio.Lock()
        self._failed = False

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet acknowledged."""
        return len(self._pending)

    async def submit(self, batch: P, ack: Callable[[], None]) -> None:
        """Run ``batch``'s CPU stage now and queue its I/O stage; ``ack`` once it is durable.

        Returns when the CPU stage is done (and there was room for the batch).
        """
        async with self._lock:
            while len(self._pending) >= self._depth and not self._failed:
                await self._pending[0].done
            if self._failed:
                await self._recover()
            try:
                prepared = await self._cpu(batch)
            except Exception:
                log.exception("batch preparation failed; running it again on fresh state")
                await self._drain_unlocked()
                self._reset()
                await self._fallback(batch)
                ack()
                return
            entry = _Entry(batch, ack, asyncio.get_running_loop().create_future())
            self._pending.append(entry)
            self._chain = asyncio.create_task(self._io_after(self._chain, prepared, entry))

    async def _io_after(
        self, previous: asyncio.Task[None] | None, prepared: T, entry: _Entry[P]
    ) -> None:
        """The I/O stage of one batch, after the previous batch's (never raises)."""
        if previous is not None:
            await previous
        if not self._failed:
            try:
                await self._io(prepared)
            except Exception:
                log.exception("batch I/O failed; batches in flight run again on fresh state")
                self._failed = True
            else:
                entry.ack()
                self._pending.remove(entry)
        entry.done.set_result(None)

    async def _recover(self) -> None:
        """After a failure: let the chain settle, reset, re-run unacknowledged batches."""
        if self._chain is not None:
            await self._chain
        batches, self._pending = self._pending, []
        self._failed = False
        self._reset()
        for entry in batches:
            await self._fallback(entry.batch)
            entry.ack()

    async def _drain_unlocked(self) -> None:
        if self._chain is not None:
            await self._chain
        if self._failed:
            await self._recover()

    async def drain(self) -> None:
        """Wait until every submitted batch is durable and acknowledged."""
        async with self._lock:
            await self._drain_unlocked()

    async def exclusive(self, work: Callable[[], Awaitable[R]]) -> R:
        """Run ``work`` after every in-flight batch is done, with no batch interleaving."""
        async with self._lock:
            await self._drain_unlocked()
            return await work()
