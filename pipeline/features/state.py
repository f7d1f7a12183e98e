"""Per-user feature state and its update rule: pure data, no I/O.

``UserState`` is what a worker knows about one user. ``apply_event`` folds one event into it
and is the single place that decides what an event changes; the Redis adapter
(``pipeline.stores.users``) only persists the result, and the replay benchmark calls the same
function, so the benchmark measures exactly what production does.

Affinities are stored as values decayed to ``last_ts`` (event time); a reader who wants them
"as of now" multiplies by ``2 ** (-(now - last_ts) / half_life)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.events.signals import Signal
from pipeline.features.controls import UserControls
from pipeline.features.decay import decay_factor

AFFINITY_KEEP = 32  # categories kept per user: bounded state


@dataclass(frozen=True, slots=True)
class Interaction:
    """One past interaction, as kept in the user's history (newest last)."""

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
    history: list[Interaction] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)
    seen_events: dict[str, int] = field(default_factory=dict)
    controls: UserControls = field(default_factory=UserControls)
    segments: dict[str, str] = field(default_factory=dict)  # as last written to Redis
    # what changed since the state was loaded (the store writes only this)
    new_interactions: list[Interaction] = field(default_factory=list)
    new_events: list[tuple[str, int]] = field(default_factory=list)

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
        """The last ``n`` interactions with a positive weight, oldest first."""
        out = [h for h in reversed(self.history) if h.weight > 0][:n]
        out.reverse()
        return out

    def negatives(self, n: int) -> list[Interaction]:
        """The last ``n`` interactions with a negative weight, oldest first."""
        out = [h for h in reversed(self.history) if h.weight < 0][:n]
        out.reverse()
        return out

    def mark_clean(self) -> None:
        """Forget change tracking once the state has been persisted."""
        self.new_interactions = []
        self.new_events = []


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """The knobs of ``apply_event`` (from ``Settings``)."""

    half_life_seconds: float
    history_size: int
    excluded_size: int
    dedupe_size: int


def add_affinity(
    affinity: dict[str, float],
    last_ts: int,
    ts: int,
    categories: Iterable[str],
    weight: float,
    half_life_seconds: float,
) -> tuple[dict[str, float], int]:
    """Decay ``affinity`` to the newer of ``last_ts``/``ts`` and add ``weight`` to categories.

    A late event (``ts`` before ``last_ts``) is added with its own decay instead of
    rewinding the others, so arrival order does not change the result.

    >>> add_affinity({"A": 1.0}, 0, 3_600_000, ["B"], 1.0, 3_600.0)
    ({'A': 0.5, 'B': 1.0}, 3600000)
    """
    cats = list(categories)
    if ts >= last_ts:
        factor = decay_factor(ts - last_ts, half_life_seconds)
        out = {k: v * factor for k, v in affinity.items()}
        now, add = ts, weight
    else:
        out = dict(affinity)
        now, add = last_ts, weight * decay_factor(last_ts - ts, half_life_seconds)
    if cats:
        share = add / len(cats)
        for name in cats:
            out[name] = out.get(name, 0.0) + share
    if len(out) > AFFINITY_KEEP:
        keep = sorted(out.items(), key=lambda kv: abs(kv[1]), reverse=True)[:AFFINITY_KEEP]
        out = dict(keep)
    return out, now


def apply_event(
    state: UserState,
    *,
    event_id: str,
    event_type: str,
    item_id: str,
    ts: int,
    signal: Signal,
    categories: tuple[str, ...],
    params: FeatureParams,
    context: UserContext | None = None,
) -> bool:
    """Fold one event into ``state``; returns ``False`` (and changes nothing) for a duplicate.

    Idempotence lives here: an ``event_id`` already applied to this user is ignored, which
    is what makes Kafka's at-least-once redelivery an exactly-once effect.
    """
    if event_id in state.seen_events:
        return False
    if event_type == "click":
        state.n_click += 1
    elif event_type == "skip":
        state.n_skip += 1
    else:
        state.n_watch += 1
        state.completion_sum += signal.completion or 0.0
    state.affinity, state.last_ts = add_affinity(
        state.affinity, state.last_ts, ts, categories, signal.weight, params.half_life_seconds
    )
    if not state.first_ts or ts < state.first_ts:
        state.first_ts = ts
    interaction = Interaction(item_id, ts, event_type, signal.weight, signal.completion)
    state.history.append(interaction)
    del state.history[: -params.history_size]
    state.new_interactions.append(interaction)
    state.excluded.pop(item_id, None)  # re-insert: keeps the dict in recency order
    state.excluded[item_id] = ts
    _cap(state.excluded, params.excluded_size)
    state.seen_events[event_id] = ts
    _cap(state.seen_events, params.dedupe_size)
    state.new_events.append((event_id, ts))
    if context is not None:
        state.context = UserContext(
            locale=context.locale or state.context.locale,
            device=context.device or state.context.device,
            surface=context.surface or state.context.surface,
        )
    return True


def mark_seen(state: UserState, event_id: str, ts: int, dedupe_size: int) -> bool:
    """Record an event as applied without learning from it (personalization is off).

    The id is still remembered so a redelivery stays a no-op; no behavioural feature moves.
    """
    if event_id in state.seen_events:
        return False
    state.seen_events[event_id] = ts
    _cap(state.seen_events, dedupe_size)
    state.new_events.append((event_id, ts))
    return True


def _cap(ordered: dict[str, int], size: int) -> None:
    """Drop the oldest entries of an insertion-ordered dict beyond ``size``."""
    while len(ordered) > size:
        del ordered[next(iter(ordered))]
