"""Availability windows (item v1.1), the schedule of window edges, the catalogue's view."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.model.availability import (
    ALWAYS,
    NEVER,
    WITHDRAWN,
    Availability,
    AvailabilitySchedule,
    available_now,
)
from pipeline.model.catalog import Catalog, ItemInfo
from schemas.events import Item
from schemas.validation import Rejected, item_to_bytes, parse_item


@pytest.mark.parametrize(
    ("available", "start", "end", "expected"),
    [
        (None, None, None, ALWAYS),
        (True, None, None, ALWAYS),
        (False, None, 5, WITHDRAWN),
        (True, 10, None, Availability(10, NEVER)),
        (None, None, 20, Availability(0, 20)),
    ],
)
def test_windows_of_item_messages(
    available: bool | None, start: int | None, end: int | None, expected: Availability
) -> None:
    assert Availability.of(available, start, end) == expected
    assert Availability.decode(expected.encode()) == expected


def test_a_window_is_half_open_and_withdrawn_is_never_available() -> None:
    window = Availability(10, 20)
    assert [window.at(t) for t in (9, 10, 19, 20)] == [False, True, True, False]
    assert not WITHDRAWN.at(0) and not WITHDRAWN.at(NEVER - 1)
    assert ALWAYS.at(0) and not ALWAYS.restricted and WITHDRAWN.restricted
    assert window.next_change(0) == 10 and window.next_change(10) == 20
    assert window.next_change(20) is None and WITHDRAWN.next_change(0) is None


def test_redis_form_decides_availability() -> None:
    assert available_now(None, 1) and not available_now(b"W", 1)
    assert available_now(b":100", 99) and not available_now(b":100", 100)
    assert not available_now("50:", 49) and available_now("50:", 50)


def test_the_schedule_returns_edges_in_order_and_is_bounded() -> None:
    s = AvailabilitySchedule(max_entries=2)
    s.add("late", Availability(0, 300), now_ms=0)
    s.add("soon", Availability(0, 100), now_ms=0)
    s.add("mid", Availability(200, NEVER), now_ms=0)
    s.add("never", ALWAYS, now_ms=0)
    assert len(s) == 2  # the nearest edges are kept
    assert s.due(250) == ["soon", "mid"] and s.due(10_000) == []


def test_the_catalogue_keeps_windows_across_eviction_and_logs_changes() -> None:
    c = Catalog(max_items=64)
    idx = c.upsert(ItemInfo("a"))
    c.upsert(ItemInfo("b"))
    before = c.changes.position
    c.set_availability("a", WITHDRAWN)
    assert c.changes.position > before
    assert c.available_at(np.array([idx, c.index_of("b")]), 5).tolist() == [False, True]
    c.evict(np.array([idx]))
    again = c.ensure("a")  # named by an event: comes back, still withdrawn
    assert not c.available_at(np.array([again]), 5)[0]
    c.set_availability("a", ALWAYS)
    assert c.available_at(np.array([again]), 5)[0] and "a" not in c.restricted
    c.set_availability("unknown", Availability(0, 10))  # registered with its window
    assert not c.available_at(np.array([c.index_of("unknown")]), 10)[0]


def test_item_v1_1_fields_are_optional_and_v1_0_encoding_is_unchanged() -> None:
    item = parse_item(b'{"item_id": "c", "categories": []}', max_bytes=10_000)
    assert isinstance(item, Item) and item.available
    assert b"available" not in item_to_bytes(item)
    off = parse_item(b'{"item_id": "c", "categories": [], "available": false}', max_bytes=10_000)
    assert isinstance(off, Item) and b'"available":false' in item_to_bytes(off)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (b'{"item_id": "c", "categories": [], "available": "no"}', "wrong_type"),
        (b'{"item_id": "c", "categories": [], "available": 0}', "wrong_type"),
        (b'{"item_id": "c", "categories": [], "available_until_ts": -1}', "invalid_value"),
        (
            b'{"item_id": "c", "categories": [], "available_from_ts": 5, "available_until_ts": 4}',
            "invalid_value",
        ),
    ],
)
def test_invalid_availability_is_dead_lettered_with_a_reason(doc: bytes, reason: str) -> None:
    rejected = parse_item(doc, max_bytes=10_000)
    assert isinstance(rejected, Rejected) and rejected.reason == reason
