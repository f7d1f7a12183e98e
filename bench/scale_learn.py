"""The learn step (or, with ``--lists``, the list) of ``bench/scale.py`` alone: fast to repeat,
profile and compare.

    .venv/bin/python bench/scale_learn.py --items 1000000 --events 1000000
    .venv/bin/python bench/scale_learn.py --items 1000000 --events 1000000 --profile /tmp/l.txt
    .venv/bin/python bench/scale_learn.py --variant defaults   # the shipped ModelParams

Builds the same models as ``bench/scale.py`` (same traffic, seed and bulk learning through
``SharedModels.apply_all`` plus the user-kNN, and the same ``--variant``: ``after``, the scale
profile, or ``defaults``), then times ``learn_batch`` + ``apply_learning`` of one new event
of a user whose state holds their remembered interactions, ``--steps`` times,
in CPU time, exactly as ``bench/scale.py`` does at a checkpoint (without the index refreshes
and lists between rounds). The bulk-loaded models are cached in ``--cache`` (a pickle keyed
by items, events and seed) so that a code change to the learn step is measured in a minute
instead of the bulk load's; delete the cache after changing what the models store.

``--profile FILE`` runs ``py-spy`` on this process during the timed steps only (raw
collapsed stacks, ``py-spy record -f raw``); ``--repeat`` times several rounds of steps and
reports the median of their medians (timings drift 10-25 % on a shared machine).

``--lists`` times ``build_list`` instead, as ``bench/scale.py`` does after a learn step: per
step a user's state, one new event learned and applied (not timed), then their list (CPU
time); ``--digest`` then hashes the lists' items, so two trees that rank the same lists
print the same digest::

    .venv/bin/python bench/scale_learn.py --variant defaults --events 5000000 --lists \
        --steps 300 --profile /tmp/lists.txt
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(BENCH))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from common import log, write_results  # noqa: E402
from scale import VARIANTS, traffic_shape  # noqa: E402
from scale_traffic import Traffic, event_doc, record_args  # noqa: E402

from pipeline.features.state import UserState  # noqa: E402
from pipeline.features.update import FeatureParams  # noqa: E402
from pipeline.lists.build import Trigger, build_list  # noqa: E402
from pipeline.lists.recommend import Recommender  # noqa: E402
from pipeline.model.catalog import ItemInfo  # noqa: E402
from pipeline.model.learn import apply_learning, learn_batch  # noqa: E402
from pipeline.model.models import ModelParams, SharedModels  # noqa: E402
from pipeline.model.record import LearnRecord  # noqa: E402
from schemas.events import Event  # noqa: E402

# the variants of bench/scale.py that measure this tree (the others build older trees)
SETUPS = ("after", "defaults")
PARAMS = FeatureParams(
    half_life_seconds=3 * 86_400.0, history_size=50, excluded_size=2_000, dedupe_size=2_000
)


def params_of(traffic: Traffic) -> FeatureParams:
    """The user-state parameters of the traffic's variant (its history length)."""
    return dataclasses.replace(PARAMS, history_size=traffic.history_size)


def event_of(e: dict[str, Any], event_id: str) -> Event:
    """The ``Event`` of a traffic dict (as ``bench/scale.py`` builds it)."""
    return Event.model_validate(event_doc(e, event_id))


def model_params(variant: str) -> ModelParams:
    """The ``ModelParams`` ``bench/scale.py`` measures for ``variant``, as this code has them."""
    return ModelParams(**VARIANTS[variant](ROOT).options.get("model", {}))


def build(
    items: int, events: int, users: int, seed: int, variant: str = "after"
) -> tuple[SharedModels, Traffic]:
    """The models after ``events`` bulk-learned events, as ``bench/scale.py`` fills them."""
    options = VARIANTS[variant](ROOT).options  # the models and traffic bench/scale.py measures
    params = model_params(variant)
    traffic = Traffic(n_items=items, n_users=users, seed=seed, **traffic_shape(options, params))
    models = SharedModels(params)
    for item_id, cats, duration, published, title in traffic.item_infos():
        models.upsert_item(ItemInfo(item_id, cats, duration, published, None, title))
    skip = models.params.skip_weight
    for start in range(0, events, 500):
        batch = traffic.next_batch(min(500, events - start))
        models.apply_all(LearnRecord(*record_args(e)) for e in batch)
        for e in batch:
            if e["weight"] > 0 or skip > 0:
                models.user_knn.add(f"u{e['user']}", models.catalog.get(e["item_id"]))
    return models, traffic


def state_of(models: SharedModels, traffic: Traffic, user: int) -> UserState:
    """A user whose state holds their remembered interactions (``bench/scale.py``)."""
    state = UserState(f"u{user}")
    past = [event_of(doc, event_id) for doc, event_id in traffic.history_docs(user)]
    learn_batch(models, {state.user_id: state}, past, params=params_of(traffic), threshold=0.6)
    state.mark_clean()
    return state


def steps(models: SharedModels, traffic: Traffic, n: int, tag: str) -> list[float]:
    """CPU microseconds of ``n`` learn steps (users drawn by activity)."""
    out, params = [], params_of(traffic)
    for k, user in enumerate(traffic.draw_users(n).tolist()):
        state = state_of(models, traffic, user)
        e = traffic.next_batch(1, users=np.array([user]))[0]
        ev = event_of(e, f"s{tag}-{k}-{user}")
        t = time.thread_time_ns()
        learning = learn_batch(models, {state.user_id: state}, [ev], params=params, threshold=0.6)
        apply_learning(models, learning)
        out.append((time.thread_time_ns() - t) / 1e3)
    return out


