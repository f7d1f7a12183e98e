"""Ground truth of the new-item A/B, per experiment arm: what users were shown and did.

The worker's experiment counters (``pipeline.lists.experiment_outcomes``) do not know which
items are new; the simulator does (``World.available_since``). The closed-loop simulator
notes each list a user reads before a choice (the items users scan, at most ``shown``) and
each event it sends, and keeps per user, from the first list in an arm on:

- ``impressions`` / ``new_impressions``: list entries shown, and those that were new (released
  or gone on air within ``window_ms`` of the read);
- ``events`` / ``new_events``: events sent, and those on a new item (consumption of new items);
- ``choices`` (clicks + skips), ``skips``, ``watches``, ``completions`` (watch at least
  ``completion_threshold`` of the item), overall and on new items (``new_`` prefix).

``arm_sums`` turns them into the user-level sufficient statistics of
``pipeline.lists.experiment_stats`` (users are randomised, not actions).

>>> tally = Tally(lambda item_id, ts: item_id == "n1", window_ms=60_000, max_users=10)
>>> tally.shown("u1", ("exp", "b"), ["i1", "n1"], 0)
>>> tally.event({"type": "skip", "user_id": "u1", "item_id": "n1", "ts": 1})
>>> sums = arm_sums(tally)[("exp", "b")]
>>> sums["new_impression_share"].ratio, sums["new_skip_rate"].ratio
(0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pipeline.lists.experiment_stats import Sums

FIELDS: Final = (
    "impressions", "new_impressions", "events", "new_events", "choices", "new_choices",
    "skips", "new_skips", "watches", "new_watches", "completions", "new_completions",
)  # fmt: skip
METRICS: Final = {
    "new_impression_share": ("new_impressions", "impressions"),
    "new_event_share": ("new_events", "events"),
    "new_completion_rate": ("new_completions", "new_watches"),
    "new_skip_rate": ("new_skips", "new_choices"),
    "completion_rate": ("completions", "watches"),
    "skip_rate": ("skips", "choices"),
    "events_per_user": ("events", None),
}
"""Ratio metrics over users, ``(x, y)`` fields; ``y`` None is a mean per user."""

Arm = tuple[str, str]
IsNew = Callable[[str, int], bool]


class Tally:
    """Per-user counts by arm (at most ``max_users`` users; later ones are counted aside)."""

    def __init__(
        self,
        is_new: IsNew,
        *,
        window_ms: int,
        max_users: int = 100_000,
        shown: int = 20,
        completion_threshold: float = 0.6,
    ) -> None:
        self._is_new = is_new
        self.window_ms = window_ms
        self._max_users = max_users
        self._shown = shown
        self._threshold = completion_threshold
        self.users: dict[str, tuple[Arm, dict[str, int]]] = {}
        self.overflow = 0  # users not tallied (past max_users)

    def shown(self, user_id: str, arm: Arm | None, items: Sequence[str], now_ms: int) -> None:
        """The user reads their list (in ``arm``; None: in no experiment) to choose."""
        if arm is None or not items:
            return
        entry = self.users.get(user_id)
        if entry is None or entry[0] != arm:  # first exposure (or the declaration changed)
            if entry is None and len(self.users) >= self._max_users:
                self.overflow += 1
                return
            entry = (arm, dict.fromkeys(FIELDS, 0))
            self.users[user_id] = entry
        counts = entry[1]
        head = items[: self._shown]
        counts["impressions"] += len(head)
        counts["new_impressions"] += sum(self._is_new(item, now_ms) for item in head)

    def event(self, event: Mapping[str, Any]) -> None:
        """An event the simulator sends (ignored before the user's first exposure)."""
        entry = self.users.get(event["user_id"])
        if entry is None:
            return
        counts = entry[1]
        new = self._is_new(event["item_id"], event["ts"])
        kind = event["type"]
        bump = ["events"]
        if kind in ("click", "skip"):
            bump.append("choices")
        if kind == "skip":
            bump.append("skips")
        if kind == "watch":
            bump.append("watches")
            duration = event.get("duration_seconds") or 0.0
            if duration and event.get("watch_seconds", 0.0) >= self._threshold * duration:
                bump.append("completions")
        for field in bump:
            counts[field] += 1
            if new:
                counts[f"new_{field}"] += 1


def arm_sums(tally: Tally) -> dict[Arm, dict[str, Sums]]:
    """Per arm and metric of ``METRICS``: sums over the arm's users."""
    values: dict[Arm, dict[str, list[tuple[float, float]]]] = {}
    for arm, counts in tally.users.values():
        per_metric = values.setdefault(arm, {metric: [] for metric in METRICS})
        for metric, (x, y) in METRICS.items():
            per_metric[metric].append((counts[x], counts[y] if y is not None else 1))
    return {
        arm: {metric: Sums.of(pairs) for metric, pairs in per_metric.items()}
        for arm, per_metric in values.items()
    }


def is_new_in(since: Callable[[str], int | None], window_ms: int) -> IsNew:
    """``is_new`` from ``World.available_since``: available within ``window_ms`` of ``ts``.

    >>> is_new = is_new_in({"a": 1_000}.get, 500)
    >>> is_new("a", 1_200), is_new("a", 1_600), is_new("b", 1_200)
    (True, False, False)
    """

    def is_new(item_id: str, ts: int) -> bool:
        at = since(item_id)
        return at is not None and ts - window_ms < at <= ts

    return is_new
