"""Learning from events: the one pure step shared by the worker and the replay benchmark.

``learn_batch`` folds a batch of events into the users' states and returns what the shared
models must learn from it: learn records and ranker examples. It *reads* the models and
never changes what they count (it may register an unseen item id in the catalogue, which is
idempotent), so a batch whose write failed can be learned again without teaching any model
twice. The caller applies the result with ``apply_learning`` once the batch is durable (the
worker: after its Redis transaction; the replay: at once).

De-duplication is decided here, once: an event whose id the user's state already holds is
a duplicate and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.events.signals import Signal, signal_for
from pipeline.features.state import UserContext, UserState
from pipeline.features.update import FeatureParams, apply_event, is_duplicate, mark_seen
from pipeline.model.arrays import FloatArray
from pipeline.model.item_features import feature_row, histories, norm, segment_of
from pipeline.model.models import RankerExample, SharedModels
from pipeline.model.record import LearnRecord
from schemas.events import Event

RerankPairs = Callable[[UserState, str, Signal], FloatArray | None]
"""Training rows of the learning-to-rank layer when an event makes a choice a positive,
from the state *before* the event (``pipeline.lists.recommend.Recommender.rerank_pairs``:
ranking is not this package's, so the caller passes it in)."""


def event_signal(models: SharedModels, event: Event, *, threshold: float) -> Signal:
    """What the event teaches (duration from the event, else from the catalogue)."""
    idx = models.catalog.ensure(event.item_id)
    duration = event.duration_seconds or models.catalog.duration_of(idx)
    return signal_for(event.type, event.watch_seconds, duration, threshold=threshold)


def ranker_example(
    models: SharedModels,
    state: UserState,
    item_id: str,
    signal: Signal,
    ts: int,
    recent: Sequence[tuple[str, float]] | None = None,
) -> RankerExample | None:
    """Whether the user liked an item they chose, with the item's features as of now.

    The ranker estimates P(liked | chosen) from user x item features; the collaborative
    score estimates what the user will choose. Clicks teach it nothing (interest, not yet
    taste): ``None``. ``recent``: ``models.recent(state)`` when the caller has it (its last
    ``context_size`` items are read, the view a list is scored from).
    """
    if signal.completion is None:
        return None
    p = models.params
    item = models.catalog.get(item_id)  # ``event_signal`` registered and touched it
    if item is None:
        item = models.catalog.ensure(item_id)
    pos, neg = histories(
        models.catalog,
        state,
        context_size=p.context_size,
        dislike_size=p.dislike_size,
        decay=p.recency_decay,
        weak=p.weak_weight,
        skip=p.skip_weight,
        recent=None if recent is None else recent[-p.context_size :],
    )
    like, dislike = models.cooc.similarity_to(item, pos, neg)
    row = feature_row(
        models.catalog,
        models.stats,
        item,
        like / norm(pos),
        dislike / norm(neg),
        ts,
        segment_of(models.stats, state),
        state.affinity,
    )
    return RankerExample(row, signal.positive)


@dataclass(frozen=True, slots=True)
class Learned:
    """One applied (new) event and what it teaches."""

    event: Event
    signal: Signal
    record: LearnRecord
    example: RankerExample | None = None
    pairs: FloatArray | None = None  # learning-to-rank rows (a positive of a known user)


@dataclass(slots=True)
class BatchLearning:
    """What a batch changed: applied events (in order), duplicates, model inputs."""

    applied: list[Learned] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)
    examples: list[RankerExample] = field(default_factory=list)

    @property
    def records(self) -> list[LearnRecord]:
        """The shared-model records, in event order."""
        return [a.record for a in self.applied]

    def without(self, users: Collection[str]) -> BatchLearning:
        """What the batch teaches apart from ``users``' events (their write did not happen)."""
        if not users:
            return self
        kept = [a for a in self.applied if a.event.user_id not in users]
        examples = [a.example for a in kept if a.example is not None]
        duplicates = [e for e in self.duplicates if e.user_id not in users]
        return BatchLearning(kept, duplicates, examples)


def learn_event(
    models: SharedModels,
    state: UserState,
    event: Event,
    signal: Signal,
    params: FeatureParams,
    rerank: RerankPairs | None = None,
) -> tuple[LearnRecord, RankerExample | None, FloatArray | None]:
    """Fold a new (not duplicate) event into the user's state; the model inputs it yields.

    With personalization off the event only counts towards anonymous item statistics (no
    context, no segments) and is remembered for de-duplication; no behavioural feature of
    the user moves and the rankers learn nothing. ``rerank`` gives the learning-to-rank
    rows of a positive, computed before the event changes the user's state. The P(like)
    ranker's example is made only where some list reads that ranker
    (``ModelParams.like_ranker``).
    """
    if not state.controls.personalization:
        mark_seen(state, event.event_id, params.dedupe_size)
        anonymous = UserState(state.user_id)
        record = models.record_for(anonymous, event.item_id, event.ts, event.type, signal)
        return dataclasses.replace(record, stage=None), None, None  # no user sequence
    recent = models.recent(state)  # one history walk for the record and the example
    record = models.record_for(state, event.item_id, event.ts, event.type, signal, recent)
    example = (
        ranker_example(models, state, event.item_id, signal, event.ts, recent)
        if models.params.like_ranker
        else None
    )
    pairs = rerank(state, event.item_id, signal) if rerank else None
    ctx = event.context
    apply_event(
        state,
        event_id=event.event_id,
        event_type=event.type,
        item_id=event.item_id,
        ts=event.ts,
        signal=signal,
        categories=models.catalog.categories_of(models.catalog.index_of(event.item_id)),
        params=params,
        context=UserContext(ctx.locale, ctx.device, ctx.surface) if ctx else None,
    )
    return record, example, pairs


def learn_batch(
    models: SharedModels,
    states: Mapping[str, UserState],
    events: Sequence[Event],
    *,
    params: FeatureParams,
    threshold: float,
    rerank: RerankPairs | None = None,
) -> BatchLearning:
    """Fold ``events`` (in order) into ``states``; return the model inputs (models unchanged).

    ``states`` must hold every event's user; they are working copies the caller persists
    (and drops if the write fails). ``rerank``: see ``learn_event``.
    """
    out = BatchLearning()
    for event in events:
        state = states[event.user_id]
        if is_duplicate(state, event.event_id):
            out.duplicates.append(event)
            continue
        signal = event_signal(models, event, threshold=threshold)
        record, example, pairs = learn_event(models, state, event, signal, params, rerank)
        out.applied.append(Learned(event, signal, record, example, pairs))
        if example is not None:
            out.examples.append(example)
    return out


def apply_learning(models: SharedModels, learning: BatchLearning) -> None:
    """Teach the shared models a batch's records and ranker examples: once, when durable."""
    models.apply_all(learning.records)
    apply_local(models, learning)


def apply_local(models: SharedModels, learning: BatchLearning) -> None:
    """Teach the models no other worker shares (user-kNN, the rankers) a batch's events.

    A worker applies a batch's records (the model log's part) and this part separately: the
    log entry holds the records of users whose write then conflicted, and every worker
    applies them from it, while only the events that were written teach the users' models.
    """
    for a in learning.applied:
        if a.record.stage is not None:  # personalised (an anonymous record has no stage)
            models.observe_user(a.event.user_id, a.event.item_id, a.signal)
    models.learn_ranker(learning.examples)
    for a in learning.applied:
        if a.pairs is not None:
            models.reranker.learn(a.pairs)
