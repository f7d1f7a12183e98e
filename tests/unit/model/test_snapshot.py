"""Snapshots of the shared models: round trip, continued learning, format check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.events.signals import signal_for
from pipeline.features.state import UserState
from pipeline.features.update import FeatureParams
from pipeline.lists.recommend import Recommender
from pipeline.model.catalog import ItemInfo
from pipeline.model.learn import apply_learning, learn_batch
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.record import LearnRecord
from pipeline.model.snapshot import SNAPSHOT_FORMAT, models_from_dict, models_to_dict
from pipeline.stores.codec import (
    SnapshotFormatError,
    decode_snapshot,
    encode_snapshot,
)
from pipeline.tooling.replay import split_params
from schemas.events import Event

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
CAPS = {"history_cap": 4, "excluded_cap": 5, "events_cap": 5}
PARAMS = FeatureParams(
    half_life_seconds=86_400.0,
    history_size=CAPS["history_cap"],
    excluded_size=CAPS["excluded_cap"],
    dedupe_size=CAPS["events_cap"],
)


# --------------------------------------------------------------------------- snapshots
def _trained_engine() -> tuple[Recommender, ModelParams, dict[str, UserState]]:
    # the user-kNN is per worker and not in snapshots (it fills again from new events):
    # off here, so the shared models alone decide the lists being compared
    model_params, list_params = split_params(
        ranker_power=1.0, list_size=10, category_cap=3, uknn_weight=0.0
    )
    engine = Recommender(SharedModels(model_params), list_params)
    models = engine.models
    categories = ("Drama", "Comedy", "Horror", "Documentary")
    for c, name in enumerate(categories):
        for k in range(8):
            models.upsert_item(
                ItemInfo(
                    f"{name[:3]}{k}",
                    (name,),
                    600.0,
                    T0 - (c * 8 + k) * HOUR_MS,
                    title=f"{name} {k}" if k % 2 else None,
                )
            )
    ids = models.catalog.ids
    users: dict[str, UserState] = {}
    ts = T0
    for u in range(6):
        state = users[f"u{u}"] = UserState(f"u{u}")
        ctx = {"locale": "en-GB" if u % 2 else "fr-FR", "device": "tv"}
        for k in range(6):
            ts += 97_000
            item = ids[(u * 5 + k * 3) % len(ids)]
            kind = ("watch", "watch", "skip", "click")[(u + k) % 4]
            doc: dict[str, Any] = {"event_id": f"u{u}-{k}", "type": kind, "user_id": state.user_id,
                                   "item_id": item, "ts": ts, "context": ctx}  # fmt: skip
            if kind != "click":
                doc["watch_seconds"] = 100.0 * (k + 1)
            event = Event.model_validate(doc)
            learning = learn_batch(
                models, {state.user_id: state}, [event], params=PARAMS, threshold=0.6
            )
            apply_learning(models, learning)
            state.mark_clean()
    users["cold"] = UserState("cold")
    return engine, model_params, users


def _lists(engine: Recommender, users: dict[str, UserState], now: int) -> dict[str, list[Any]]:
    engine.refresh_indexes(now)
    return {
        u: [(r.item_id, r.reason, r.score) for r in engine.recommend(state, now)]
        for u, state in users.items()
    }


def _restored(engine: Recommender, params: ModelParams) -> Recommender:
    blob = encode_snapshot(models_to_dict(engine.models))
    return Recommender(models_from_dict(decode_snapshot(blob), params), engine.params)


def test_snapshot_round_trip_recommends_the_same_lists() -> None:
    engine, params, users = _trained_engine()
    assert engine.models.ranker.updates > 0
    restored = _restored(engine, params)
    assert restored.models.records_applied == engine.models.records_applied
    assert restored.models.catalog.ids == engine.models.catalog.ids
    now = T0 + 6 * HOUR_MS
    before, after = _lists(engine, users, now), _lists(restored, users, now)
    assert any(r[1].startswith("because you") for rows in before.values() for r in rows)
    for user in users:
        assert [r[:2] for r in after[user]] == [r[:2] for r in before[user]], user
        assert [r[2] for r in after[user]] == pytest.approx([r[2] for r in before[user]])


def test_snapshot_continues_learning_like_the_original() -> None:
    engine, params, users = _trained_engine()
    restored = _restored(engine, params)
    state = users["u1"]
    signal = signal_for("watch", 600.0, 600.0, threshold=0.6)
    record = engine.models.record_for(state, "Hor5", T0 + 7 * HOUR_MS, "watch", signal)
    for e in (engine, restored):
        e.models.apply(record)
    now = T0 + 8 * HOUR_MS
    before, after = _lists(engine, users, now), _lists(restored, users, now)
    for user in users:
        assert [r[:2] for r in after[user]] == [r[:2] for r in before[user]], user


def test_snapshot_of_another_format_is_refused() -> None:
    engine, _, _ = _trained_engine()
    doc = models_to_dict(engine.models)
    assert doc["format"] == SNAPSHOT_FORMAT
    doc["format"] = SNAPSHOT_FORMAT + 1
    with pytest.raises(SnapshotFormatError, match="unsupported model snapshot format"):
        decode_snapshot(encode_snapshot(doc))


def test_a_format_1_snapshot_is_read_into_the_bounded_structures() -> None:
    """Workers upgraded past format 1 continue from the last format-1 snapshot."""
    doc = {
        "format": 1,
        "items": [["a", ["X"], 600.0, T0, None, "A"], ["b", [], None, None, "c1", None]],
        "cooc": {"landmark_ts": T0, "mass": [2.0, 1.0], "rows": {"a": {"b": 0.5}, "b": {"a": 0.5}}},
        "stats": {
            "landmark_ts": T0,
            "popularity": [2.0, 1.0],
            "interactions": [2.0, 1.0],
            "skips": [0.0, 1.0],
            "watches": [2.0, 0.0],
            "completion_sum": [1.5, 0.0],
            "trend": {"global": [3.0, 1.0], "locale:fr": [0.0, 4.0]},
        },
        "ranker": Recommender(SharedModels()).models.ranker.snapshot(),
        "records_applied": 3,
    }
    models = models_from_dict(decode_snapshot(encode_snapshot(doc)))
    a, b = models.catalog.index_of("a"), models.catalog.index_of("b")
    assert models.catalog.info(a) == ItemInfo("a", ("X",), 600.0, T0, None, "A")
    assert models.cooc.row(a)[0].tolist() == [b]
    assert models.stats.trend[[a, b]].tolist() == [3.0, 1.0]
    assert models.stats.trend_max == 3.0 and models.stats.popularity_max == 2.0
    assert models.stats.segment_names() == ["global", "locale:fr"]
    assert models.stats.trend_of("locale:fr", np.array([a, b])).tolist() == [0.0, 4.0]
    again = models_to_dict(models)  # and is written back as the current format
    assert again["format"] == SNAPSHOT_FORMAT == 4
    assert again["reranker"] == SharedModels().reranker.snapshot()  # format 1: the prior
    assert again["stats"]["segments"] == {"locale:fr": [["b", 4.0, 0.0]]}
    assert len(again["stats"]["stages"]) == models.stats.stage_cap + 1  # empty until learned
    assert not any(again["stats"]["stages"])


def test_stage_popularity_survives_a_snapshot() -> None:
    models = SharedModels()
    for stage, item in [(0, "a"), (0, "a"), (0, "b"), (3, "c"), (500, "d")]:
        models.apply(LearnRecord(item, T0, "watch", 1.0, 1.0, (), (), positive=True, stage=stage))
    restored = models_from_dict(decode_snapshot(encode_snapshot(models_to_dict(models))))
    ids = restored.catalog.ids
    for stage in (0, 3, 500):
        before = [models.catalog.ids[i] for i in models.stats.stage_hitters(stage).top(5)]
        assert [ids[i] for i in restored.stats.stage_hitters(stage).top(5)] == before
    assert [ids[i] for i in restored.stats.stage_hitters(0).top(5)] == ["a", "b"]
    assert [ids[i] for i in restored.stats.stage_hitters(10_000).top(5)] == ["d"]  # capped


def test_a_snapshot_keeps_the_offsets_its_models_learned_through() -> None:
    """A worker starting from a snapshot still refuses records it holds (redelivered events)."""
    models = SharedModels()
    assert models.admit("recloop.events:3", 41)
    restored = models_from_dict(decode_snapshot(encode_snapshot(models_to_dict(models))))
    assert not restored.admit("recloop.events:3", 41)
    assert restored.admit("recloop.events:3", 42)
    assert restored.admit("recloop.events:4", 0)  # another partition is its own sequence
    older = models_to_dict(models)
    del older["learned_through"]  # a snapshot from before the guard: nothing refused
    assert models_from_dict(older).admit("recloop.events:3", 41)
