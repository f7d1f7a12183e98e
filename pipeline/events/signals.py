"""From behaviour to learning signals: what a click, a skip or a watch says about taste.

The mapping (a documented contract, see README "Learning signals"):

========================  ==========================================  ==================
event                     weight                                      counts as positive
========================  ==========================================  ==================
watch, completion ``c``   ``clamp(1.3 * c - 0.3, -0.3, 1.0)``         ``c >= threshold``
click                     ``+0.3`` (weak: curiosity, not yet taste)   no
skip, early               ``-1.0`` (``c < 0.1`` or < 10 s watched)    no
skip, later               ``-0.5``                                     no
========================  ==========================================  ==================

``c`` is ``watch_seconds / duration_seconds``, the duration taken from the event, else from
the item catalogue; a watch of an item of unknown duration counts as complete after
``nominal_seconds`` (10 minutes). A positive weight pulls an item's categories and neighbours
up; a negative one pushes them down.

>>> watch_signal(540.0, 600.0, threshold=0.6).positive
True
>>> skip_signal(3.0, 600.0).weight
-1.0
"""

from __future__ import annotations

from dataclasses import dataclass

CLICK_WEIGHT = 0.3
EARLY_SKIP_WEIGHT = -1.0
LATE_SKIP_WEIGHT = -0.5
EARLY_SKIP_COMPLETION = 0.1
EARLY_SKIP_SECONDS = 10.0
NOMINAL_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Signal:
    """What one event teaches: a signed weight, and whether it is a positive (a hit)."""

    weight: float
    positive: bool
    completion: float | None


def completion_ratio(watch_seconds: float, duration_seconds: float | None) -> float:
    """Share of the item watched, in [0, 1]."""
    duration = duration_seconds if duration_seconds and duration_seconds > 0 else NOMINAL_SECONDS
    return min(max(watch_seconds / duration, 0.0), 1.0)


def watch_signal(
    watch_seconds: float, duration_seconds: float | None, *, threshold: float
) -> Signal:
    """A graded positive: more of the item watched, more evidence of taste."""
    c = completion_ratio(watch_seconds, duration_seconds)
    weight = min(max(1.3 * c - 0.3, -0.3), 1.0)
    return Signal(weight=weight, positive=c >= threshold, completion=c)


def click_signal() -> Signal:
    """A weak positive: the user chose to look, but has not shown they liked it."""
    return Signal(weight=CLICK_WEIGHT, positive=False, completion=None)


def skip_signal(watch_seconds: float | None, duration_seconds: float | None) -> Signal:
    """A negative; an early skip (first seconds, or under 10 %) says more than a late one."""
    seconds = watch_seconds or 0.0
    c = completion_ratio(seconds, duration_seconds)
    early = seconds < EARLY_SKIP_SECONDS or c < EARLY_SKIP_COMPLETION
    return Signal(
        weight=EARLY_SKIP_WEIGHT if early else LATE_SKIP_WEIGHT, positive=False, completion=c
    )


def signal_for(
    event_type: str,
    watch_seconds: float | None,
    duration_seconds: float | None,
    *,
    threshold: float,
) -> Signal:
    """Dispatch on the event type (``click`` | ``skip`` | ``watch``)."""
    if event_type == "watch":
        return watch_signal(watch_seconds or 0.0, duration_seconds, threshold=threshold)
    if event_type == "skip":
        return skip_signal(watch_seconds, duration_seconds)
    return click_signal()
