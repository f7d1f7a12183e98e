"""Learn records: round trip, order independence, records of items not yet synced."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import orjson
import pytest

from pipeline.events.signals import Signal
from pipeline.features.state import UserState
from pipeline.lists.recommend import Recommender
from pipeline.model.catalog import ItemInfo
from pipeline.model.learn import ranker_example
from pipeline.model.record import LearnRecord
from tests.factories import feed, make_recommender

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
CATEGORIES = ("Drama", "Comedy", "Horror", "Documentary")
PREFIX = {name: name[:3].lower() for name in CATEGORIES}

EngineFactory = Callable[..., Recommender]


def item_id(category: str, k: int) -> str:
    return f"{PREFIX[category]}-{k}"


@pytest.fixture
def engine_factory() -> EngineFactory:
    """Factory: a ``Recommender`` over 4 categories x 10 items (``dra-0`` .. ``doc-9``)."""

    def _make(**params: object) -> Recommender:
        items = [
            ItemInfo(item_id(c, k), (c,), duration_seconds=600.0, title=f"{c} {k}")
            for c in CATEGORIES
            for k in range(10)
        ]
        return make_recommender(items, **params)

    return _make


def test_learn_record_json_round_trip() -> None:
    records = [
        LearnRecord("m1", T0, "watch", 0.87, 0.9, ("locale:en-GB",), (("m0", 1.0), ("m7", 0.3))),
        LearnRecord("m2", T0 + 1, "click", 0.3, None, (), ()),
        LearnRecord("m3", T0 + 2, "skip", -1.0, 0.01, ("locale:fr", "device:tv"), ()),
        LearnRecord("m3", T0 + 3, "watch", 0.5, 0.7, (), (), first=False),
        LearnRecord("m4", T0 + 4, "watch", 1.0, 1.0, (), (), positive=True, stage=12),
    ]
    for record in records:
        wire = orjson.loads(orjson.dumps(record.to_json()))
        assert LearnRecord.from_json(wire) == record


def test_learn_record_from_before_first_reads_as_a_first_interaction() -> None:
    """Seven-field records (written before ``first``) still load from the model log."""
    old = ["m1", T0, "watch", 1.0, 1.0, [], [["m0", 1.0]]]
    record = LearnRecord.from_json(old)
    assert record.first and record.context == (("m0", 1.0),)
    assert not record.positive and record.stage is None


def _simulated_records(engine: Recommender, seed: int = 7) -> list[LearnRecord]:
    rng = random.Random(seed)
    ids = engine.models.catalog.ids
    records: list[LearnRecord] = []
    ts = T0
    for u in range(8):
        state = UserState(f"u{u}")
        for k in range(10):
            ts += rng.randrange(1, 4 * HOUR_MS)
            kind = rng.choice(["watch", "watch", "watch", "click", "skip"])
            watch = rng.uniform(0, 600) if kind != "click" else None
            record = feed(
                engine.models,
                state,
                f"u{u}-{k}",
                rng.choice(ids),
                ts,
                kind=kind,
                watch_seconds=watch,
            )
            assert record is not None
            records.append(record)
    return records


def _normalized_rows(engine: Recommender) -> dict[tuple[str, str], float]:
    """Co-occurrence values rebased to ``T0`` (forward decay depends on the landmark)."""
    cooc = engine.models.cooc
    scale = 1.0  # the default: no wall-clock decay
    if cooc.half_life > 0:
        assert cooc.landmark_ts is not None
        scale = 2.0 ** ((cooc.landmark_ts - T0) / (cooc.half_life * 1_000))
    ids = engine.models.catalog.ids
    return {(ids[i], ids[j]): w * scale for i, j, w in cooc.pairs()}


@pytest.mark.parametrize("half_life", [0.0, 180 * 86_400.0], ids=["no-decay", "forward-decay"])
def test_records_applied_in_any_order_give_the_same_model(
    engine_factory: EngineFactory, half_life: float
) -> None:
    source = engine_factory(cooc_half_life_seconds=half_life)
    records = _simulated_records(source)
    assert any(r.context for r in records)
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    engines = []
    for order in (records, records[::-1], shuffled):
        engine = engine_factory(cooc_half_life_seconds=half_life)
        for record in order:
            engine.models.apply(record)
        engines.append(engine)
    reference = _normalized_rows(engines[0])
    assert reference, "the simulation produced co-occurrences"
    assert reference == pytest.approx(_normalized_rows(source))
    for engine in engines[1:]:
        assert _normalized_rows(engine) == pytest.approx(reference)
        n = len(engine.models.catalog)
        first = engines[0].models.stats.interactions[:n].tolist()
        assert engine.models.stats.interactions[:n].tolist() == first
        for item in range(len(engine.models.catalog)):
            ids_a, sims_a = engines[0].models.cooc.neighbors(item)
            ids_b, sims_b = engine.models.cooc.neighbors(item)
            assert dict(zip(ids_b.tolist(), sims_b.tolist(), strict=True)) == pytest.approx(
                dict(zip(ids_a.tolist(), sims_a.tolist(), strict=True))
            )


@pytest.mark.parametrize("warm", [False, True], ids=["fresh-engine", "warm-engine"])
def test_context_item_not_yet_synced_does_not_break_lists(
    engine_factory: EngineFactory, warm: bool
) -> None:
    """A user's previous positive was learned by another worker, not yet synced here.

    This happens after a partition moves: the new owner loads the user's history from Redis
    and applies its own record (whose context names the earlier item) at once, while the
    previous owner's record for that earlier item reaches it only at the next model sync.
    Lists must stay valid in the meantime.
    """
    engine = engine_factory()
    if warm:  # other traffic already learned, just not the unsynced item
        for k, item in enumerate(i for i in engine.models.catalog.ids if i != "doc-9"):
            feed(engine.models, UserState(f"o{k}"), f"o{k}-1", item, T0 + k)
    user = UserState("u")
    feed(None, user, "u-1", "doc-9", T0 + 100, catalog=engine.models.catalog)  # the other worker
    feed(engine.models, user, "u-2", "dra-1", T0 + 200)  # this worker: context names doc-9
    viewer = UserState("v")
    feed(engine.models, viewer, "v-1", "dra-1", T0 + 300)
    engine.refresh_indexes(T0 + 300)
    for state in (user, viewer):
        ranked = engine.recommend(state, T0 + 300)
        assert ranked
        scores = [r.score for r in ranked]
        assert all(math.isfinite(s) for s in scores), scores


def test_a_record_learns_from_learn_context_items_and_an_example_reads_context_size(
    engine_factory: EngineFactory,
) -> None:
    """Co-occurrence reaches further back than a list scores (``learn_context``), while the
    ranker's example sees the user as a list does (the last ``context_size`` items)."""
    engine = engine_factory(learn_context=12, context_size=4)
    models = engine.models
    state = UserState("u")
    watched = [item_id(c, k) for k in range(4) for c in CATEGORIES][:15]
    for n, item in enumerate(watched[:-1]):
        feed(models, state, f"e{n}", item, T0 + n * HOUR_MS)
    record = feed(models, state, "last", watched[-1], T0 + 99 * HOUR_MS)
    assert record is not None
    assert [i for i, _ in record.context] == watched[-13:-1]  # the 12 latest before it
    # the learn step hands the example its learn view; it must read what a list reads
    signal = Signal(1.0, True, 1.0)
    given = ranker_example(models, state, watched[0], signal, T0, models.recent(state))
    alone = ranker_example(models, state, watched[0], signal, T0)
    assert given is not None and alone is not None
    assert given.features == alone.features


