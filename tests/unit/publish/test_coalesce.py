"""Refresh coalescing rules (``pipeline.publish.coalesce``)."""

from __future__ import annotations

from pipeline.lists.build import Trigger
from pipeline.publish.coalesce import RefreshScheduler


# --------------------------------------------------------------------------- scheduler
def trig(event_id: str, ts: int = 0) -> Trigger:
    return Trigger(event_id, ts)


def test_scheduler_docstring_example() -> None:
    s = RefreshScheduler(interval_ms=500)
    assert s.on_event("u", trig("e1"), now_ms=1_000)
    s.mark_refreshed("u", 1_000)
    assert not s.on_event("u", trig("e2"), now_ms=1_200)
    assert s.due(1_500) == [("u", trig("e2"))]


def test_first_event_refreshes_now() -> None:
    s = RefreshScheduler(interval_ms=500)
    assert s.on_event("u", trig("e1"), now_ms=10_000)
    assert s.due(10_000) == []
    assert s.due(99_999) == []


def test_burst_is_coalesced_into_one_refresh_with_the_latest_trigger() -> None:
    s = RefreshScheduler(interval_ms=500)
    assert s.on_event("u", trig("e1", 1), now_ms=1_000)
    s.mark_refreshed("u", 1_000)
    assert not s.on_event("u", trig("e2", 2), now_ms=1_100)
    assert not s.on_event("u", trig("e3", 3), now_ms=1_200)
    assert not s.on_event("u", trig("e4", 4), now_ms=1_300)
    assert s.due(1_499) == []  # not before the interval has passed
    assert s.due(1_500) == [("u", trig("e4", 4))]
    assert s.due(1_600) == []  # delivered once


def test_deferred_refreshes_per_user() -> None:
    s = RefreshScheduler(interval_ms=500)
    for user, at in (("a", 1_000), ("b", 1_200)):
        s.on_event(user, trig(f"{user}0"), now_ms=at)
        s.mark_refreshed(user, at)
        s.on_event(user, trig(f"{user}1"), now_ms=at + 100)
    assert s.due(1_550) == [("a", trig("a1"))]
    assert s.due(1_750) == [("b", trig("b1"))]


def test_handover_takes_every_pending_refresh_due_or_not() -> None:
    s = RefreshScheduler(interval_ms=500)
    for user in ("a", "b"):
        s.on_event(user, trig(f"{user}0"), now_ms=1_000)
        s.mark_refreshed(user, 1_000)
        s.on_event(user, trig(f"{user}1"), now_ms=1_100)
    assert s.due(1_200) == []  # not due yet...
    assert sorted(s.take_pending()) == [("a", trig("a1")), ("b", trig("b1"))]  # ...but taken
    assert s.take_pending() == [] and s.due(5_000) == []


def test_event_after_the_interval_refreshes_now_and_drops_pending() -> None:
    s = RefreshScheduler(interval_ms=500)
    s.on_event("u", trig("e1"), now_ms=1_000)
    s.mark_refreshed("u", 1_000)
    assert not s.on_event("u", trig("e2"), now_ms=1_100)
    assert s.on_event("u", trig("e3"), now_ms=1_500)
    s.mark_refreshed("u", 1_500)
    assert s.due(5_000) == []  # e3's refresh already reflected e2


def test_zero_interval_never_defers() -> None:
    s = RefreshScheduler(interval_ms=0)
    for k in range(3):
        assert s.on_event("u", trig(f"e{k}"), now_ms=1_000)
        s.mark_refreshed("u", 1_000)
    assert s.due(1_000) == []


def _active_scheduler() -> RefreshScheduler:
    """a, b, c, d active at 1 000, 2 000, 3 000, 4 000 (d most recent); lists from t=1 000."""
    s = RefreshScheduler(interval_ms=100)
    for k, user in enumerate("abcd"):
        s.on_event(user, trig(f"{user}0"), now_ms=1_000 * (k + 1))
        s.mark_refreshed(user, 1_000)
    return s


def test_stale_selects_active_users_with_old_lists_most_recent_first() -> None:
    s = _active_scheduler()
    s.mark_refreshed("c", 9_000)  # fresh list
    out = s.stale(10_000, stale_ms=5_000, active_ms=60_000, limit=10)
    assert out == ["d", "b", "a"]


