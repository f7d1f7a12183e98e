"""What recloop knows about one user: ``UserState`` and the records it is made of.

Plain data with change tracking (``new_interactions``, ``new_events``,
``history_rewritten``), so the Redis adapter (``pipeline.stores.users``) writes only what a
batch changed. The rules that change it live
in ``pipeline.features.update``.

Affinities are stored as values decayed to ``last_ts`` (event time); a reader who wants them
"as of now" multiplies by ``2 ** (-(now - last_ts) / half_life)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from pipeline.features.controls import UserControls


class Interaction(NamedTuple):
    """One past interaction, as kept in the user's history (by event time, newest last).

    A named tuple rather than a frozen dataclass: a user's whole history (up to
    ``RECLOOP_HISTORY_SIZE`` entries) is rebuilt from Redis whenever the user's state is not
    in the worker's cache, and a frozen dataclass costs several times more to construct.
    """

    item_id: str
    ts: int
    kind: str
    weight: float
    completion: float | None = None


@dataclass(slots=True)
class UserContext:
    """The last context a user was seen in (used for segment trending)."""

    locale: str | None = None
    device: str | None = None
    surface: str | None = None


@dataclass(slots=True)
class ArmState:
    """The user's experiment arm: what they were last shown and their outcome values in it.

    Plain data kept with the user (``recloop:user:{USER_ID}:experiment``), so whichever
    worker holds the user attributes their next event the same way, and so the arm's sums
    of squares can be updated exactly (``pipeline.lists.experiment_outcomes``).
    """

    experiment: str
    variant: str
    first_ms: int  # first exposure: when the user's first list in the arm was generated
    shown: frozenset[str] = frozenset()  # items of the latest list
    shown_ms: int = 0  # when the latest list was generated
    values: dict[str, int] = field(default_factory=dict)  # actions, hits, ... events
    returned: set[int] = field(default_factory=set)  # return windows (s) they came back after
    changed: bool = False  # values or returned changed since the state was written


@dataclass(slots=True)
class UserState:
    """Everything recloop keeps about one user, with change tracking for incremental writes."""

    user_id: str
    n_click: int = 0
    n_skip: int = 0
    n_watch: int = 0
    completion_sum: float = 0.0
    affinity: dict[str, float] = field(default_factory=dict)
    first_ts: int = 0
    last_ts: int = 0
    context: UserContext = field(default_factory=UserContext)
    history: list[Interaction] = field(default_factory=list)  # by event time, oldest first
    excluded: dict[str, int] = field(default_factory=dict)
    seen_events: dict[str, int] = field(default_factory=dict)
    controls: UserControls = field(default_factory=UserControls)
    segments: dict[str, str] = field(default_factory=dict)  # as last written to Redis
    arm: ArmState | None = None  # the experiment arm the user was shown lists in
    # storage bookkeeping (``pipeline.stores.users``): the write version the state was
    # loaded at (a write expecting another one conflicts), the forget time at or before
    # which the user's events are dropped, the owed refresh last recorded for the user
    version: int = 0
    forgotten_ts: int = 0
    owed: str | None = None
    # what changed since the state was loaded (the store writes only this)
    new_interactions: list[Interaction] = field(default_factory=list)
    new_events: list[tuple[str, int]] = field(default_factory=list)
    history_rewritten: bool = False  # a late event was inserted: store the whole history

    @property
    def n_events(self) -> int:
        """Events applied, all types."""
        return self.n_click + self.n_skip + self.n_watch

    @property
    def skip_rate(self) -> float:
        """Share of applied events that were skips."""
        return self.n_skip / self.n_events if self.n_events else 0.0

    @property
    def mean_completion(self) -> float:
        """Mean completion of the user's watches (0 when none)."""
        return self.completion_sum / self.n_watch if self.n_watch else 0.0

    def top_categories(self, n: int = 5) -> list[tuple[str, float]]:
        """Categories with the highest positive affinity, best first."""
        ranked = sorted(self.affinity.items(), key=lambda kv: kv[1], reverse=True)
        return [(name, value) for name, value in ranked[:n] if value > 0]

    def positives(self, n: int) -> list[Interaction]:
        """The ``n`` most recent (by event time) positive interactions, oldest first."""
        out = [h for h in reversed(self.history) if h.weight > 0][:n]
        out.reverse()
        return out

    def negatives(self, n: int) -> list[Interaction]:
        """The ``n`` most recent (by event time) negative interactions, oldest first.

        Read per learn step and per list: the scan stops at the ``n``-th (~4 us instead of
        ~9 us over a history of 200 where one in ten is negative).
        """
        out: list[Interaction] = []
        if n <= 0:
            return out
        for h in reversed(self.history):
            if h.weight < 0:
                out.append(h)
                if len(out) == n:
                    break
        out.reverse()
        return out

    def forgotten_before(self, ts: int) -> bool:
        """Whether an event or control stamped ``ts`` was sent before the user's forget.

        >>> UserState("u").forgotten_before(0), UserState("u", forgotten_ts=5).forgotten_before(5)
        (False, True)
        """
        return self.forgotten_ts > 0 and ts <= self.forgotten_ts

    def mark_clean(self) -> None:
        """Forget change tracking once the state has been persisted."""
        self.new_interactions = []
        self.new_events = []
        self.history_rewritten = False
        if self.arm is not None:
            self.arm.changed = False
