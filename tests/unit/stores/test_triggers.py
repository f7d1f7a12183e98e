"""Owed-refresh triggers as stored."""

from __future__ import annotations

from pipeline.events.signals import signal_for
from pipeline.features.state import UserContext, UserState
from pipeline.features.update import FeatureParams, apply_event, is_duplicate
from pipeline.lists.build import Trigger
from pipeline.stores.codec import (
    decode_trigger,
    encode_trigger,
)

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
CAPS = {"history_cap": 4, "excluded_cap": 5, "events_cap": 5}
PARAMS = FeatureParams(
    half_life_seconds=86_400.0,
    history_size=CAPS["history_cap"],
    excluded_size=CAPS["excluded_cap"],
    dedupe_size=CAPS["events_cap"],
)
CATS = {"m1": ("Drama",), "m2": ("Comedy", "Drama"), "m3": ("Horror",), "m4": ()}


def play(
    state: UserState,
    event_id: str,
    kind: str,
    item: str,
    ts: int,
    watch_seconds: float | None = None,
    context: UserContext | None = None,
) -> bool:
    """Fold an event in as a worker does (duplicates decided first); False for a duplicate."""
    if is_duplicate(state, event_id):
        return False
    signal = signal_for(kind, watch_seconds, 600.0, threshold=0.6)
    apply_event(
        state,
        event_id=event_id,
        event_type=kind,
        item_id=item,
        ts=ts,
        signal=signal,
        categories=CATS.get(item, ()),
        params=PARAMS,
        context=context,
    )
    return True


def test_owed_trigger_round_trip_keeps_spaces_in_event_ids() -> None:
    for trigger in (Trigger("e1", 5), Trigger("an id with spaces", 1_700_000_000_000)):
        assert decode_trigger(encode_trigger(trigger).encode()) == trigger
