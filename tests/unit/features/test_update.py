"""The per-user update rule ``apply_event`` and what ``UserState`` reports afterwards."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from pipeline.events.signals import signal_for
from pipeline.features.state import UserContext, UserState
from pipeline.features.update import (
    AFFINITY_KEEP,
    FeatureParams,
    add_affinity,
    apply_event,
    is_duplicate,
)

T0 = 1_700_000_000_000
HOUR_S = 3_600.0
HOUR_MS = 3_600_000
PARAMS = FeatureParams(half_life_seconds=HOUR_S, history_size=5, excluded_size=4, dedupe_size=3)
ROOMY = FeatureParams(half_life_seconds=HOUR_S, history_size=50, excluded_size=50, dedupe_size=50)

Apply = Callable[..., bool]


@pytest.fixture
def apply() -> Apply:
    """Factory: fold one event (built from type and watch time) into a state."""

    def _apply(
        state: UserState,
        event_id: str,
        event_type: str = "watch",
        item_id: str = "m1",
        ts: int = T0,
        *,
        watch_seconds: float | None = 600.0,
        duration: float | None = 600.0,
        categories: tuple[str, ...] = ("Drama",),
        context: UserContext | None = None,
        params: FeatureParams = PARAMS,
    ) -> bool:
        if is_duplicate(state, event_id):  # decided by the caller, as learn_batch does
            return False
        signal = signal_for(event_type, watch_seconds, duration, threshold=0.6)
        apply_event(
            state,
            event_id=event_id,
            event_type=event_type,
            item_id=item_id,
            ts=ts,
            signal=signal,
            categories=categories,
            params=params,
            context=context,
        )
        return True

    return _apply


# --------------------------------------------------------------------------- counters
def test_counters_per_event_type(apply: Apply) -> None:
    state = UserState("u1")
    assert apply(state, "e1", "click", "m1")
    assert apply(state, "e2", "skip", "m2", T0 + 1, watch_seconds=2.0)
    assert apply(state, "e3", "watch", "m3", T0 + 2, watch_seconds=600.0)
    assert apply(state, "e4", "watch", "m4", T0 + 3, watch_seconds=300.0)
    assert (state.n_click, state.n_skip, state.n_watch, state.n_events) == (1, 1, 2, 4)
    # only watches count towards completion
    assert state.completion_sum == pytest.approx(1.5)
    assert state.mean_completion == pytest.approx(0.75)
    assert state.skip_rate == pytest.approx(0.25)


def test_empty_state_rates_are_zero() -> None:
    state = UserState("u1")
    assert state.n_events == 0
    assert state.skip_rate == 0.0
    assert state.mean_completion == 0.0
    assert state.top_categories() == []
    assert state.positives(5) == []
    assert state.negatives(5) == []


def test_mean_completion_ignores_clicks_and_skips(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", "skip", "m1", watch_seconds=300.0)
    apply(state, "e2", "click", "m2", T0 + 1)
    apply(state, "e3", "watch", "m3", T0 + 2, watch_seconds=120.0)
    assert state.mean_completion == pytest.approx(0.2)


# --------------------------------------------------------------------------- duplicates
def test_duplicate_event_id_changes_nothing(apply: Apply) -> None:
    state = UserState("u1")
    assert apply(state, "e1", "watch", "m1", context=UserContext("en", "tv", "home"))
    before = copy.deepcopy(state)
    # same id, even with other content (a corrupted redelivery): ignored entirely
    assert not apply(state, "e1", "skip", "m9", T0 + HOUR_MS, context=UserContext("fr"))
    assert state == before


def test_duplicate_is_not_tracked_as_a_change(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1")
    state.mark_clean()
    assert not apply(state, "e1")
    assert state.new_interactions == []
    assert state.new_events == []


def test_dedupe_memory_is_bounded_oldest_forgotten_first(apply: Apply) -> None:
    state = UserState("u1")
    for k in range(5):
        apply(state, f"e{k}", "click", f"m{k}", T0 + k)
    assert list(state.seen_events) == ["e2", "e3", "e4"]
    assert not apply(state, "e4", "click", "m4", T0 + 4)
    # beyond the window an old id is no longer recognised (bounded state, by design)
    assert apply(state, "e0", "click", "m0", T0)


# --------------------------------------------------------------------------- affinity
def test_affinity_full_watch_adds_one(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", categories=("Drama",))
    assert state.affinity == {"Drama": pytest.approx(1.0)}


def test_affinity_decays_with_half_life(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", "watch", "m1", T0, categories=("Drama",))
    apply(state, "e2", "watch", "m2", T0 + HOUR_MS, categories=("Comedy",))
    assert state.affinity["Drama"] == pytest.approx(0.5)
    assert state.affinity["Comedy"] == pytest.approx(1.0)
    apply(state, "e3", "click", "m3", T0 + 3 * HOUR_MS, categories=("Comedy",))
    assert state.affinity["Drama"] == pytest.approx(0.125)
    assert state.affinity["Comedy"] == pytest.approx(0.25 + 0.3)
    assert state.last_ts == T0 + 3 * HOUR_MS


def test_affinity_weight_is_shared_between_categories(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", categories=("Drama", "Crime"))
    assert state.affinity == {"Drama": pytest.approx(0.5), "Crime": pytest.approx(0.5)}


def test_negative_events_push_affinity_down(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", "watch", "m1", T0, categories=("Horror",))
    apply(state, "e2", "skip", "m2", T0, watch_seconds=1.0, categories=("Horror",))
    apply(state, "e3", "skip", "m3", T0, watch_seconds=1.0, categories=("Horror",))
    assert state.affinity["Horror"] == pytest.approx(-1.0)


def test_event_without_categories_only_decays(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", "watch", "m1", T0, categories=("Drama",))
    apply(state, "e2", "watch", "m2", T0 + HOUR_MS, categories=())
    assert state.affinity == {"Drama": pytest.approx(0.5)}


def test_late_event_counts_with_its_own_age_and_does_not_rewind(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e2", "watch", "m2", T0 + 2 * HOUR_MS, categories=("Comedy",))
    apply(state, "e1", "watch", "m1", T0, categories=("Drama",))  # arrives late
    assert state.affinity["Comedy"] == pytest.approx(1.0)
    assert state.affinity["Drama"] == pytest.approx(0.25)
    assert state.last_ts == T0 + 2 * HOUR_MS
    assert state.first_ts == T0


def test_add_affinity_is_order_independent_for_two_events() -> None:
    a = (T0, ("Drama",), 1.0)
    b = (T0 + 90 * 60_000, ("Comedy", "Drama"), -0.5)
    forward, ts_f = add_affinity({}, 0, a[0], a[1], a[2], HOUR_S)
    forward, ts_f = add_affinity(forward, ts_f, b[0], b[1], b[2], HOUR_S)
    backward, ts_b = add_affinity({}, 0, b[0], b[1], b[2], HOUR_S)
    backward, ts_b = add_affinity(backward, ts_b, a[0], a[1], a[2], HOUR_S)
    assert ts_f == ts_b == b[0]
    assert forward.keys() == backward.keys()
    for name in forward:
        assert forward[name] == pytest.approx(backward[name])


def test_apply_event_affinity_is_order_independent(apply: Apply) -> None:
    events = [
        ("e1", "watch", "m1", T0, 600.0, ("Drama",)),
        ("e2", "skip", "m2", T0 + HOUR_MS, 2.0, ("Comedy",)),
        ("e3", "watch", "m3", T0 + 5 * HOUR_MS // 2, 420.0, ("Drama", "Comedy")),
    ]
    states = []
    for order in (events, events[::-1], [events[1], events[2], events[0]]):
        state = UserState("u1")
        for eid, kind, item, ts, watch, cats in order:
            apply(state, eid, kind, item, ts, watch_seconds=watch, categories=cats)
        states.append(state)
    first = states[0]
    for other in states[1:]:
        assert other.affinity.keys() == first.affinity.keys()
        for name, value in first.affinity.items():
            assert other.affinity[name] == pytest.approx(value)
        assert (other.first_ts, other.last_ts) == (first.first_ts, first.last_ts)


def test_add_affinity_docstring_example() -> None:
    assert add_affinity({"A": 1.0}, 0, 3_600_000, ["B"], 1.0, HOUR_S) == (
        {"A": 0.5, "B": 1.0},
        3_600_000,
    )


def test_affinity_is_bounded_keeping_strongest_magnitudes() -> None:
    affinity = {f"c{k}": 1.0 + k for k in range(AFFINITY_KEEP)}
    affinity["weak"] = 0.01
    affinity["hated"] = -50.0
    out, _ = add_affinity(affinity, T0, T0, ["new"], 10.0, HOUR_S)
    assert len(out) == AFFINITY_KEEP
    assert "weak" not in out
    assert out["hated"] == -50.0
    assert out["new"] == 10.0


# --------------------------------------------------------------------------- bounded lists
def test_history_is_capped_newest_last(apply: Apply) -> None:
    state = UserState("u1")
    for k in range(8):
        apply(state, f"e{k}", "click", f"m{k}", T0 + k)
    assert [h.item_id for h in state.history] == ["m3", "m4", "m5", "m6", "m7"]
    assert [h.ts for h in state.history] == [T0 + k for k in range(3, 8)]


def test_history_records_kind_weight_and_completion(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", "watch", "m1", watch_seconds=300.0)
    apply(state, "e2", "click", "m2", T0 + 1)
    watch, click = state.history
    assert (watch.kind, watch.weight, watch.completion) == ("watch", pytest.approx(0.35), 0.5)
    assert (click.kind, click.weight, click.completion) == ("click", pytest.approx(0.3), None)


def test_excluded_is_capped_oldest_dropped(apply: Apply) -> None:
    state = UserState("u1")
    for k in range(6):
        apply(state, f"e{k}", "click", f"m{k}", T0 + k)
    assert list(state.excluded) == ["m2", "m3", "m4", "m5"]
    assert state.excluded["m5"] == T0 + 5


def test_excluded_renews_an_item_seen_again(apply: Apply) -> None:
    state = UserState("u1")
    for k in range(4):
        apply(state, f"e{k}", "click", f"m{k}", T0 + k)
    apply(state, "again", "watch", "m0", T0 + 10)
    apply(state, "e5", "click", "m5", T0 + 11)
    # m0 was renewed by the second interaction, so m1 is the oldest and is dropped
    assert list(state.excluded) == ["m2", "m3", "m0", "m5"]
    assert state.excluded["m0"] == T0 + 10


# --------------------------------------------------------------------------- context
def test_context_merges_known_fields(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", context=UserContext("en-GB", "mobile", "home"))
    apply(state, "e2", item_id="m2", context=UserContext(None, "tv", None))
    assert state.context == UserContext("en-GB", "tv", "home")
    apply(state, "e3", item_id="m3", context=None)
    assert state.context == UserContext("en-GB", "tv", "home")
    apply(state, "e4", item_id="m4", context=UserContext("fr-FR", None, "search"))
    assert state.context == UserContext("fr-FR", "tv", "search")


# --------------------------------------------------------------------------- change tracking
def test_change_tracking_and_mark_clean(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", "watch", "m1", T0)
    apply(state, "e2", "click", "m2", T0 + 5)
    assert [h.item_id for h in state.new_interactions] == ["m1", "m2"]
    assert state.new_events == [("e1", 1), ("e2", 2)]  # scored by arrival
    state.mark_clean()
    assert state.new_interactions == []
    assert state.new_events == []
    # persisted state is kept, only the change log is forgotten
    assert len(state.history) == 2
    assert state.n_events == 2
    apply(state, "e3", "skip", "m3", T0 + 9, watch_seconds=1.0)
    assert [h.item_id for h in state.new_interactions] == ["m3"]
    assert state.new_events == [("e3", 3)]  # the third arrival


def test_first_and_last_ts(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", ts=T0 + 50)
    apply(state, "e2", item_id="m2", ts=T0 + 10)
    apply(state, "e3", item_id="m3", ts=T0 + 30)
    assert state.first_ts == T0 + 10
    assert state.last_ts == T0 + 50


def test_first_ts_of_an_event_at_epoch_zero_is_kept(apply: Apply) -> None:
    """0 is a valid event time, not "unset": a later event must not replace it."""
    state = UserState("u1")
    apply(state, "e1", ts=0)
    apply(state, "e2", item_id="m2", ts=5_000)
    assert (state.first_ts, state.last_ts) == (0, 5_000)
    other = UserState("u2")
    apply(other, "e1", ts=5_000)
    apply(other, "e2", item_id="m2", ts=0)  # late, at epoch zero
    assert other.first_ts == 0


def test_history_is_kept_in_event_time_order(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", item_id="m1", ts=T0, params=ROOMY)
    apply(state, "e2", item_id="m2", ts=T0 + 2 * HOUR_MS, params=ROOMY)
    assert not state.history_rewritten
    apply(state, "e3", item_id="late", ts=T0 + HOUR_MS, params=ROOMY)
    apply(state, "e4", item_id="tie", ts=T0 + HOUR_MS, params=ROOMY)  # tie: after, by arrival
    assert [h.item_id for h in state.history] == ["m1", "late", "tie", "m2"]
    assert state.history_rewritten
    assert [h.item_id for h in state.new_interactions] == ["m1", "m2", "late", "tie"]
    state.mark_clean()
    assert not state.history_rewritten


def test_a_years_old_late_watch_is_never_the_strongest_recent_positive(apply: Apply) -> None:
    state = UserState("u1")
    apply(state, "e1", item_id="m1", ts=T0)
    apply(state, "e2", item_id="m2", ts=T0 + 1)
    apply(state, "e3", item_id="old", ts=T0 - 40 * 365 * 86_400_000)
    assert [h.item_id for h in state.positives(10)] == ["old", "m1", "m2"]  # newest last
    assert [h.item_id for h in state.positives(2)] == ["m1", "m2"]


def test_a_full_history_keeps_the_newest_by_event_time(apply: Apply) -> None:
    state = UserState("u1")  # history_size 5
    for k in range(5):
        apply(state, f"e{k}", item_id=f"m{k}", ts=T0 + k)
    apply(state, "late", item_id="late", ts=T0 - 1)  # older than everything kept
    assert [h.item_id for h in state.history] == [f"m{k}" for k in range(5)]
    apply(state, "mid", item_id="mid", ts=T0 + 2)
    assert [h.item_id for h in state.history] == ["m1", "m2", "mid", "m3", "m4"]


# --------------------------------------------------------------------------- readers
def test_top_categories_best_first_positive_only() -> None:
    state = UserState("u1")
    state.affinity = {"A": 0.2, "B": 0.9, "C": -0.5, "D": 0.5, "E": 0.0}
    assert state.top_categories() == [("B", 0.9), ("D", 0.5), ("A", 0.2)]
    assert state.top_categories(2) == [("B", 0.9), ("D", 0.5)]


def test_positives_and_negatives_last_n_oldest_first(apply: Apply) -> None:
    state = UserState("u1")
    plan = [
        ("e1", "watch", 600.0),  # +1.0
        ("e2", "skip", 1.0),  # -1.0
        ("e3", "click", None),  # +0.3
        ("e4", "watch", 30.0),  # 1.3 * 0.05 - 0.3 < 0
        ("e5", "watch", 500.0),  # positive
        ("e6", "skip", 200.0),  # -0.5
    ]
    for k, (eid, kind, watch) in enumerate(plan):
        apply(state, eid, kind, f"m{k + 1}", T0 + k, watch_seconds=watch, params=ROOMY)
    assert [h.item_id for h in state.positives(10)] == ["m1", "m3", "m5"]
    assert [h.item_id for h in state.positives(2)] == ["m3", "m5"]
    assert [h.item_id for h in state.negatives(10)] == ["m2", "m4", "m6"]
    assert [h.item_id for h in state.negatives(1)] == ["m6"]


def test_a_late_event_at_a_full_dedupe_set_is_kept_and_the_oldest_arrival_goes(
    apply: Apply,
) -> None:
    # Scored by event time, the late id would be the lowest score: Redis's rank trim would
    # drop it at once and its redelivery would be applied twice.
    state = UserState("u")
    for n in range(3):  # dedupe_size 3: the set is full
        apply(state, f"e{n}", ts=T0 + n * HOUR_MS)
    assert apply(state, "late", ts=T0 - 365 * 24 * HOUR_MS)
    assert list(state.seen_events) == ["e1", "e2", "late"]
    assert not apply(state, "late", ts=T0 - 365 * 24 * HOUR_MS)  # its redelivery
    scores = [score for _, score in state.new_events]
    assert scores == sorted(scores) and len(set(scores)) == 4  # what ZREMRANGEBYRANK trims
    assert state.new_events[-1][0] == "late"
