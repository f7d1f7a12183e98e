"""Owed-refresh triggers as stored: the receive time, and the form earlier versions wrote."""

from __future__ import annotations

import pytest

from pipeline.lists.build import Trigger
from pipeline.stores.codec import (
    decode_trigger,
    encode_trigger,
)


@pytest.mark.parametrize(
    "trigger",
    [
        Trigger("e1", 5),
        Trigger("an id with spaces", 1_700_000_000_000),
        Trigger("e1", 5, 1_700_000_000_123),
        Trigger("tricky 12 34@56", 0, 0),
        Trigger("ends with a space ", 7, 8),
    ],
)
def test_owed_trigger_round_trip(trigger: Trigger) -> None:
    assert decode_trigger(encode_trigger(trigger).encode()) == trigger


def test_the_form_without_receive_time_is_still_read() -> None:
    """What a worker of the first release stored: ``"<event_id> <ts>"``."""
    assert decode_trigger(b"e 1 2 3") == Trigger("e 1 2", 3, None)
    assert encode_trigger(decode_trigger(b"e 1 2 3")) == "e 1 2 3"  # settles it unchanged


def test_the_receive_time_is_part_of_what_a_settle_compares() -> None:
    assert encode_trigger(Trigger("e1", 5, 7)) != encode_trigger(Trigger("e1", 5, 8))
