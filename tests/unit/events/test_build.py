"""Completing and validating what producers send (``pipeline.events.build``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.errors import (
    InvalidEventError,
    RecloopError,
)
from pipeline.events.build import build_event, build_item
from schemas import Event, EventContext, EventType, Item, RejectReason, parse_event

NOW = 1_700_000_000_000


# --- build_event: pure ------------------------------------------------------------------------


def test_build_event_fills_id_ts_and_version_and_keeps_extras() -> None:
    event, raw = build_event(
        {"type": "click", "user_id": "u", "item_id": "i", "campaign": "x"}, Settings(), now_ms=NOW
    )
    assert event.ts == NOW and len(event.event_id) == 32 and int(event.event_id, 16) >= 0
    sent = orjson.loads(raw)
    assert sent["schema_version"] == 1 and sent["campaign"] == "x"
    assert parse_event(raw, now_ms=NOW, max_bytes=16_384, max_future_ms=0) == event


def test_build_event_keeps_given_id_and_ts() -> None:
    fields = {"type": "click", "user_id": "u", "item_id": "i", "event_id": "e-7", "ts": 5}
    event, _ = build_event(fields, Settings(), now_ms=NOW)
    assert (event.event_id, event.ts) == ("e-7", 5)


def test_build_event_generates_distinct_ids() -> None:
    fields = {"type": "click", "user_id": "u", "item_id": "i"}
    ids = {build_event(fields, Settings(), now_ms=NOW)[0].event_id for _ in range(100)}
    assert len(ids) == 100


def test_build_event_accepts_a_model_and_a_context_model() -> None:
    model = Event(
        event_id="e", type=EventType.SKIP, user_id="u", item_id="i", ts=NOW, watch_seconds=2
    )
    assert build_event(model, Settings(), now_ms=NOW)[0] == model
    fields = {"type": "click", "user_id": "u", "item_id": "i", "context": EventContext(position=2)}
    event, raw = build_event(fields, Settings(), now_ms=NOW)
    assert event.context == EventContext(position=2)
    assert orjson.loads(raw)["context"] == {"position": 2}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "watch", "user_id": "u", "item_id": "i"}, RejectReason.MISSING_FIELD),
        ({"type": "click", "user_id": "", "item_id": "i"}, RejectReason.INVALID_VALUE),
        ({"type": "click", "user_id": "u", "item_id": "i", "ts": True}, RejectReason.WRONG_TYPE),
        ({"type": "share", "user_id": "u", "item_id": "i"}, RejectReason.UNKNOWN_TYPE),
        (
            {"type": "click", "user_id": "u", "item_id": "i", "ts": NOW * 1000},
            RejectReason.FUTURE_TS,
        ),
        (
            {"type": "skip", "user_id": "u", "item_id": "i", "watch_seconds": -1},
            RejectReason.NEGATIVE_DURATION,
        ),
        (
            {"type": "click", "user_id": "u", "item_id": "i", "blob": "x" * 20_000},
            RejectReason.TOO_LARGE,
        ),
        ({"type": "click", "user_id": "u", "item_id": "i", "x": object()}, RejectReason.WRONG_TYPE),
        (
            {"type": "click", "user_id": "u", "item_id": "i", "schema_version": 2},
            RejectReason.UNSUPPORTED_VERSION,
        ),
    ],
)
def test_build_event_raises_with_the_workers_reason(
    fields: dict[str, Any], reason: RejectReason
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        build_event(fields, Settings(), now_ms=NOW)
    assert caught.value.reason is reason
    assert reason.value in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RecloopError)


def test_build_item() -> None:
    item, raw = build_item({"item_id": "i", "categories": ("a", "b")}, Settings())
    assert item == Item(item_id="i", categories=("a", "b"))
    assert orjson.loads(raw) == {"schema_version": 1, "item_id": "i", "categories": ["a", "b"]}
    with pytest.raises(InvalidEventError) as caught:
        build_item({"item_id": "i", "categories": "a"}, Settings())
    assert caught.value.reason is RejectReason.WRONG_TYPE
