"""The update rule of a user's features: the single place that decides what an event changes.

``apply_event`` folds one new event into a ``UserState``; the worker persists the result and
the replay benchmark calls the same function, so the benchmark measures exactly what
production does. De-duplication is decided by the caller (``pipeline.model.learn``), once.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.events.signals import Signal
from pipeline.features.decay import decay_factor
from pipeline.features.state import Interaction, UserContext, UserState

AFFINITY_KEEP = 32  # categories kept per user: bounded state


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
) -> None:
    """Fold one new event into ``state`` and remember its id.

    The caller has checked ``is_duplicate`` first (``pipeline.model.learn.learn_batch`` is
    the one place that decides): remembering every applied id is what makes Kafka's
    at-least-once redelivery an exactly-once effect.
    """
    first_event = state.n_events == 0  # not ``first_ts == 0``: 0 is a valid event time
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
    if first_event or ts < state.first_ts:
        state.first_ts = ts
    interaction = Interaction(item_id, ts, event_type, signal.weight, signal.completion)
    if not insert_by_time(state.history, interaction, params.history_size):
        state.history_rewritten = True
    state.new_interactions.append(interaction)
    state.excluded.pop(item_id, None)  # re-insert: keeps the dict in recency order
    state.excluded[item_id] = ts
    _cap(state.excluded, params.excluded_size)
    remember(state, event_id, params.dedupe_size)
    if context is not None:
        state.context = UserContext(
            locale=context.locale or state.context.locale,
            device=context.device or state.context.device,
            surface=context.surface or state.context.surface,
        )


def insert_by_time(history: list[Interaction], interaction: Interaction, size: int) -> bool:
    """Insert into a history kept in event-time order, keeping the ``size`` newest.

    Late events happen (a device that was offline, a replayed backlog), and history feeds
    "because you watched" and the kNN recency weights by position: in arrival order a
    years-old watch arriving now would count as the user's newest. Ties keep arrival order.
    Returns whether the interaction went to the end (in order), so the store can append
    instead of rewriting the stored list.

    >>> h = [Interaction("a", 10, "watch", 1.0), Interaction("b", 30, "watch", 1.0)]
    >>> insert_by_time(h, Interaction("late", 20, "watch", 1.0), size=2), [x.item_id for x in h]
    (False, ['late', 'b'])
    """
    if not history or interaction.ts >= history[-1].ts:
        history.append(interaction)
        in_order = True
    else:
        history.insert(bisect_right(history, interaction.ts, key=_event_time), interaction)
        in_order = False
    del history[:-size]
    return in_order


def _event_time(interaction: Interaction) -> int:
    return interaction.ts


def is_duplicate(state: UserState, event_id: str) -> bool:
    """Whether the event was already applied to this user (a redelivery or a resend).

    >>> is_duplicate(UserState("u", seen_events={"e1": 5}), "e1")
    True
    """
    return event_id in state.seen_events


def mark_seen(state: UserState, event_id: str, dedupe_size: int) -> None:
    """Record a new event as applied without learning from it (personalization is off).

    The id is still remembered so a redelivery stays a no-op; no behavioural feature moves.
    """
    remember(state, event_id, dedupe_size)


def remember(state: UserState, event_id: str, dedupe_size: int) -> None:
    """Remember an applied event id, scored by arrival: the newest ids are the ones kept.

    The score is one more than the last id's (a per-user arrival sequence; sets stored
    with event times as scores continue above them). Scoring by event time would make a
    late event, arriving with an old time at a user whose set is full, the first id
    trimmed, in Redis at once: its redelivery would then be applied a second time.

    >>> state = UserState("u", seen_events={"e1": 1_700_000_000_000})
    >>> remember(state, "late", dedupe_size=2); remember(state, "e3", dedupe_size=2)
    >>> state.seen_events
    {'late': 1700000000001, 'e3': 1700000000002}
    """
    last = next(reversed(state.seen_events.values()), 0)
    state.seen_events[event_id] = last + 1
    _cap(state.seen_events, dedupe_size)
    state.new_events.append((event_id, last + 1))


def _cap(ordered: dict[str, int], size: int) -> None:
    """Drop the oldest entries of an insertion-ordered dict beyond ``size``."""
    while len(ordered) > size:
        del ordered[next(iter(ordered))]
