"""The behaviour -> learning signal table (``pipeline.events.signals``)."""

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

THRESHOLD = 0.6


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
