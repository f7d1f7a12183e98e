"""Cost of one list, at ML-100K's catalogue and at 10k items (median and p99 microseconds).

    .venv/bin/python bench/rank_cost.py                      # both catalogues, default knobs
    .venv/bin/python bench/rank_cost.py --set uknn_weight=0  # a variant

ML-100K: its events are learned (as the workers learn them, no ranking), then lists are
timed for sampled users in the state they ended in. 10k items: the simulator
(``pipeline.tooling.simulator``) generates the traffic of a 10,000-item catalogue, learned
the same way. Times are single-threaded wall-clock microseconds of ``Recommender.recommend``
(the list a refresh builds: candidates, scoring, category cap, reasons) and, per event, of
the learning step (``learn_batch`` + ``apply_learning``, as a worker whose lists do not read
the river ranker runs it: without that ranker's training), and of
the learning-to-rank layer's river step alone (``rerank_learn_us``: one ``learn_one`` per
training pair of a positive), which learning adds where a list head is kept.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results import write_json  # noqa: E402  (bench/ is on sys.path)
from quality import converted, default_data, parse_overrides  # noqa: E402

from pipeline.config import Settings  # noqa: E402
from pipeline.features.state import UserState  # noqa: E402
from pipeline.features.update import FeatureParams  # noqa: E402
from pipeline.lists.recommend import Recommender  # noqa: E402
from pipeline.model.arrays import FloatArray  # noqa: E402
from pipeline.model.catalog import item_info  # noqa: E402
from pipeline.model.learn import apply_learning, learn_batch  # noqa: E402
from pipeline.model.models import SharedModels  # noqa: E402
from pipeline.model.reranker import RERANK_FEATURES, Reranker  # noqa: E402
from pipeline.tooling.replay import load_events, load_items, split_params  # noqa: E402
from pipeline.tooling.simulator import World  # noqa: E402
from schemas.events import Event, Item  # noqa: E402
from schemas.validation import Rejected, parse_event, parse_item  # noqa: E402

PARAMS = FeatureParams(
    half_life_seconds=3 * 86_400.0,
    history_size=Settings().history_size,
    excluded_size=5_000,
    dedupe_size=10,
)


def learn(
    recommender: Recommender, events: list[Event]
) -> tuple[dict[str, UserState], list[float], list[FloatArray]]:
    """Learn every event; returns the users, the per-event learning times (us) and the
    learning-to-rank layer's training rows of the first positives."""
    models = recommender.models
    users: dict[str, UserState] = {}
    times: list[float] = []
    pairs: list[FloatArray] = []
    for n, event in enumerate(events):
        if n % 200 == 0:
            recommender.refresh_indexes(event.ts)
        state = users.setdefault(event.user_id, UserState(event.user_id))
        started = time.perf_counter()
        learning = learn_batch(
            models,
            {event.user_id: state},
            [event],
            params=PARAMS,
            threshold=0.6,
            rerank=recommender.rerank_pairs,
        )
        apply_learning(models, learning)
        times.append((time.perf_counter() - started) * 1e6)
        state.mark_clean()
        pairs += [a.pairs for a in learning.applied if a.pairs is not None][: 2_000 - len(pairs)]
    recommender.refresh_indexes(events[-1].ts)
    return users, times, pairs


def time_rerank_learning(pairs: list[FloatArray], negatives: int) -> list[float]:
    """The layer's river step alone (``learn_one`` per pair) per positive, on a fresh model.

    No list is built while learning here, so no head is kept and the layer learns nothing:
    its step is timed on random rows of the same shape (its cost does not depend on values).
    """
    rng = np.random.default_rng(0)
    pairs = pairs or [rng.random((negatives, len(RERANK_FEATURES))) for _ in range(2_000)]
    ranker = Reranker()
    out = []
    for rows in pairs:
        started = time.perf_counter()
        ranker.learn(rows)
        out.append((time.perf_counter() - started) * 1e6)
    return out


def time_lists(
    recommender: Recommender, users: dict[str, UserState], now: int, samples: int
) -> list[float]:
    """``recommend`` times (us) over sampled users with a history."""
    rng = random.Random(0)
    active = [u for u in users.values() if u.history]
    picked = rng.sample(active, min(samples, len(active)))
    out = []
    for state in picked:
        started = time.perf_counter()
        recommender.recommend(state, now)
        out.append((time.perf_counter() - started) * 1e6)
    return out


def stats(name: str, values: list[float]) -> dict[str, float]:
    """Median and p99 of ``values``."""
    arr = np.array(values)
    return {
        f"{name}_median": round(float(np.median(arr)), 1),
        f"{name}_p99": round(float(np.percentile(arr, 99)), 1),
    }


def simulated(n_items: int, n_events: int, n_users: int) -> tuple[list[Event], list[Item]]:
    """Validated events and items of a simulated world."""
    world = World(seed=7, n_users=n_users, n_items=n_items)
    items = []
    for doc in world.items():
        parsed_item = parse_item(orjson.dumps(doc), max_bytes=1 << 20)
        assert not isinstance(parsed_item, Rejected)
        items.append(parsed_item)
    start = 1_700_000_000_000
    events = []
    for doc in world.events(n_events, start_ms=start, rate=50.0):
        parsed = parse_event(
            orjson.dumps(doc), now_ms=start * 2, max_bytes=1 << 20, max_future_ms=0
        )
        assert not isinstance(parsed, Rejected)
        events.append(parsed)
    return events, items


def measure(
    name: str, events: list[Event], items: list[Item], overrides: dict[str, Any], samples: int
) -> dict[str, Any]:
    """Learn a catalogue's events, then time lists."""
    model_params, list_params = split_params(**overrides)
    recommender = Recommender(SharedModels(model_params), list_params)
    for item in items:
        recommender.models.upsert_item(item_info(item))
    users, learn_us, pairs = learn(recommender, events)
    lists_us = time_lists(recommender, users, events[-1].ts, samples)
    rerank_us = time_rerank_learning(pairs, list_params.rerank_negatives)
    return {
        "catalogue": name,
        "items": len(recommender.models.catalog),
        "events": len(events),
        "users": len(users),
        **stats("list_us", lists_us),
        **stats("learn_us", learn_us),
        **stats("rerank_learn_us", rerank_us),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=default_data(), help="MovieLens folder")
    parser.add_argument("--sim-items", type=int, default=10_000)
    parser.add_argument("--sim-events", type=int, default=200_000)
    parser.add_argument("--sim-users", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--set", action="append", default=[], help="a knob, name=value")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rank_cost.json")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    results = []
    events_path, items_path = converted(args.data)
    ml_events, ml_items = load_events(events_path), load_items(items_path)
    results.append(measure("ml-100k", ml_events, ml_items, overrides, args.samples))
    print(results[-1], flush=True)
    sim_events, sim_items = simulated(args.sim_items, args.sim_events, args.sim_users)
    results.append(measure("simulated 10k items", sim_events, sim_items, overrides, args.samples))
    print(results[-1], flush=True)
    write_json(args.out, {"benchmark": "rank_cost", "overrides": overrides, "results": results})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
