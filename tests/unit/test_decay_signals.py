"""Half-life arithmetic (``features.decay``) and the behaviour -> signal table (``signals``)."""

from __future__ import annotations

import pytest

from pipeline.events.signals import (
    NOMINAL_SECONDS,
    click_signal,
    completion_ratio,
    signal_for,
    skip_signal,
    watch_signal,
)
from pipeline.features.decay import decay_factor, decayed, growth_exponent, rescale_needed

HOUR_S = 3_600.0
HOUR_MS = 3_600_000
THRESHOLD = 0.6


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


# --------------------------------------------------------------------------- watch grading
@pytest.mark.parametrize(
    ("completion", "weight"),
    [(0.0, -0.3), (0.1, -0.17), (0.5, 0.35), (0.6, 0.48), (0.9, 0.87), (1.0, 1.0)],
)
def test_watch_weight_is_graded_by_completion(completion: float, weight: float) -> None:
    signal = watch_signal(completion * 600.0, 600.0, threshold=THRESHOLD)
    assert signal.weight == pytest.approx(weight)
    assert signal.completion == pytest.approx(completion)


def test_watch_weight_grows_with_completion_within_bounds() -> None:
    weights = [watch_signal(s, 600.0, threshold=THRESHOLD).weight for s in range(0, 601, 30)]
    assert weights == sorted(weights)
    assert min(weights) == pytest.approx(-0.3)
    assert max(weights) == pytest.approx(1.0)


def test_watch_past_the_end_is_clamped_to_complete() -> None:
    signal = watch_signal(1_500.0, 600.0, threshold=THRESHOLD)
    assert signal.completion == 1.0
    assert signal.weight == 1.0
    assert signal.positive


def test_completion_ratio_is_clamped_to_unit_interval() -> None:
    assert completion_ratio(1_500.0, 600.0) == 1.0
    assert completion_ratio(-10.0, 600.0) == 0.0
    assert completion_ratio(150.0, 600.0) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("watch_seconds", "positive"),
    [(360.0, True), (359.0, False), (600.0, True), (0.0, False), (540.0, True)],
)
def test_watch_is_positive_iff_completion_reaches_threshold(
    watch_seconds: float, positive: bool
) -> None:
    assert watch_signal(watch_seconds, 600.0, threshold=THRESHOLD).positive is positive


def test_threshold_is_a_parameter() -> None:
    assert watch_signal(300.0, 600.0, threshold=0.5).positive
    assert not watch_signal(300.0, 600.0, threshold=0.9).positive


@pytest.mark.parametrize("duration", [None, 0.0, -5.0])
def test_unknown_duration_uses_nominal_length(duration: float | None) -> None:
    signal = watch_signal(0.9 * NOMINAL_SECONDS, duration, threshold=THRESHOLD)
    assert NOMINAL_SECONDS == 600.0
    assert signal.completion == pytest.approx(0.9)
    assert signal.positive
    assert watch_signal(NOMINAL_SECONDS, duration, threshold=THRESHOLD).weight == 1.0


# --------------------------------------------------------------------------- click, skip
def test_click_is_a_weak_positive_that_is_not_a_hit() -> None:
    signal = click_signal()
    assert signal.weight == pytest.approx(0.3)
    assert 0 < signal.weight < watch_signal(600.0, 600.0, threshold=THRESHOLD).weight
    assert signal.positive is False
    assert signal.completion is None


@pytest.mark.parametrize(
    ("watch_seconds", "duration", "case"),
    [
        (3.0, 600.0, "first seconds"),
        (9.9, 20.0, "under 10 s although half watched"),
        (50.0, 600.0, "over 10 s but under 10 %"),
        (None, 600.0, "nothing watched"),
        (0.0, None, "unknown duration, nothing watched"),
    ],
)
def test_early_skip_is_a_strong_negative(
    watch_seconds: float | None, duration: float | None, case: str
) -> None:
    signal = skip_signal(watch_seconds, duration)
    assert signal.weight == -1.0, case
    assert signal.positive is False


@pytest.mark.parametrize(
    ("watch_seconds", "duration"),
    [(120.0, 600.0), (10.0, 20.0), (60.0, 600.0), (120.0, None)],
)
def test_late_skip_is_a_milder_negative(watch_seconds: float, duration: float | None) -> None:
    signal = skip_signal(watch_seconds, duration)
    assert signal.weight == -0.5
    assert signal.positive is False
    assert signal.weight > skip_signal(1.0, duration).weight


def test_skip_reports_its_completion() -> None:
    assert skip_signal(300.0, 600.0).completion == pytest.approx(0.5)
    assert skip_signal(120.0, None).completion == pytest.approx(120.0 / NOMINAL_SECONDS)


def test_no_skip_is_ever_positive_even_when_fully_watched() -> None:
    signal = skip_signal(600.0, 600.0)
    assert signal.weight < 0
    assert not signal.positive


# --------------------------------------------------------------------------- dispatch
@pytest.mark.parametrize(
    ("event_type", "watch_seconds", "duration"),
    [
        ("watch", 450.0, 600.0),
        ("watch", 30.0, None),
        ("skip", 4.0, 600.0),
        ("skip", 200.0, 600.0),
        ("click", None, 600.0),
    ],
)
def test_signal_for_dispatches_on_type(
    event_type: str, watch_seconds: float | None, duration: float | None
) -> None:
    expected = {
        "watch": lambda: watch_signal(watch_seconds or 0.0, duration, threshold=THRESHOLD),
        "skip": lambda: skip_signal(watch_seconds, duration),
        "click": click_signal,
    }[event_type]()
    assert signal_for(event_type, watch_seconds, duration, threshold=THRESHOLD) == expected


def test_watch_without_watch_seconds_is_the_weakest_watch() -> None:
    signal = signal_for("watch", None, 600.0, threshold=THRESHOLD)
    assert signal.weight == pytest.approx(-0.3)
    assert signal.completion == 0.0
    assert not signal.positive


def test_click_ignores_watch_time() -> None:
    assert signal_for("click", 600.0, 600.0, threshold=THRESHOLD) == click_signal()
