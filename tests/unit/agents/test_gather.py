"""Gathering batches across takes: only under a backlog, bounded by size and by a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from pipeline.worker.gather import gather_more, gathered

# a take is a list of event numbers; the backlog after it is looked up by its first event
Take = list[int]


async def _from_queue(queue: asyncio.Queue[Take | None]) -> AsyncIterator[Take]:
    while (take := await queue.get()) is not None:
        yield take


def _run(
    takes: Sequence[Take | None],
    backlog: dict[int, int],
    *,
    size: int = 10,
    hold: float = 5.0,
) -> list[tuple[list[int], int]]:
    async def main() -> list[tuple[list[int], int]]:
        queue: asyncio.Queue[Take | None] = asyncio.Queue()
        for take in takes:
            queue.put_nowait(take)
        out = []
        async for batch in gathered(
            _from_queue(queue), lambda t: backlog.get(t[0], 0), size=size, hold=hold
        ):
            out.append(batch)
        return out

    return asyncio.run(main())


def test_a_stream_that_keeps_up_is_handed_on_take_by_take() -> None:
    out = _run([[1, 2], [3], [4, 5, 6], None], {1: 0, 3: 2, 4: 0})
    assert out == [([1, 2], 0), ([3], 2), ([4, 5, 6], 0)]


def test_under_a_backlog_takes_are_joined_up_to_the_batch_size_in_order() -> None:
    # behind by at least what the batch lacks: join; the fourth take overflows and is split
    takes: list[Take | None] = [[1, 2, 3], [4, 5, 6], [7, 8], [9, 10, 11, 12], [13], None]
    out = _run(takes, {1: 100, 4: 100, 7: 100, 9: 100, 13: 0})
    assert out == [(list(range(1, 11)), 102), ([11, 12, 13], 0)]


def test_gathering_stops_when_the_backlog_cannot_fill_the_batch() -> None:
    # after [1..3] the batch lacks 7 and 9 wait: join; after [4, 5] it lacks 5 and 4 wait
    out = _run([[1, 2, 3], [4, 5], [6], None], {1: 9, 4: 4, 6: 0})
    assert out == [([1, 2, 3, 4, 5], 4), ([6], 0)]


def test_hold_zero_hands_every_take_on_unchanged() -> None:
    out = _run([[1, 2, 3], [4, 5], None], {1: 1000, 4: 1000}, hold=0)
    assert out == [([1, 2, 3], 1000), ([4, 5], 1000)]


def test_held_events_leave_at_the_deadline_when_no_take_comes() -> None:
    """A rebalance or shutdown stops fetching while Faust waits for every taken event."""

    async def main() -> list[tuple[list[int], int, float]]:
        queue: asyncio.Queue[Take | None] = asyncio.Queue()
        queue.put_nowait([1, 2])
        loop = asyncio.get_running_loop()
        start = loop.time()
        out = []
        batches = gathered(_from_queue(queue), lambda t: 100, size=10, hold=0.05)
        async for events, behind in batches:
            out.append((events, behind, loop.time() - start))
            if len(out) == 1:  # the take pending at the deadline continues into the next batch
                queue.put_nowait([3])
                queue.put_nowait(None)
        return out

    out = asyncio.run(main())
    assert [(events, behind) for events, behind, _ in out] == [([1, 2], 100), ([3], 100)]
    assert 0.04 <= out[0][2] < 1.0


def test_closing_the_batches_cancels_the_pending_take() -> None:
    async def main() -> bool:
        cancelled = asyncio.Event()

        async def takes() -> AsyncIterator[Take]:
            yield [1]
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            yield [2]

        batches = gathered(takes(), lambda t: 100, size=10, hold=0.01)
        assert await anext(batches) == ([1], 100)
        await batches.aclose()
        await asyncio.sleep(0)
        return cancelled.is_set()

    assert asyncio.run(main())


@pytest.mark.parametrize(
    ("pending", "behind", "held", "expected"),
    [
        (1, 9, 0.0, True),  # lacks 9, 9 wait
        (1, 8, 0.0, False),  # lacks 9, 8 wait
        (10, 1000, 0.0, False),  # full
        (5, 1000, 1.0, False),  # held for the whole hold
    ],
)
def test_gather_more(pending: int, behind: int, held: float, expected: bool) -> None:
    assert gather_more(pending, behind, held, size=10, hold=1.0) is expected