def list_steps(
    models: SharedModels, recommender: Recommender, traffic: Traffic, n: int, tag: str
) -> tuple[list[float], list[list[str]]]:
    """CPU microseconds of ``n`` list builds, each after its user's new event, and the lists."""
    out, lists, params = [], [], params_of(traffic)
    for k, user in enumerate(traffic.draw_users(n).tolist()):
        state = state_of(models, traffic, user)
        e = traffic.next_batch(1, users=np.array([user]))[0]
        ev = event_of(e, f"l{tag}-{k}-{user}")
        learning = learn_batch(models, {state.user_id: state}, [ev], params=params, threshold=0.6)
        apply_learning(models, learning)
        t = time.thread_time_ns()
        built = build_list(recommender, (), state, Trigger(ev.event_id, ev.ts), now_ms=ev.ts,
                           version="bench")  # fmt: skip
        out.append((time.thread_time_ns() - t) / 1e3)
        lists.append([i["item_id"] for i in orjson.loads(built.doc)["items"]])
    return out, lists


def digest(models: SharedModels) -> str:
    """A hash of what the steps changed: co-occurrence rows, statistics, ranker weights.

    Two versions of the learn step that give the same digest from the same cached models
    learned exactly the same thing (bit for bit).
    """
    h = hashlib.sha256()
    rows, offsets, ids, weights = models.cooc.table.to_arrays()
    for a in (rows, offsets, ids, weights, models.cooc.mass, models.stats.popularity):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr(sorted(models.ranker.snapshot()["weights"].items())).encode())
    h.update(repr(models.ranker.snapshot()["intercept"]).encode())
    return h.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variant", choices=SETUPS, default="after")
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default="/tmp/recloop-scale-learn")
    parser.add_argument("--profile", help="py-spy raw output of the timed steps")
    parser.add_argument("--results", help="write bench/results/NAME.json")
    parser.add_argument(
        "--digest", action="store_true", help="print a hash of the models after the steps"
    )
    parser.add_argument("--lists", action="store_true", help="time build_list, not learning")
    args = parser.parse_args()
    sys.setrecursionlimit(100_000)
    name = f"{args.variant}-{args.items}-{args.events}-{args.users}-{args.seed}.pickle"
    cache = Path(args.cache) / name
    if cache.exists():
        models, traffic = pickle.loads(cache.read_bytes())
        # the cache holds what was learned; the knobs are this code's (a knob added since
        # the cache was written would otherwise be missing from its pickled params)
        models.params = model_params(args.variant)
        log(f"loaded {cache}")
    else:
        t = time.monotonic()
        models, traffic = build(args.items, args.events, args.users, args.seed, args.variant)
        log(f"built {args.items:,} items / {args.events:,} events in {time.monotonic() - t:.0f} s")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps((models, traffic), protocol=pickle.HIGHEST_PROTOCOL))
    gc.collect()
    recommender = Recommender(models)
    if args.lists:
        recommender.refresh_indexes(traffic.now())
    built: list[list[str]] = []

    def timed_steps(n: int, tag: str) -> list[float]:
        if not args.lists:
            return steps(models, traffic, n, tag)
        took, lists = list_steps(models, recommender, traffic, n, tag)
        built.extend(lists)
        return took

    timed_steps(200, "warm")
    built.clear()
    spy = None
    if args.profile:
        py_spy = Path(sys.executable).parent / "py-spy"
        cmd = [str(py_spy), "record", "-o", args.profile, "-f", "raw", "-r", "1000"]
        spy = subprocess.Popen([*cmd, "--pid", str(os.getpid())])  # noqa: S603
        time.sleep(2.0)
    rounds = []
    for r in range(args.repeat):
        took = timed_steps(args.steps, str(r))
        rounds.append(
            {
                "p50": statistics.median(took),
                "p99": float(np.percentile(took, 99)),
                "mean": statistics.fmean(took),
            }  # fmt: skip
        )
        log(f"round {r}: p50 {rounds[-1]['p50']:.1f} us, p99 {rounds[-1]['p99']:.1f} us (cpu)")
    if spy is not None:
        spy.send_signal(2)
        spy.wait()
    p50 = statistics.median(r["p50"] for r in rounds)
    p99 = statistics.median(r["p99"] for r in rounds)
    what = "build_list" if args.lists else "learn step"
    if args.digest:
        if args.lists:
            lists_hash = hashlib.sha256(orjson.dumps(built)).hexdigest()[:16]
            log(f"lists digest ({len(built)} lists): {lists_hash}")
        else:
            log(f"models digest after the steps: {digest(models)}")
    log(f"{what} p50 / p99 (medians of {args.repeat} rounds): {p50:.1f} / {p99:.1f} us CPU")
    if args.results:
        key = "list_cpu_us" if args.lists else "learn_cpu_us"
        write_results(
            args.results,
            {"args": vars(args), "rounds": rounds, f"{key}_p50": p50, f"{key}_p99": p99},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
