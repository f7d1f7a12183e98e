"""User controls: mutes, not-interested, declared prior, the controls hash."""

from __future__ import annotations

import pytest

from pipeline.features.controls import (
    MUTES_KEEP,
    NOT_INTERESTED_KEEP,
    UserControls,
    apply_control,
)
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
    c = UserControls(
        muted_categories={"B": None, "A": None}, not_interested={"i": "meh"}, declared=("B",)
    )
    c.personalization = False
    loaded = controls_from_fields(controls_fields(c))
    assert loaded == c
    assert list(loaded.muted_categories) == ["B", "A"]  # oldest first, not sorted


def test_controls_stored_sorted_by_an_earlier_version_still_load() -> None:
    fields = {"muted_creators": '["a","b"]', "personalization": "on"}
    assert list(controls_from_fields(fields).muted_creators) == ["a", "b"]


@pytest.mark.parametrize("kind", ["category", "creator_id", "item_id"])
def test_mutes_are_capped_per_kind_oldest_dropped(kind: str) -> None:
    c = UserControls()
    for k in range(MUTES_KEEP + 5):
        apply_control(c, control(type="mute", **{kind: f"v{k}"}), n_events=0)
    apply_control(c, control(type="mute", **{kind: "v5"}), n_events=0)  # muted again: newest
    apply_control(c, control(type="mute", **{kind: "one more"}), n_events=0)
    muted = {"category": c.muted_categories, "creator_id": c.muted_creators,
             "item_id": c.muted_items}[kind]  # fmt: skip
    assert len(muted) == MUTES_KEEP
    assert "v5" in muted and "v6" not in muted and "v7" in muted
    assert list(muted)[-2:] == ["v5", "one more"]
    others = [m for m in (c.muted_categories, c.muted_creators, c.muted_items) if m is not muted]
    assert all(not m for m in others)  # each kind has its own cap


def test_not_interested_is_capped_oldest_dropped() -> None:
    c = UserControls()
    for k in range(NOT_INTERESTED_KEEP + 3):
        apply_control(c, control(type="not_interested", item_id=f"i{k}"), n_events=0)
    assert len(c.not_interested) == NOT_INTERESTED_KEEP
    assert "i0" not in c.not_interested and "i2" not in c.not_interested
    assert f"i{NOT_INTERESTED_KEEP + 2}" in c.not_interested


def test_controls_hash_at_the_caps_is_bounded() -> None:
    """Worst case: every cap full of ASCII ids, categories and reasons at their limits."""
    from schemas.limits import MAX_CATEGORY_LENGTH, MAX_ID_LENGTH, MAX_REASON_LENGTH

    def longest(k: int, size: int) -> str:
        return f"{k:04d}".ljust(size, "x")

    c = UserControls()
    for k in range(MUTES_KEEP + 50):
        for target in ({"category": longest(k, MAX_CATEGORY_LENGTH)},
                       {"creator_id": longest(k, MAX_ID_LENGTH)},
                       {"item_id": longest(k, MAX_ID_LENGTH)}):  # fmt: skip
            apply_control(c, control(type="mute", **target), n_events=0)
    reason = "r" * MAX_REASON_LENGTH
    for k in range(NOT_INTERESTED_KEEP + 50):
        marked = control(type="not_interested", item_id=longest(k, MAX_ID_LENGTH), reason=reason)
        apply_control(c, marked, n_events=0)
    size = sum(len(v.encode()) for v in controls_fields(c).values())
    assert 300_000 < size < 340_000  # documented in pipeline/features/controls.py


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
