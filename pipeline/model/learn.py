"""Learning from one event: the single code path shared by workers and the replay benchmark.

The worker (``pipeline.worker.processor``) persists what this changes and shares the returned
record with other workers; the replay applies the record at once. Either way the signal
mapping, the feature update and the model inputs are exactly these lines.
"""

from __future__ import annotations

from pipeline.events.signals import Signal, signal_for
from pipeline.features.state import FeatureParams, UserContext, UserState, apply_event, mark_seen
from pipeline.lists.recommend import Engine
from pipeline.model.record import LearnRecord
from schemas.events import Event


def event_signal(engine: Engine, event: Event, *, threshold: float) -> Signal:
    """What the event teaches (duration from the event, else from the catalogue)."""
    idx = engine.catalog.ensure(event.item_id)
    duration = event.duration_seconds or engine.catalog.infos[idx].duration_seconds
    return signal_for(event.type, event.watch_seconds, duration, threshold=threshold)


def learn_event(
    engine: Engine, state: UserState, event: Event, signal: Signal, params: FeatureParams
) -> LearnRecord:
    """Fold a new (not duplicate) event into the user's state and the ranker.

    Returns the shared-model record, which the caller applies with ``engine.apply``. With
    personalization off the event only counts towards anonymous item statistics (no
    context, no segments) and is remembered for de-duplication; no behavioural feature of
    the user moves.
    """
    if not state.controls.personalization:
        mark_seen(state, event.event_id, event.ts, params.dedupe_size)
        anonymous = UserState(state.user_id)
        return engine.record_for(anonymous, event.item_id, event.ts, event.type, signal)
    record = engine.record_for(state, event.item_id, event.ts, event.type, signal)
    engine.train_ranker(state, event.item_id, signal, event.ts)
    ctx = event.context
    apply_event(
        state,
        event_id=event.event_id,
        event_type=event.type,
        item_id=event.item_id,
        ts=event.ts,
        signal=signal,
        categories=engine.catalog.categories_of(engine.catalog.index_of(event.item_id)),
        params=params,
        context=UserContext(ctx.locale, ctx.device, ctx.surface) if ctx else None,
    )
    return record