@pytest.mark.parametrize(("ranker_power", "trained"), [(0.0, False), (1.0, True)])
def test_the_like_ranker_learns_only_where_a_list_reads_it(
    engine_factory: EngineFactory, ranker_power: float, trained: bool
) -> None:
    """Its example and river step are a quarter of the learn step: skipped while no list
    scores with ``P(like) ** ranker_power`` (the default), made on every watch and skip
    once one does. Nothing else the event teaches changes."""
    engine = engine_factory(ranker_power=ranker_power)
    models = engine.models
    state = UserState("u")
    kinds = ("watch", "skip", "watch", "click", "watch")
    records = [
        feed(models, state, f"e{n}", item_id("Drama", n), T0 + n * HOUR_MS, kind=kind,
             watch_seconds=None if kind == "click" else (5.0 if kind == "skip" else 600.0))
        for n, kind in enumerate(kinds)
    ]  # fmt: skip
    assert models.params.like_ranker is trained
    assert models.ranker.updates == (4 if trained else 0)  # watches and skips, not clicks
    assert all(r is not None for r in records)
    assert models.records_applied == len(kinds)  # co-occurrence and statistics learn alike
    neighbours = models.cooc.neighbors(models.catalog.index_of(item_id("Drama", 4)))[0]
    assert neighbours.shape[0] > 0