def test_stale_respects_activity_window() -> None:
    s = _active_scheduler()
    out = s.stale(10_000, stale_ms=5_000, active_ms=7_500, limit=10)
    assert out == ["d", "c"]  # a and b were last active more than 7.5 s ago


def test_stale_respects_limit() -> None:
    s = _active_scheduler()
    assert s.stale(10_000, stale_ms=5_000, active_ms=60_000, limit=2) == ["d", "c"]
    assert s.stale(10_000, stale_ms=5_000, active_ms=60_000, limit=1) == ["d"]


def test_stale_limit_zero_selects_nobody() -> None:
    s = _active_scheduler()
    assert s.stale(10_000, stale_ms=5_000, active_ms=60_000, limit=0) == []


def test_stale_ignores_fresh_lists_and_pending_users() -> None:
    s = _active_scheduler()
    # lists are from t=1 000: stale exactly once they are stale_ms old
    assert s.stale(5_999, stale_ms=5_000, active_ms=60_000, limit=10) == []
    assert s.stale(6_000, stale_ms=5_000, active_ms=60_000, limit=10) == ["d", "c", "b", "a"]
    s.mark_refreshed("d", 4_000)
    assert not s.on_event("d", trig("d1"), now_ms=4_050)  # d now has a deferred refresh
    assert s.stale(9_500, stale_ms=5_000, active_ms=60_000, limit=10) == ["c", "b", "a"]


def test_max_users_bounds_tracking_least_recently_active_dropped() -> None:
    s = RefreshScheduler(interval_ms=500, max_users=2)
    for user in "abc":
        s.on_event(user, trig(f"{user}0"), now_ms=1_000)
        s.mark_refreshed(user, 1_000)
        s.on_event(user, trig(f"{user}1"), now_ms=1_100)
    s.on_event("d", trig("d0"), now_ms=1_200)
    assert len(s.last_active) <= 2
    assert len(s.last_refresh) <= 2
    assert len(s.pending) <= 2
    due = dict(s.due(2_000))
    assert "a" not in due and "b" not in due  # dropped with their pending refreshes
    assert due == {"c": trig("c1")}
    # a dropped user is new again: its next event refreshes at once
    assert s.on_event("a", trig("a2"), now_ms=1_300)


def test_forget_stops_tracking_a_user() -> None:
    s = RefreshScheduler(interval_ms=500)
    s.on_event("u", trig("e1"), now_ms=1_000)
    s.mark_refreshed("u", 1_000)
    s.on_event("u", trig("e2"), now_ms=1_100)
    s.forget("u")
    s.forget("never-seen")  # harmless
    assert s.due(5_000) == []
    assert s.stale(5_000, stale_ms=1, active_ms=60_000, limit=10) == []
    assert s.on_event("u", trig("e3"), now_ms=1_200)


def test_clear_drops_everything() -> None:
    s = _active_scheduler()
    s.on_event("a", trig("a1"), now_ms=4_010)
    s.clear()
    assert s.due(99_000) == []
    assert s.stale(10_000, stale_ms=1, active_ms=60_000, limit=10) == []
    assert s.on_event("a", trig("a2"), now_ms=4_020)


def test_a_backlog_stretches_the_interval_and_deferred_refreshes_keep_the_last_event() -> None:
    s = RefreshScheduler(interval_ms=500)
    s.set_backlog(10.0, max_interval_ms=60_000)  # 10 s of work behind
    assert s.on_event("u", Trigger("e1", 0), now_ms=0)
    s.mark_refreshed("u", 0)
    for k in range(2, 6):  # four more events within the stretched interval: coalesced
        assert not s.on_event("u", Trigger(f"e{k}", 0), now_ms=k * 1_000)
    assert s.due(9_000) == []
    assert s.due(10_000) == [("u", Trigger("e5", 0))]
    s.set_backlog(0.0, max_interval_ms=60_000)  # caught up: back to the base interval
    assert s.interval_ms == 500


def test_due_is_bounded_and_serves_the_longest_waiting_first() -> None:
    s = RefreshScheduler(interval_ms=100)
    for n in range(5):
        s.mark_refreshed(f"u{n}", 0)
        s.on_event(f"u{n}", Trigger(f"e{n}", 0), now_ms=10 + n)
    first = s.due(1_000, limit=2)
    assert [u for u, _ in first] == ["u0", "u1"]
    assert [u for u, _ in s.due(1_000)] == ["u2", "u3", "u4"]
