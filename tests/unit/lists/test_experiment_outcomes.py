"""Experiment outcomes: attribution by event time, exact sums of squares, return flags."""

from __future__ import annotations

import random
from collections import Counter

from pipeline.features.state import ArmState, UserState
from pipeline.lists.experiment_outcomes import (
    RATIOS,
    SQUARED,
    VALUES,
    arm_fields,
    arm_from_fields,
    event_outcome,
    note_exposure,
    outcome,
    returned_field,
    shown_json,
    sq_field,
    withdrawal,
    xy_field,
)

WINDOW_MS = 60_000


def _arm(**fields: object) -> ArmState:
    base: dict[str, object] = {"first_ms": 1_000, "shown": frozenset({"i1", "i2"}),
                               "shown_ms": 1_000}  # fmt: skip
    return ArmState("exp", "b", **(base | fields))  # type: ignore[arg-type]


def _event(arm: ArmState | None, kind: str, item: str, ts: int, completed: bool = False,
           windows: tuple[int, ...] = ()) -> dict[str, int]:  # fmt: skip
    return event_outcome(arm, attribution_ms=WINDOW_MS, windows=windows, event_type=kind,
                         item_id=item, ts=ts, completed=completed)  # fmt: skip


def test_actions_are_credited_to_the_latest_list_within_the_window_by_event_time() -> None:
    arm = _arm()
    assert _event(arm, "watch", "i1", 2_000, completed=True) == {
        "events": 1, "actions": 1, "hits": 1, "watches": 1, "completions": 1,
        "sq:events": 1, "sq:actions": 1, "sq:hits": 1, "sq:watches": 1, "sq:completions": 1,
        "xy:hits:actions": 1, "xy:completions:watches": 1,
    }  # fmt: skip
    miss = _event(arm, "click", "i9", 3_000)
    assert miss["actions"] == 1 and "hits" not in miss
    late = _event(arm, "click", "i1", 1_000 + WINDOW_MS + 1)  # stamped after the window
    assert late == {"events": 1, "sq:events": 3**2 - 2**2}  # an event, not an action: 2 -> 3
    assert arm.values == {"events": 3, "actions": 2, "hits": 1, "watches": 1, "completions": 1}
    assert _event(None, "click", "i1", 2_000) == {}  # never shown an experiment list


def test_outcome_kinds() -> None:
    assert outcome("skip", True, False) == {"actions": 1, "hits": 1, "skips": 1}
    assert outcome("click", True, False) == {"actions": 1, "hits": 1, "clicks": 1}
    assert outcome("watch", True, False) == {"actions": 1, "hits": 1, "watches": 1}
    assert outcome("click", False, False) == {"actions": 1}


def _random_stream(rng: random.Random, users: int, events: int) -> list[tuple[str, str, str]]:
    kinds = ("click", "watch", "skip")
    return [(f"u{rng.randrange(users)}", rng.choice(kinds), f"i{rng.randrange(6)}")
            for _ in range(events)]  # fmt: skip


def test_incremental_sums_equal_the_sums_over_users_final_values() -> None:
    """Whatever the order of events, the arm's increments add up to sum x, sum x^2, sum xy."""
    rng = random.Random(3)
    arms: dict[str, ArmState] = {}
    totals: Counter[str] = Counter()
    for n, (user, kind, item) in enumerate(_random_stream(rng, 40, 3_000)):
        arm = arms.setdefault(user, _arm(shown=frozenset({"i0", "i1", "i2"})))
        if rng.random() < 0.05:  # a new list now and then
            arm.shown, arm.shown_ms = frozenset(rng.sample(["i0", "i1", "i2", "i3"], 2)), n
        totals.update(_event(arm, kind, item, n, completed=rng.random() < 0.5))
    values = [a.values for a in arms.values()]
    for v in VALUES:
        assert totals[v] == sum(u.get(v, 0) for u in values)
    for v in SQUARED:
        assert totals[sq_field(v)] == sum(u.get(v, 0) ** 2 for u in values)
    for x, y in RATIOS.values():
        assert totals[xy_field(x, y)] == sum(u.get(x, 0) * u.get(y, 0) for u in values)


def test_a_withdrawal_takes_exactly_one_users_part_out() -> None:
    rng = random.Random(5)
    arms: dict[str, ArmState] = {}
    totals: Counter[str] = Counter()
    for n, (user, kind, item) in enumerate(_random_stream(rng, 5, 400)):
        arm = arms.setdefault(user, _arm(shown=frozenset({"i0", "i1"})))
        totals.update(_event(arm, kind, item, 1_000 + n * 100, windows=(10,)))
    without = Counter(totals)
    without.update(withdrawal(arms["u0"], lists=7))
    others: Counter[str] = Counter()
    rebuilt = {u: _arm(shown=frozenset({"i0", "i1"})) for u in arms if u != "u0"}
    rng = random.Random(5)  # replay the same stream without u0
    for n, (user, kind, item) in enumerate(_random_stream(rng, 5, 400)):
        if user != "u0":
            others.update(_event(rebuilt[user], kind, item, 1_000 + n * 100, windows=(10,)))
    others["exposures"] -= 7
    assert {k: v for k, v in without.items() if v} == {k: v for k, v in others.items() if v}


def test_return_flags_are_set_once_by_event_time() -> None:
    arm = _arm(first_ms=10_000)
    windows = (30, 90)
    assert returned_field(30) not in _event(arm, "click", "i1", 39_999, windows=windows)
    assert _event(arm, "click", "i1", 40_000, windows=windows)[returned_field(30)] == 1
    assert returned_field(30) not in _event(arm, "click", "i1", 41_000, windows=windows)
    late = _event(arm, "click", "i1", 200_000, windows=windows)
    assert returned_field(90) in late and returned_field(30) not in late
    assert arm.returned == {30, 90}


def test_a_new_list_is_credited_and_another_arm_starts_afresh() -> None:
    state = UserState("u")
    note_exposure(state, (frozenset({"a"}), "exp", "b"), 5)
    assert state.arm is not None and state.arm.first_ms == 5
    state.arm.values["hits"] = 3
    note_exposure(state, (frozenset({"c"}), "exp", "b"), 9)
    assert (state.arm.first_ms, state.arm.shown, state.arm.shown_ms) == (5, frozenset({"c"}), 9)
    assert state.arm.values == {"hits": 3}
    note_exposure(state, (frozenset({"d"}), "other", "a"), 12)
    assert (state.arm.experiment, state.arm.first_ms, state.arm.values) == ("other", 12, {})


def test_stored_fields_round_trip() -> None:
    arm = _arm(values={"hits": 2, "actions": 5}, returned={30})
    stored = arm_fields(arm) | {"shown": shown_json(arm.shown).decode(), "shown_ms": "1000",
                                "lists": "4"}  # fmt: skip
    assert list(arm_fields(arm))[:3] == ["experiment", "variant", "first_ms"]  # the script's order
    back, lists = arm_from_fields(stored)
    assert back == arm and lists == 4
    assert arm_from_fields({}) == (None, 0)
