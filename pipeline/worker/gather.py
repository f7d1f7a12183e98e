"""Gathering a batch across several takes while a backlog waits, and only then.

Faust's ``noack_take(size, within)`` hands the agent what its background consumer buffered
in ``within`` seconds after the agent asked. While the worker is draining a backlog the
agent asks only once the previous batch is handled, so a take returns what Faust can buffer
in ``within`` (~80 events at 0.02 s on a 2-core machine), far below ``size``. Every batch
pays fixed costs (a Redis transaction, a round of list sends and their acks, one vectorised
ranking pass, the model apply), so small batches under a backlog spend CPU on exactly the
work that coalescing was meant to save.

A longer ``within`` would fill batches, but every event of a quiet stream would then wait
that long. ``gathered`` keeps ``within`` short and instead joins consecutive takes into one
batch *while the consumer is behind by at least what the batch still lacks*: the events
that would fill it are already waiting, so joining adds no latency a backlog does not
already impose. A quiet stream (nothing behind) is handed on take by take, as before.

The hold is bounded (``hold`` seconds from the first event gathered): the backlog figure is
the consumer's local view (refreshed per fetch), and a take may never come (fetching stops
during a rebalance or shutdown, when Faust waits for every taken event to be
acknowledged). The deadline is kept with ``asyncio.wait`` on the pending take, which is
never cancelled: the next take simply continues into the next batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

E = TypeVar("E")


def gather_more(pending: int, behind: int, held_seconds: float, *, size: int, hold: float) -> bool:
    """Whether ``pending`` gathered events should wait for another take.

    Only while the batch is not full, the hold has time left and the consumer is behind by
    at least what the batch lacks (so the wait costs no latency a backlog does not already
    impose).

    >>> gather_more(80, 5000, 0.02, size=500, hold=0.2)
    True
    >>> gather_more(80, 100, 0.02, size=500, hold=0.2)  # keeping up: hand it on now
    False
    >>> gather_more(480, 5000, 0.25, size=500, hold=0.2)  # held long enough
    False
    """
    return pending < size and held_seconds < hold and behind >= size - pending


async def gathered(
    takes: AsyncIterator[Sequence[E]],
    behind: Callable[[Sequence[E]], int],
    *,
    size: int,
    hold: float,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[tuple[list[E], int]]:
    """Batches of at most ``size`` events joined from ``takes``, each with the backlog after it.

    ``behind(events)`` is the consumer's backlog after a take. ``hold <= 0`` hands every
    take on unchanged (``gather_more`` never holds). Order is kept: events leave in the
    order the takes gave them.
    """
    pending: list[E] = []
    lag = 0
    first = 0.0
    waiting: asyncio.Future[Sequence[E]] | None = None
    try:
        while True:
            if not pending and waiting is None:
                try:  # nothing held: await the take directly (no task per take)
                    events = await anext(takes)
                except StopAsyncIteration:
                    break
            else:
                if waiting is None:
                    waiting = asyncio.ensure_future(anext(takes))
                if pending:
                    left = max(0.0, first + hold - clock())
                    done, _ = await asyncio.wait({waiting}, timeout=left)
                    if not done:  # deadline: hand on what is held, keep the take pending
                        out, pending = pending, []
                        yield out, lag
                        continue
                try:
                    events = await waiting
                except StopAsyncIteration:
                    break
                finally:
                    if waiting.done():
                        waiting = None
            if not pending:
                first = clock()
            pending.extend(events)
            lag = behind(events)
            if len(pending) >= size:
                out, pending = pending[:size], pending[size:]
                first = clock()
                yield out, lag + len(pending)
            if pending and not gather_more(
                len(pending), lag, clock() - first, size=size, hold=hold
            ):
                out, pending = pending, []
                yield out, lag
        if pending:
            yield pending, lag
    finally:
        if waiting is not None and not waiting.done():
            waiting.cancel()
