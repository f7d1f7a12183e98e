"""User-level experiment statistics: the delta method against a user-level bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.lists.experiment_stats import (
    Sums,
    action_level_compare,
    chi2_sf,
    compare,
    ratio_se,
    sample_ratio_mismatch,
)


def _correlated_users(rng: np.random.Generator, n: int, mean_p: float) -> tuple[np.ndarray, ...]:
    """Users with their own click-through (beta) and activity (Poisson): correlated actions."""
    p = rng.beta(1.5, 1.5 * (1 - mean_p) / mean_p, n)
    actions = rng.poisson(12, n) + 1
    hits = rng.binomial(actions, p)
    return hits, actions


def _bootstrap_se(hits: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> float:
    n = hits.shape[0]
    ratios = []
    for _ in range(2_000):
        idx = rng.integers(0, n, n)
        ratios.append(hits[idx].sum() / actions[idx].sum())
    return float(np.std(ratios, ddof=1))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delta_method_matches_a_user_level_bootstrap_within_10_percent(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hits, actions = _correlated_users(rng, 600, 0.3)
    delta = ratio_se(Sums.of(zip(hits.tolist(), actions.tolist(), strict=True)))
    boot = _bootstrap_se(hits, actions, rng)
    assert delta == pytest.approx(boot, rel=0.10)


def test_the_action_level_formula_is_too_narrow_on_correlated_data() -> None:
    rng = np.random.default_rng(7)
    hits_t, actions_t = _correlated_users(rng, 600, 0.3)
    hits_c, actions_c = _correlated_users(rng, 600, 0.3)
    user_level = compare(
        Sums.of(zip(hits_t.tolist(), actions_t.tolist(), strict=True)),
        Sums.of(zip(hits_c.tolist(), actions_c.tolist(), strict=True)),
    )
    naive = action_level_compare(
        int(hits_t.sum()), int(actions_t.sum()), int(hits_c.sum()), int(actions_c.sum())
    )
    assert user_level.diff_low is not None and naive.diff_low is not None
    width_user = user_level.diff_high - user_level.diff_low  # type: ignore[operator]
    width_naive = naive.diff_high - naive.diff_low  # type: ignore[operator]
    # per-user heterogeneity: the naive interval is less than 2/3 of the honest one
    assert width_naive < 0.67 * width_user


def test_aa_coverage_user_level_near_95_percent_naive_far_below() -> None:
    """Simulated A/A experiments: how often the 95 % interval covers the true zero."""
    rng = np.random.default_rng(11)
    covered_user = covered_naive = 0
    runs = 300
    for _ in range(runs):
        ht, at = _correlated_users(rng, 200, 0.3)
        hc, ac = _correlated_users(rng, 200, 0.3)
        u = compare(
            Sums.of(zip(ht.tolist(), at.tolist(), strict=True)),
            Sums.of(zip(hc.tolist(), ac.tolist(), strict=True)),
        )
        v = action_level_compare(int(ht.sum()), int(at.sum()), int(hc.sum()), int(ac.sum()))
        covered_user += u.diff_low <= 0 <= u.diff_high  # type: ignore[operator]
        covered_naive += v.diff_low <= 0 <= v.diff_high  # type: ignore[operator]
    assert 0.92 <= covered_user / runs <= 0.98
    assert covered_naive / runs < 0.85


def test_mean_per_user_and_retention_are_ratios_with_one_per_user() -> None:
    events = [3, 0, 5, 2]
    s = Sums.of((e, 1) for e in events)
    assert s.ratio == pytest.approx(2.5)
    assert ratio_se(s) == pytest.approx(np.std(events, ddof=1) / math.sqrt(4))


def test_undefined_cases_give_none_not_errors() -> None:
    empty = compare(Sums(), Sums())
    assert empty.diff is None and empty.p_value is None
    one = compare(Sums.of([(1, 2)]), Sums.of([(1, 2), (0, 3)]))
    assert one.diff is None and one.treatment == 0.5


def test_sample_ratio_mismatch_flags_a_skewed_split() -> None:
    stat, p = sample_ratio_mismatch({"a": 5_000, "b": 5_300}, {"a": 0.5, "b": 0.5})
    assert stat == pytest.approx(150**2 / 5_150 * 2)  # each arm 150 off its expected 5,150
    assert p < 0.01
    assert sample_ratio_mismatch({"a": 5_020, "b": 4_980}, {"a": 0.5, "b": 0.5})[1] > 0.5


@pytest.mark.parametrize(
    ("x", "df", "expected"),
    [
        (3.841458820694124, 1, 0.05),
        (5.991464547107979, 2, 0.05),
        (11.344866730144373, 3, 0.01),
        (30.0, 10, 0.000857),
    ],  # fmt: skip
)
def test_chi_square_survival_matches_tables(x: float, df: int, expected: float) -> None:
    assert chi2_sf(x, df) == pytest.approx(expected, rel=1e-3)
