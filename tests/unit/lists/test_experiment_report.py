"""The experiment report from the worker's incremental sums: user-level, honest intervals."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipeline.features.state import ArmState
from pipeline.lists.experiment_outcomes import event_outcome
from pipeline.lists.experiment_report import ArmTotals, format_report, metric_sums, report
from pipeline.lists.experiment_stats import Sums, action_level_compare, compare, ratio_se
from pipeline.lists.experiments import parse_experiments

EXPERIMENTS = parse_experiments({"experiments": [{
    "name": "perso", "attribution_seconds": 3600, "variants": [
        {"name": "control", "share": 0.5}, {"name": "treatment", "share": 0.5}]}]})  # fmt: skip
DAY = 86_400


def _arm_totals(
    rng: np.random.Generator, users: int, mean_ctr: float, *, idle: int = 0
) -> tuple[ArmTotals, np.ndarray, np.ndarray]:
    """Simulated users, each with their own click-through and activity, fed event by event.

    ``idle`` more users are exposed but never act (they count, with zeros).
    """
    totals: Counter[str] = Counter()
    hits_u, actions_u = [], []
    for u in range(users):
        p = rng.beta(1.5, 1.5 * (1 - mean_ctr) / mean_ctr)
        n = int(rng.poisson(12)) + 1
        arm = ArmState("perso", "x", first_ms=0, shown=frozenset({"in"}), shown_ms=0)
        stamps = [k * 1000 for k in range(n)] + ([DAY * 1000] if u % 2 else [])  # odd: return
        for ts in stamps:
            item = "in" if rng.random() < p else "out"
            totals.update(event_outcome(arm, attribution_ms=3_600_000, windows=(DAY,),
                                        event_type="click", item_id=item, ts=ts,
                                        completed=False))  # fmt: skip
        hits_u.append(arm.values.get("hits", 0))
        actions_u.append(arm.values.get("actions", 0))
    hits = np.array(hits_u + [0] * idle)
    actions = np.array(actions_u + [0] * idle)
    return ArmTotals(dict(totals), users + idle, {DAY: users + idle}), hits, actions


def _bootstrap_se(hits: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> float:
    n = hits.shape[0]
    draws = rng.integers(0, n, (2_000, n))
    return float(np.std(hits[draws].sum(axis=1) / actions[draws].sum(axis=1), ddof=1))


@pytest.mark.parametrize("seed", [1, 2])
def test_the_reports_error_matches_a_user_level_bootstrap_within_10_percent(seed: int) -> None:
    rng = np.random.default_rng(seed)
    totals, hits, actions = _arm_totals(rng, 500, 0.3, idle=50)
    metric = metric_sums(totals, (DAY,))["click_through"]
    assert metric.n == 550 and metric.sx == hits.sum() and metric.sy == actions.sum()
    assert ratio_se(metric) == pytest.approx(_bootstrap_se(hits, actions, rng), rel=0.10)


def test_the_report_is_user_level_and_the_action_level_formula_would_be_too_narrow() -> None:
    rng = np.random.default_rng(7)
    control, hc, ac = _arm_totals(rng, 400, 0.3)
    treatment, ht, at = _arm_totals(rng, 400, 0.3)
    rows = report(EXPERIMENTS, {("perso", "control"): control, ("perso", "treatment"): treatment},
                  windows=(DAY,))  # fmt: skip
    got = rows[0]["variants"][1]["comparisons"]["click_through"]
    expected = compare(Sums.of(zip(ht.tolist(), at.tolist(), strict=True)),
                       Sums.of(zip(hc.tolist(), ac.tolist(), strict=True)))  # fmt: skip
    assert got["diff_low"] == pytest.approx(expected.diff_low)
    assert got["lift_high"] == pytest.approx(expected.lift_high)
    assert rows[0]["variants"][1]["vs_control"] == got  # the first format's field, user-level now
    naive = action_level_compare(int(ht.sum()), int(at.sum()), int(hc.sum()), int(ac.sum()))
    assert naive.diff_high - naive.diff_low < 0.67 * (got["diff_high"] - got["diff_low"])  # type: ignore[operator]


def test_events_per_user_and_return_rates_count_every_eligible_user() -> None:
    # 4 users: events 3, 1, 0, 0 (two never came back); two returned a day later
    counters = {"events": 4, "sq:events": 10, f"returned:{DAY}": 2}
    sums = metric_sums(ArmTotals(counters, 4, {DAY: 3}), (DAY,))
    assert sums["events_per_user"].ratio == 1.0
    assert ratio_se(sums["events_per_user"]) == pytest.approx(np.std([3, 1, 0, 0], ddof=1) / 2)
    assert sums["return_1d"].n == 3 and sums["return_1d"].ratio == pytest.approx(2 / 3)


def test_a_sample_ratio_mismatch_is_flagged_in_the_report_and_its_text() -> None:
    arms = {("perso", "control"): ArmTotals({"actions": 10}, 5_000, {}),
            ("perso", "treatment"): ArmTotals({"actions": 10}, 5_400, {})}  # fmt: skip
    rows = report(EXPERIMENTS, arms, windows=())
    assert rows[0]["srm"]["mismatch"] and rows[0]["srm"]["p_value"] < 0.001
    assert rows[0]["users"] == {"control": 5_000, "treatment": 5_400}
    assert "SAMPLE RATIO MISMATCH" in format_report(rows)
    fine = {k: ArmTotals({}, 5_000 + 20 * i, {}) for i, k in enumerate(arms)}
    assert not report(EXPERIMENTS, fine, windows=())[0]["srm"]["mismatch"]


def test_an_empty_experiment_reports_nothing_undefined_as_numbers() -> None:
    rows = report(EXPERIMENTS, {}, windows=(DAY,))
    treatment = rows[0]["variants"][1]
    assert treatment["users"] == 0 and treatment["click_through"] is None
    assert treatment["comparisons"]["return_1d"]["p_value"] is None
    text = format_report(rows)
    assert "return_1d" in text and "nan" not in text
