"""Factories the tests share: models, recommenders and events fed the way a worker feeds them.

Plain functions (the fixtures in ``tests/conftest.py`` wrap them), so a test builds exactly
the world it needs in a line and every level of the suite builds it the same way.
"""

from __future__ import annotations

from typing import Any

from pipeline.events.signals import signal_for
from pipeline.features.state import UserState
from pipeline.features.update import FeatureParams, apply_event
from pipeline.lists.recommend import Recommender
from pipeline.model.catalog import Catalog, ItemInfo
from pipeline.model.learn import apply_learning, learn_batch
from pipeline.model.models import SharedModels
from pipeline.model.record import LearnRecord
from pipeline.tooling.replay import split_params
from schemas.events import Event

USER_PARAMS = FeatureParams(
    half_life_seconds=86_400.0, history_size=100, excluded_size=500, dedupe_size=500
)


def make_recommender(items: list[ItemInfo] | None = None, **params: Any) -> Recommender:
    """A recommender over fresh shared models holding ``items``."""
    model_params, list_params = split_params(**params)
    models = SharedModels(model_params)
    for info in items or []:
        models.upsert_item(info)
    return Recommender(models, list_params)


def event_of(
    state: UserState,
    event_id: str,
    item: str,
    ts: int,
    *,
    kind: str = "watch",
    watch_seconds: float | None = 600.0,
    duration_seconds: float | None = None,
) -> Event:
    """An event v1 of ``state``'s user."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "user_id": state.user_id,
        "item_id": item,
        "ts": ts,
    }
    if kind == "watch" or watch_seconds is not None and kind == "skip":
        doc["watch_seconds"] = watch_seconds
    if duration_seconds is not None:
        doc["duration_seconds"] = duration_seconds
    return Event.model_validate(doc)


def feed(
    models: SharedModels | None,
    state: UserState,
    event_id: str,
    item: str,
    ts: int,
    *,
    kind: str = "watch",
    watch_seconds: float | None = 600.0,
    catalog: Catalog | None = None,
    params: FeatureParams = USER_PARAMS,
) -> LearnRecord | None:
    """Process one event the way a worker does; ``models=None`` only updates the user."""
    if models is not None:
        event = event_of(state, event_id, item, ts, kind=kind, watch_seconds=watch_seconds)
        learning = learn_batch(
            models, {state.user_id: state}, [event], params=params, threshold=0.6
        )
        apply_learning(models, learning)
        state.mark_clean()
        return learning.records[0] if learning.records else None
    assert catalog is not None
    idx = catalog.ensure(item)
    signal = signal_for(kind, watch_seconds, catalog.duration_of(idx), threshold=0.6)
    apply_event(
        state,
        event_id=event_id,
        event_type=kind,
        item_id=item,
        ts=ts,
        signal=signal,
        categories=catalog.categories_of(idx),
        params=params,
    )
    return None
