"""Half-life arithmetic (``pipeline.features.decay``)."""

from __future__ import annotations

import pytest

from pipeline.features.decay import decay_factor, decayed, growth_exponent, rescale_needed

HOUR_S = 3_600.0
HOUR_MS = 3_600_000


# --------------------------------------------------------------------------- decay
@pytest.mark.parametrize(
    ("elapsed_ms", "expected"),
    [(0, 1.0), (HOUR_MS, 0.5), (2 * HOUR_MS, 0.25), (HOUR_MS // 2, 2**-0.5)],
)
def test_decay_factor_halves_every_half_life(elapsed_ms: int, expected: float) -> None:
    assert decay_factor(elapsed_ms, HOUR_S) == pytest.approx(expected)


def test_decay_factor_clamps_clock_skew_to_one() -> None:
    assert decay_factor(-5 * HOUR_MS, HOUR_S) == 1.0


def test_decay_factor_decreases_with_age_and_grows_with_half_life() -> None:
    ages = [0, 1_000, 60_000, HOUR_MS, 10 * HOUR_MS]
    factors = [decay_factor(a, HOUR_S) for a in ages]
    assert factors == sorted(factors, reverse=True)
    assert len(set(factors)) == len(factors)
    assert decay_factor(HOUR_MS, 2 * HOUR_S) > decay_factor(HOUR_MS, HOUR_S)


def test_decayed_value_as_seen_later() -> None:
    assert decayed(8.0, 0, 2 * HOUR_MS, HOUR_S) == pytest.approx(2.0)
    assert decayed(8.0, 1_000, 1_000 + HOUR_MS, HOUR_S) == pytest.approx(4.0)
    # a reader whose clock is behind the value sees the value unchanged, never inflated
    assert decayed(8.0, 5_000, 1_000, HOUR_S) == 8.0


def test_growth_exponent_counts_half_lives_since_landmark() -> None:
    landmark = 1_700_000_000_000
    assert growth_exponent(landmark, landmark, HOUR_S) == 0.0
    assert growth_exponent(landmark + 3 * HOUR_MS, landmark, HOUR_S) == pytest.approx(3.0)
    assert growth_exponent(landmark - HOUR_MS, landmark, HOUR_S) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "landmark",
    [1_700_000_000_000 - 100 * HOUR_MS, 1_700_000_000_000, 1_700_000_000_000 + 7 * HOUR_MS],
)
def test_forward_decay_ratios_equal_decayed_ratios_whatever_the_landmark(landmark: int) -> None:
    t_old, t_new = 1_700_000_000_000, 1_700_000_000_000 + 90 * 60_000
    old = 2.0 ** growth_exponent(t_old, landmark, HOUR_S)
    new = 2.0 ** growth_exponent(t_new, landmark, HOUR_S)
    assert old / new == pytest.approx(decay_factor(t_new - t_old, HOUR_S))


def test_rescale_needed_only_past_the_limit() -> None:
    assert not rescale_needed(0.0)
    assert not rescale_needed(400.0)
    assert rescale_needed(400.5)
    assert rescale_needed(11.0, limit=10.0)
    assert not rescale_needed(9.0, limit=10.0)
    # the default limit keeps forward-decayed weights well inside float range
    assert 2.0**400 < 1e308
