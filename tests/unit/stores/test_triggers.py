"""Owed-refresh triggers as stored."""

from __future__ import annotations

from pipeline.lists.build import Trigger
from pipeline.stores.codec import (
    decode_trigger,
    encode_trigger,
)


def test_owed_trigger_round_trip_keeps_spaces_in_event_ids() -> None:
    for trigger in (Trigger("e1", 5), Trigger("an id with spaces", 1_700_000_000_000)):
        assert decode_trigger(encode_trigger(trigger).encode()) == trigger
