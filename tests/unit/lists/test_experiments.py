"""Experiments: declaration, assignment, attribution, report statistics."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from pipeline.lists.experiment_report import compare, report
from pipeline.lists.experiments import assign, attribute, outcome, parse_experiments, variant_params
from pipeline.lists.recommend import ListParams
from schemas.control import Control


def control(**fields: object) -> Control:
    base = {"control_id": "c", "user_id": "u", "ts": 1}
    return Control.model_validate({**base, **fields})


EXPERIMENTS = parse_experiments(
    {
        "experiments": [
            {
                "name": "perso",
                "traffic": 0.8,
                "variants": [
                    {"name": "control", "share": 0.5, "changes": {"personalized": False}},
                    {"name": "treatment", "share": 0.5, "changes": {"category_cap": 3}},
                ],
            }
        ]
    }
)


def test_assignment_is_deterministic_and_follows_the_shares() -> None:
    users = [f"user-{n}" for n in range(20_000)]
    arms = [assign(EXPERIMENTS, u) for u in users]
    assert arms == [assign(EXPERIMENTS, u) for u in users]
    counts = Counter(a[1].name if a else None for a in arms)
    assert counts[None] / len(users) == pytest.approx(0.2, abs=0.015)
    assert counts["control"] / len(users) == pytest.approx(0.4, abs=0.015)
    assert counts["treatment"] / len(users) == pytest.approx(0.4, abs=0.015)


def test_variant_changes_become_params() -> None:
    control_arm, treatment = EXPERIMENTS[0].variants
    params, personalized = variant_params(ListParams(), control_arm)
    assert personalized is False and params == ListParams()
    params, personalized = variant_params(ListParams(), treatment)
    assert personalized is True and params.category_cap == 3


@pytest.mark.parametrize(
    "doc",
    [
        {"experiments": [{"name": "x", "variants": [{"name": "a", "share": 1.0}]}]},
        {"experiments": [{"name": "x", "variants": [{"name": "a", "share": 0.5},
                                                     {"name": "b", "share": 0.4}]}]},
        {"experiments": [{"name": "x", "variants": [{"name": "a", "share": 0.5},
                                                     {"name": "b", "share": 0.5,
                                                      "changes": {"bogus": 1}}]}]},
    ],
)  # fmt: skip
def test_bad_declarations_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="experiment"):
        parse_experiments(doc)


def test_actions_are_credited_to_the_list_shown_within_the_window() -> None:
    window_ms = int(EXPERIMENTS[0].attribution_seconds * 1000)
    seen = (frozenset({"i1", "i2"}), 1_000, "perso", "treatment")
    outcomes: dict[tuple[str, str], dict[str, int]] = {}
    for item, completed, at in (("i1", True, 2_000), ("i9", False, 3_000)):
        attribute(EXPERIMENTS, seen, event_type="watch", item_id=item, completed=completed,
                  now_ms=at, outcomes=outcomes)  # fmt: skip
    assert outcomes == {
        ("perso", "treatment"): {"actions": 2, "hits": 1, "watches": 1, "completions": 1}
    }
    # too late for the window, or no experiment list seen: nothing is credited
    attribute(EXPERIMENTS, seen, event_type="click", item_id="i1", completed=False,
              now_ms=1_000 + window_ms + 1, outcomes=outcomes)  # fmt: skip
    attribute(EXPERIMENTS, None, event_type="click", item_id="i1", completed=False,
              now_ms=2_000, outcomes=outcomes)  # fmt: skip
    assert outcomes[("perso", "treatment")]["actions"] == 2


def test_outcomes_and_lift_statistics() -> None:
    assert outcome("skip", True, False) == {"actions": 1, "hits": 1, "skips": 1}
    assert outcome("click", False, False) == {"actions": 1}
    stats = compare(300, 1000, 200, 1000)
    assert stats["lift"] == pytest.approx(0.5)
    assert stats["lift_low"] < 0.5 < stats["lift_high"]
    assert stats["diff_low"] > 0 and stats["p_value"] < 1e-5
    same = compare(200, 1000, 200, 1000)
    assert same["p_value"] == pytest.approx(1.0) and same["diff_low"] < 0 < same["diff_high"]
    rows = report(
        EXPERIMENTS,
        {("perso", "control"): {"actions": 100, "hits": 10},
         ("perso", "treatment"): {"actions": 100, "hits": 30, "watches": 20, "completions": 15}},
        {("perso", "control"): 40, ("perso", "treatment"): 41},
    )  # fmt: skip
    control_row, treatment_row = rows[0]["variants"]
    assert "vs_control" not in control_row and control_row["users"] == 40
    assert treatment_row["click_through"] == 0.3 and treatment_row["completion_rate"] == 0.75
    assert math.isclose(treatment_row["vs_control"]["lift"], 2.0)
