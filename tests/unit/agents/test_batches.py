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
