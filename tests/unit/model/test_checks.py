"""A check suite every model passes, in the spirit of ``river.checks``.

Each model is registered with an adapter saying how to build it, feed it and read its
state; the checks then hold for all of them: the same input gives the same state
(determinism), commutative models give the same state in any record order, a snapshot
continues exactly where the original was, and state stays within its documented bounds.
A new model joins ``MODELS`` and inherits every check.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest

from pipeline.model.item_stats import MAX_SEGMENTS
from pipeline.model.models import ModelParams, RankerExample, SharedModels
from pipeline.model.ranker import FEATURES, Ranker
from pipeline.model.record import LearnRecord
from pipeline.model.snapshot import models_from_dict, models_to_dict
from pipeline.stores.codec import decode_snapshot, encode_snapshot

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000


def _records(seed: int = 5, n: int = 400, segments: int = 40) -> list[LearnRecord]:
    """Simulated learn records: Zipf-ish items, positives with contexts, client segments.

    Within its bounds a commutative model is order-independent; which segments are admitted
    once the bound is reached depends on arrival (first come), so the order checks stay
    below it and ``_flood`` goes past it.
    """
    rng = random.Random(seed)
    items = [f"i{k}" for k in range(60)]
    out = []
    ts = T0
    for k in range(n):
        ts += rng.randrange(1, 6 * HOUR_MS)
        item = items[min(int(rng.paretovariate(1.2)) - 1, len(items) - 1)]
        kind = rng.choice(["watch", "watch", "click", "skip"])
        weight = {"watch": rng.uniform(-0.3, 1.0), "click": 0.3, "skip": -1.0}[kind]
        context = tuple((rng.choice(items), rng.uniform(0.1, 1.0)) for _ in range(rng.randrange(4)))
        segment = (f"locale:l{k % segments}",)
        completion = None if kind == "click" else rng.random()
        out.append(LearnRecord(item, ts, kind, weight, completion, segment, context))
    return out


def _examples(seed: int = 9, n: int = 300) -> list[RankerExample]:
    rng = random.Random(seed)
    return [
        RankerExample(tuple(rng.uniform(-1, 1) for _ in FEATURES), rng.random() < 0.4)
        for _ in range(n)
    ]


def _scale(landmark: int | None, half_life_s: float) -> float:
    """Forward-decay factor to rebase a landmark to ``T0`` (1 without a half-life)."""
    if half_life_s <= 0:
        return 1.0
    return float(2.0 ** (((landmark or T0) - T0) / (half_life_s * 1_000)))


def _rebased(arr: np.ndarray, landmark: int | None, half_life_s: float, n: int) -> list[float]:
    scale = _scale(landmark, half_life_s)
    out = np.zeros(n)
    out[: min(n, arr.shape[0])] = arr[:n]
    return (out * scale).tolist()


def shared_state(m: SharedModels) -> dict[str, Any]:
    """Shared-model state keyed by public ids, forward decay rebased to ``T0``."""
    ids = m.catalog.ids
    order = sorted(range(len(ids)), key=ids.__getitem__)
    n = len(ids)
    cooc, stats = m.cooc, m.stats
    scale = _scale(cooc.landmark_ts, cooc.half_life)
    rows = {(ids[i], ids[j]): w * scale for i, j, w in cooc.pairs()}
    pop = _rebased(stats.popularity, stats.landmark_ts, stats.half_life, n)
    trend = _rebased(stats.trend, stats.landmark_ts, stats.trend_half_life, n)
    trend_scale = _scale(stats.landmark_ts, stats.trend_half_life)
    return {
        "items": sorted(ids),
        "rows": rows,
        "interactions": [
            float(stats.interactions[i]) if i < len(stats.interactions) else 0.0 for i in order
        ],
        "popularity": [pop[i] for i in order],
        "trend": [trend[i] for i in order],
        "segments": sorted(stats.segment_names()),
        "segment_trend": {
            (name, ids[int(i)]): float(c) * trend_scale
            for name, h in stats.segments.items()
            for i, c in zip(h.items[: h.size], h.counts[: h.size], strict=True)
        },
        "records": m.records_applied,
    }


def ranker_state(r: Ranker) -> dict[str, Any]:
    return {"weights": r.weight_vector().tolist(), "updates": r.updates}


@dataclass(frozen=True)
class Adapter:
    """How the checks drive one model."""

    name: str
    make: Callable[[], Any]
    inputs: Callable[[], Sequence[Any]]
    feed: Callable[[Any, Sequence[Any]], None]
    state: Callable[[Any], dict[str, Any]]
    restore: Callable[[Any], Any]
    commutative: bool
    bounds: Callable[[Any], None]
    flood: Callable[[], Sequence[Any]]


def _flood() -> list[LearnRecord]:
    """More distinct client-supplied segments than the model may keep."""
    return _records(seed=6, n=2 * MAX_SEGMENTS, segments=2 * MAX_SEGMENTS)


# Bounds small enough for the check inputs to reach them: rows get pruned (60 items, 8
# neighbours); the flood also overfills the catalogue, the segments and their heavy hitters.
TIGHT = ModelParams(neighbors=8, catalog_max_items=64, segment_items=6, max_segments=5)


def _tight_flood() -> list[LearnRecord]:
    """More items, neighbours and segments than the tight bounds hold."""
    rng = random.Random(8)
    return [
        LearnRecord(
            f"f{k % 500}",
            T0 + k * HOUR_MS,
            "watch",
            1.0,
            0.9,
            (f"device:d{k % 40}",),
            tuple((f"f{rng.randrange(500)}", 1.0) for _ in range(5)),
        )  # fmt: skip
        for k in range(3_000)
    ]


def _shared_bounds(m: SharedModels) -> None:
    """Every structure within the bound its parameters set, whatever was fed."""
    p = m.params
    assert len(m.stats.segment_names()) <= p.max_segments
    assert all(len(h) <= p.segment_items for h in m.stats.segments.values())
    assert len(m.catalog) <= p.catalog_max_items
    assert m.catalog.slots <= p.catalog_max_items
    assert int(m.cooc.table.lengths().max(initial=0)) <= p.neighbors
    for log in (m.stats.changes, m.catalog.changes, m.catalog.evictions):
        assert log.ring.shape[0] == log.capacity


def _ranker_bounds(r: Ranker) -> None:
    assert set(r.model.weights) <= set(FEATURES)


MODELS = [
    Adapter(
        "shared models (catalogue, co-occurrence, item statistics)",
        make=SharedModels,
        inputs=_records,
        feed=lambda m, records: m.apply_all(records),
        state=shared_state,
        restore=lambda m: models_from_dict(decode_snapshot(*encode_snapshot(models_to_dict(m)))),
        commutative=True,
        bounds=_shared_bounds,
        flood=_flood,
    ),
    Adapter(
        "shared models at tight bounds (pruned rows, evicted items, heavy hitters)",
        make=lambda: SharedModels(TIGHT),
        inputs=_records,
        feed=lambda m, records: m.apply_all(records),
        state=shared_state,
        restore=lambda m: models_from_dict(
            decode_snapshot(*encode_snapshot(models_to_dict(m))), TIGHT
        ),
        commutative=False,  # which pairs a full row keeps depends on arrival
        bounds=_shared_bounds,
        flood=_tight_flood,
    ),
    Adapter(
        "river ranker",
        make=Ranker,
        inputs=_examples,
        feed=lambda r, examples: [r.learn(e.as_dict(), e.label) for e in examples],
        state=ranker_state,
        restore=lambda r: _restored_ranker(r),
        commutative=False,
        bounds=_ranker_bounds,
        flood=lambda: _examples(n=2_000),
    ),
]


def _restored_ranker(r: Ranker) -> Ranker:
    copy = Ranker(r.learning_rate, r.l2)
    copy.restore(orjson.loads(orjson.dumps(r.snapshot())))
    return copy


def _approx(state: dict[str, Any]) -> dict[str, Any]:
    return {
        k: pytest.approx(v)
        if k in ("rows", "weights", "popularity", "trend", "segment_trend")
        else v
        for k, v in state.items()
    }


@pytest.fixture(params=MODELS, ids=lambda a: a.name)
def model(request: pytest.FixtureRequest) -> Adapter:
    adapter: Adapter = request.param
    return adapter


def test_same_input_gives_the_same_state(model: Adapter) -> None:
    a, b = model.make(), model.make()
    inputs = model.inputs()
    model.feed(a, inputs)
    model.feed(b, inputs)
    assert model.state(a) == model.state(b)


def test_feeding_does_not_mutate_the_inputs(model: Adapter) -> None:
    inputs = model.inputs()
    before = repr(inputs)
    model.feed(model.make(), inputs)
    assert repr(inputs) == before


def test_commutative_models_ignore_record_order(model: Adapter) -> None:
    if not model.commutative:  # SGD is order-dependent by nature, so is a bounded row
        assert model.name.startswith(("river ranker", "shared models at tight bounds"))
        return
    inputs = list(model.inputs())
    shuffled = inputs[:]
    random.Random(1).shuffle(shuffled)
    a, b = model.make(), model.make()
    model.feed(a, inputs)
    model.feed(b, shuffled)
    assert model.state(b) == _approx(model.state(a))


def test_a_snapshot_continues_where_the_original_was(model: Adapter) -> None:
    inputs = list(model.inputs())
    half = len(inputs) // 2
    original = model.make()
    model.feed(original, inputs[:half])
    restored = model.restore(original)
    assert model.state(restored) == _approx(model.state(original))
    model.feed(original, inputs[half:])
    model.feed(restored, inputs[half:])
    assert model.state(restored) == _approx(model.state(original))


def test_state_stays_within_its_bounds(model: Adapter) -> None:
    m = model.make()
    model.feed(m, model.inputs())
    model.feed(m, model.flood())
    model.bounds(m)
