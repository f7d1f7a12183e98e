"""The new-item tally: per-user ground truth by arm, and the user-level sums it makes."""

from __future__ import annotations

import threading

import pytest

from pipeline.cli.simulate_cmd import run_simulation, tally_doc
from pipeline.lists.experiment_stats import compare
from pipeline.tooling.churn import Churn
from pipeline.tooling.new_item_tally import Tally, arm_sums, is_new_in
from pipeline.tooling.simulator import World

A, B = ("exp", "control"), ("exp", "treatment")


def _tally() -> Tally:
    return Tally(lambda item_id, ts: item_id.startswith("n"), window_ms=1, max_users=3)


def test_counts_start_at_the_first_exposure_and_split_new_items() -> None:
    tally = _tally()
    tally.event({"type": "click", "user_id": "u1", "item_id": "n1", "ts": 0})  # not exposed yet
    tally.shown("u1", A, ["i1", "n1", "n2", "i2"], 0)
    tally.shown("u1", A, ["i1"], 1)
    for kind, item, watched in (("click", "n1", None), ("watch", "n1", 90.0),
                                ("skip", "i1", 2.0), ("click", "n2", None),
                                ("watch", "n2", 10.0)):  # fmt: skip
        event = {"type": kind, "user_id": "u1", "item_id": item, "ts": 2,
                 "duration_seconds": 100.0}  # fmt: skip
        if watched is not None:
            event["watch_seconds"] = watched
        tally.event(event)
    ((arm, counts),) = tally.users.values()
    assert arm == A
    assert counts["impressions"] == 5 and counts["new_impressions"] == 2
    assert counts["events"] == 5 and counts["new_events"] == 4
    assert counts["choices"] == 3 and counts["new_choices"] == 2 and counts["new_skips"] == 0
    assert counts["skips"] == 1
    assert counts["watches"] == counts["new_watches"] == 2
    assert counts["completions"] == counts["new_completions"] == 1


def test_users_outside_an_experiment_and_past_the_bound_are_not_tallied() -> None:
    tally = _tally()
    tally.shown("u0", None, ["n1"], 0)
    for n in range(5):
        tally.shown(f"u{n + 1}", A, ["n1"], 0)
    assert len(tally.users) == 3 and tally.overflow == 2


def test_arm_sums_are_per_user_and_compare_user_level() -> None:
    tally = _tally()
    for n in range(40):
        tally.shown(f"a{n}", A, ["i1", "i2", "i3", "n1"], 0)
        tally.shown(f"b{n}", B, ["i1", "n2", "n3", "n1"], 0)
    tally = Tally(tally._is_new, window_ms=1)  # noqa: SLF001 - unbounded this time
    for n in range(40):
        tally.shown(f"a{n}", A, ["i1", "i2", "i3", "n1"] if n % 2 else ["i1"] * 4, 0)
        tally.shown(f"b{n}", B, ["i1", "n2", "n3", "n1"] if n % 2 else ["n1"] * 4, 0)
    sums = arm_sums(tally)
    assert sums[A]["new_impression_share"].ratio == pytest.approx(0.125)
    assert sums[B]["new_impression_share"].ratio == pytest.approx(0.875)
    assert sums[A]["events_per_user"].n == 40
    c = compare(sums[B]["new_impression_share"], sums[A]["new_impression_share"])
    assert c.lift is not None and c.lift == pytest.approx(6.0) and c.p_value is not None
    assert c.p_value < 1e-6


def test_is_new_in_a_window_before_the_time() -> None:
    is_new = is_new_in({"x": 10_000}.get, 5_000)
    assert [is_new("x", t) for t in (9_999, 10_000, 14_999, 15_000)] == [
        False, True, True, False,
    ]  # fmt: skip


class _Sink:
    def __init__(self) -> None:
        self.events: list[object] = []

    def send_event(self, event: object) -> str:
        self.events.append(event)
        return ""

    def flush(self) -> None:
        pass


def test_the_loop_publishes_catalogue_changes_and_tallies_what_it_sends() -> None:
    world = World(seed=3, n_users=30, n_items=40,
                  churn=Churn(releases_per_minute=120.0, live_channels=4))  # fmt: skip
    now = [0.0]
    changes: list[object] = []
    tally = Tally(is_new_in(world.available_since, 60_000), window_ms=60_000)
    lists = {f"u{n}": ["i1", "i2"] for n in range(30)}

    def recommended(user: str) -> list[str]:
        items = lists.get(user, [])
        tally.shown(user, A if int(user[1:]) % 2 else B, items, 1_800_000_000_000)
        return items

    def sleep(seconds: float) -> None:
        now[0] += seconds

    sent = run_simulation(
        world, _Sink(), rate=100.0, duration=30.0, stop=threading.Event(),
        clock=lambda: now[0], wall_ms=lambda: 1_800_000_000_000 + int(now[0] * 1000),
        sleep=sleep, recommended=recommended, catalog=changes.append, on_event=tally.event,
    )  # fmt: skip
    assert sent == 3_000
    assert len(changes) > 30  # about 60 releases and some channels on air
    doc = tally_doc(tally)
    assert {(a["experiment"], a["variant"]) for a in doc["arms"]} == {A, B}
    assert sum(a["sums"]["events_per_user"]["sx"] for a in doc["arms"]) > 1_000
