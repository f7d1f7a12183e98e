"""User controls: mutes, not-interested, declared prior, the controls hash."""

from __future__ import annotations

import pytest

from pipeline.features.controls import UserControls, apply_control
from pipeline.stores.codec import controls_fields, controls_from_fields
from schemas.control import Control
from schemas.validation import Rejected, parse_control


def control(**fields: object) -> Control:
    base = {"control_id": "c", "user_id": "u", "ts": 1}
    return Control.model_validate({**base, **fields})


def test_mutes_and_not_interested_block_items_until_undone() -> None:
    c = UserControls()
    apply_control(c, control(type="mute", category="News"), n_events=0)
    apply_control(c, control(type="mute", creator_id="cr1"), n_events=0)
    apply_control(c, control(type="not_interested", item_id="i9", reason="seen"), n_events=0)
    assert not c.allows("i1", ("Sports", "News"), None)
    assert not c.allows("i2", ("Sports",), "cr1")
    assert not c.allows("i9", (), None)
    assert c.allows("i3", ("Sports",), "cr2")
    apply_control(c, control(type="unmute", category="News"), n_events=0)
    apply_control(c, control(type="unmute", item_id="i9"), n_events=0)
    assert c.allows("i1", ("Sports", "News"), None) and c.allows("i9", (), None)


def test_declared_prior_fades_with_behaviour_and_never_freezes() -> None:
    c = UserControls()
    apply_control(c, control(type="declare_interests", categories=["A", "B"]), n_events=3)
    weights = [c.prior(3 + n, weight=1.0, halfway=5.0) for n in (0, 5, 15, 45)]
    assert weights == [1.0, 0.5, 0.25, 0.1]
    apply_control(c, control(type="declare_interests", categories=[]), n_events=10)
    assert c.prior(10, weight=1.0, halfway=5.0) == 0.0


def test_controls_hash_round_trip() -> None:
    c = UserControls(muted_categories={"A"}, not_interested={"i": "meh"}, declared=("B",))
    c.personalization = False
    assert controls_from_fields(controls_fields(c)) == c


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"type": "mute"}, "missing_field"),
        ({"type": "mute", "category": "A", "item_id": "i"}, "invalid_value"),
        ({"type": "not_interested"}, "missing_field"),
        ({"type": "declare_interests"}, "missing_field"),
        ({"type": "explode"}, "unknown_type"),
    ],
)
def test_invalid_controls_get_a_dead_letter_reason(doc: dict[str, object], reason: str) -> None:
    import orjson

    raw = orjson.dumps({"control_id": "c", "user_id": "u", "ts": 1, **doc})
    result = parse_control(raw, max_bytes=10_000)
    assert isinstance(result, Rejected) and result.reason.value == reason
