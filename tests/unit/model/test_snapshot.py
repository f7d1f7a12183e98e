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
from pipeline.model.snapshot import (
    SNAPSHOT_FORMAT,
    NeighborColumns,
    freeze,
    models_from_dict,
    models_to_dict,
)
from pipeline.stores.codec import (
    SnapshotFormatError,
    decode_snapshot,
    encode_header,
    encode_rows,
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
    return Recommender(models_from_dict(decode_snapshot(*blob), params), engine.params)


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
        decode_snapshot(*encode_snapshot(doc))


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
    models = models_from_dict(decode_snapshot(*encode_snapshot(doc)))
    a, b = models.catalog.index_of("a"), models.catalog.index_of("b")
    assert models.catalog.info(a) == ItemInfo("a", ("X",), 600.0, T0, None, "A")
    assert models.cooc.row(a)[0].tolist() == [b]
    assert models.cooc.table.was_pruned(a)  # an old format does not say: searched, not assumed
    assert models.stats.trend[[a, b]].tolist() == [3.0, 1.0]
    assert models.stats.trend_max == 3.0 and models.stats.popularity_max == 2.0
    assert models.stats.segment_names() == ["global", "locale:fr"]
    assert models.stats.trend_of("locale:fr", np.array([a, b])).tolist() == [0.0, 4.0]
    again = models_to_dict(models)  # and is written back as the current format
    assert again["format"] == SNAPSHOT_FORMAT == 5
    assert again["reranker"] == SharedModels().reranker.snapshot()  # format 1: the prior
    assert again["stats"]["segments"] == {"locale:fr": [["b", 4.0, 0.0]]}
    assert len(again["stats"]["stages"]) == models.stats.stage_cap + 1  # empty until learned
    assert not any(again["stats"]["stages"])


def test_stage_popularity_survives_a_snapshot() -> None:
    models = SharedModels()
    for stage, item in [(0, "a"), (0, "a"), (0, "b"), (3, "c"), (500, "d")]:
        models.apply(LearnRecord(item, T0, "watch", 1.0, 1.0, (), (), positive=True, stage=stage))
    restored = models_from_dict(decode_snapshot(*encode_snapshot(models_to_dict(models))))
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
    restored = models_from_dict(decode_snapshot(*encode_snapshot(models_to_dict(models))))
    assert not restored.admit("recloop.events:3", 41)
    assert restored.admit("recloop.events:3", 42)
    assert restored.admit("recloop.events:4", 0)  # another partition is its own sequence
    older = models_to_dict(models)
    del older["learned_through"]  # a snapshot from before the guard: nothing refused
    assert models_from_dict(older).admit("recloop.events:3", 41)


# --------------------------------------------------------------------------- format 5
def _learned(n_items: int = 60, n_events: int = 3_000, **params: Any) -> SharedModels:
    """Models after a stream of positives over ``n_items`` items (full rows, prunes)."""
    models = SharedModels(ModelParams(**params))
    rng = np.random.default_rng(11)
    for k in range(n_events):
        item = f"i{int(rng.zipf(1.3)) % n_items}"
        context = tuple((f"i{int(j)}", 1.0) for j in rng.integers(0, n_items, size=5))
        models.apply(
            LearnRecord(item, T0 + k * 60_000, "watch", 1.0, 1.0, (), context, positive=True)
        )
    return models


def _columns(doc: dict[str, Any]) -> tuple[list[int], ...]:
    rows = doc["cooc"]["rows"]
    assert isinstance(rows, NeighborColumns)
    return rows.rows.tolist(), rows.lengths.tolist(), rows.ids.tolist(), rows.weights.tolist()


def _pairs(models: SharedModels) -> set[tuple[str, str, float]]:
    ids = models.catalog.ids
    return {(ids[i], ids[j], w) for i, j, w in models.cooc.pairs()}


def test_a_frozen_snapshot_ignores_what_the_models_learn_afterwards() -> None:
    """The copy taken on the loop is the snapshot, whatever the models do meanwhile."""
    models = _learned(neighbors=8)
    expected = models_to_dict(models)
    frozen = freeze(models)
    more = _learned(n_items=90, n_events=2_000, neighbors=8)  # new items, rows grow, prunes
    for item, nbr, weight in more.cooc.pairs()[:3_000]:
        ids = more.catalog.ids
        context = ((ids[nbr], 1.0),)
        record = LearnRecord(ids[item], T0, "watch", weight, 1.0, (), context, positive=True)
        models.apply(record)
    got = frozen.document()
    assert _columns(got) == _columns(expected)
    summary = {"parts": 0, "rows": 0, "entries": 0}
    assert encode_header(got, summary) == encode_header(expected, summary)  # all but rows
    assert _columns(models_to_dict(models)) != _columns(expected)  # the models did move on


def test_rows_stored_in_many_parts_restore_every_pair_exactly() -> None:
    models = _learned()
    frozen = freeze(models)
    parts = list(frozen.row_parts(max_entries=50))
    assert len(parts) > 10
    assert all(p.entries <= 50 or p.rows.shape[0] == 1 for p in parts)
    whole = NeighborColumns.concat(parts)
    assert _columns({"cooc": {"rows": whole}}) == _columns(frozen.document())
    blobs = [encode_rows(p) for p in parts]
    summary = {"parts": len(blobs), "rows": int(whole.rows.shape[0]), "entries": whole.entries}
    header = encode_header(frozen.header(), summary)
    restored = models_from_dict(decode_snapshot(header, blobs))
    assert _pairs(restored) == _pairs(models)  # float32 weights, bit for bit
    assert len(_pairs(models)) == whole.entries > 0
    catalogue_only = decode_snapshot(header)  # what the API reads: no parts fetched
    assert catalogue_only["cooc"]["rows"] == summary
    with pytest.raises(SnapshotFormatError, match="parts"):
        decode_snapshot(header, blobs[:-1])


def test_rows_of_evicted_items_stay_out_of_a_snapshot() -> None:
    models = _learned(n_items=200, n_events=3_000, catalog_max_items=64)
    assert models.catalog.evicted > 0 and models.cooc.evicted
    doc = models_to_dict(models)
    restored = models_from_dict(decode_snapshot(*encode_snapshot(doc)))
    assert _pairs(restored) == _pairs(models)  # ``pairs`` reads rows: stale entries purged
    names = set(doc["items"]["item_id"])
    assert names == {i for i in models.catalog.ids if i}
    assert len(restored.catalog) == len(models.catalog)


def test_a_damaged_part_or_row_is_refused() -> None:
    models = _learned(n_items=30, n_events=500)
    header, parts = encode_snapshot(models_to_dict(models))
    assert len(parts) == 1
    raw = parts[0]
    for bad in (raw[:-4], raw[:10], b"XXXX" + raw[4:]):
        with pytest.raises(SnapshotFormatError, match="part"):
            decode_snapshot(header, [bad])
    doc = decode_snapshot(header, parts)
    rows = doc["cooc"]["rows"]
    ids = rows.ids.copy()
    ids[0] = len(doc["items"]["item_id"])  # names an item the snapshot does not hold
    doc["cooc"]["rows"] = NeighborColumns(rows.rows, rows.lengths, ids, rows.weights, rows.pruned)
    with pytest.raises(ValueError, match="outside the snapshot"):
        models_from_dict(doc)


def test_restored_rows_keep_learning_exactly_like_the_originals() -> None:
    """Rows that dropped entries keep their ``pruned`` mark across a snapshot.

    A row never pruned that lacks ``x`` lets learning append to row ``x`` without a search
    (a pair is created on both sides at once); a restored row that forgot it had been pruned
    would append a second entry of the same neighbour to its mirror.
    """
    params = ModelParams(neighbors=8)  # a full row keeps its 6 heaviest

    def pair(item: str, other: str, weight: float, k: int) -> LearnRecord:
        context = ((other, weight),)
        return LearnRecord(item, T0 + k, "watch", 1.0, 1.0, (), context, positive=True)

    original = SharedModels(params)
    others = [("b", 0.1), ("c", 0.2), *((name, 1.0) for name in "defghi")]
    for k, (other, weight) in enumerate(others):
        original.apply(pair("a", other, weight, k))  # row a: 8 neighbours, b lightest
    original.apply(pair("a", "j", 1.0, 9))  # full: b and c dropped, j in; row b still has a
    a, b = original.catalog.index_of("a"), original.catalog.index_of("b")
    assert b not in original.cooc.row(a)[0].tolist() and original.cooc.table.was_pruned(a)
    doc = decode_snapshot(*encode_snapshot(models_to_dict(original)))
    restored = models_from_dict(doc, params)
    for models in (original, restored):
        models.apply(pair("a", "b", 1.0, 10))  # b comes back to row a
        assert models.cooc.row(b)[0].tolist() == [a], "a neighbour twice in a row"
    assert _pairs(restored) == _pairs(original)
