"""The consumer's backlog as the worker sees it: every partition taken from, not one take's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust

from agents.batches import ConsumerBacklog


@dataclass(frozen=True)
class _Message:
    tp: str
    offset: int


@dataclass(frozen=True)
class _Event:
    message: _Message


class _Consumer:
    """Highwater marks by partition; a partition missing is one no longer assigned."""

    def __init__(self, marks: dict[str, int | None]) -> None:
        self.marks = marks

    def highwater(self, tp: str) -> int | None:
        assert tp in self.marks, "Partition is not assigned"  # as aiokafka refuses
        return self.marks[tp]


@dataclass
class _App:
    consumer: _Consumer
    rebalancing_count: int = 0  # faust.App counts the rebalances it started


def _events(*pairs: tuple[str, int]) -> list[Any]:
    return [_Event(_Message(tp, offset)) for tp, offset in pairs]


def test_the_backlog_counts_every_partition_taken_from() -> None:
    consumer = _Consumer({"p0": 100, "p1": 50})
    backlog = ConsumerBacklog(cast(faust.App, _App(consumer)))
    assert backlog.after(_events(("p0", 9))) == 90  # offsets 10..99 wait
    # a take from p1 alone: p0's 90 still wait and still count
    assert backlog.after(_events(("p1", 19), ("p1", 29))) == 90 + 20


def test_a_revoked_partition_is_dropped_and_an_unknown_highwater_counts_nothing() -> None:
    consumer = _Consumer({"p0": 100, "p1": None})
    backlog = ConsumerBacklog(cast(faust.App, _App(consumer)))
    assert backlog.after(_events(("p0", 49), ("p1", 5))) == 50
    del consumer.marks["p0"]  # revoked
    assert backlog.after(_events(("p1", 6))) == 0
    consumer.marks["p0"] = 100  # assigned again: counted from its next take only
    assert backlog.after(_events(("p1", 7))) == 0


def test_a_rebalance_forgets_offsets_taken_before_it() -> None:
    """p0 is revoked and assigned back between two takes while another worker consumed it
    (its highwater moved on, and the consumer still holds it): the offset taken before the
    rebalance must not read as 250 events behind on a partition with nothing to take."""
    consumer = _Consumer({"p0": 100, "p1": 10})
    app = _App(consumer)
    backlog = ConsumerBacklog(cast(faust.App, app))
    assert backlog.after(_events(("p0", 99))) == 0
    consumer.marks["p0"] = 350  # the other worker's 250 events, all handled by it
    app.rebalancing_count += 1  # ... and p0 came back to this one
    assert backlog.after(_events(("p1", 9))) == 0
    assert backlog.after(_events(("p0", 349))) == 0  # counted again from its next take
    consumer.marks["p0"] = 400
    assert backlog.after(_events(("p1", 9))) == 50
