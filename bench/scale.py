"""Scale benchmark: model memory and per-event / per-list costs against catalogue size and traffic.

    make bench-scale                           # this tree: 10k / 100k / 1M items, 1M and 5M events
    .venv/bin/python bench/scale.py --variants before,after   # re-measure the base commit too
    .venv/bin/python bench/scale.py --items 10000 --events 200000   # a quick look

In-process, no Kafka, no Redis: simulator-shaped traffic (``bench/scale_traffic.py``: Zipf
popularity, 12 categories, 50,000 users, ~80 % positive events; a record's context is the
variant's ``learn_context`` positives, a user remembers its ``history`` interactions: 20 and
50 for the scale profile, 100 and 200 for the shipped defaults) is learned
through ``SharedModels.apply_all`` in batches of 500 records (what a worker's
``apply_learning`` does), then at each checkpoint (events learned so far) the run measures:

* RSS of the process above its RSS before the models existed (catalogue, co-occurrence,
  item statistics, candidate indexes, caches, and the per-worker user-kNN, filled by every
  event as ``observe_user`` fills it in a worker that owns all 50,000 users: everything
  the models hold); the user-kNN's own bytes apart (``uknn MiB``);
* the learn step: ``learn_batch`` + ``apply_learning`` of one new event of a user whose
  state holds their remembered interactions (what a worker does per event for the models);
* ``build_list`` of that user right after (ranking, reasons, encoding);
* ``refresh_indexes`` after each 2,000 further events (2 s of traffic at 1,000 events/s,
  the worker's timer interval); the first one after the bulk load is reported on its own.

Each (variant, items) pair runs in a fresh process (clean RSS) that imports ``pipeline``
from the variant's source tree; "before" is ``BASE_COMMIT`` extracted with ``git archive``.
A variant is a name, a tree and options (``ModelParams`` overrides today; a multi-worker or
sharded variant adds its own option and column group in ``VARIANTS``). The lists built for
the sampled users are kept (``bench/results/scale_lists.json``) so that variants can be
compared item for item (overlap@20 with "before"). Timing: ~25 min for the default run on
a quiet 2-core machine (5M events x 3 catalogue sizes); "before" takes ~2 h.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BASE_COMMIT = "82ba259"  # main when the bounded-state work started (issue #16 part 1)
LEARN_BASE_COMMIT = "94cf086"  # main when the learn-step work started (issue #16 item 2)
LISTS_BASE_COMMIT = "e89d0f2"  # main when the list-cost work started (issue #16 item 2)


@dataclass(frozen=True)
class Variant:
    """What one column group measures: a source tree and its options."""

    name: str
    tree: Path
    options: dict[str, Any] = field(default_factory=dict)


def _before(workdir: Path) -> Variant:
    from common import source_tree  # not at import: the child imports ``pipeline`` from its tree

    return Variant("before", source_tree(BASE_COMMIT, workdir))


def _learn_before(workdir: Path) -> Variant:
    from common import source_tree

    return Variant("learn-before", source_tree(LEARN_BASE_COMMIT, workdir))


def _lists_before(workdir: Path) -> Variant:
    from common import source_tree

    return Variant("lists-before", source_tree(LISTS_BASE_COMMIT, workdir))


# The figures of README's "Model at scale" table: 200 neighbours and 20-item learning
# contexts (the traffic's contexts are 20 items), the defaults until the quality work of
# issue #14 raised them to 400 and 100 for ML-100K's sake; a deployment at a million items
# sets RECLOOP_MODEL_NEIGHBORS=200 RECLOOP_LEARN_CONTEXT=20 to get these costs.
SCALE_PROFILE: dict[str, Any] = {"neighbors": 200, "learn_context": 20}
# The traffic follows the settings under test: a record's context is the variant's
# ``learn_context`` (``ModelParams``), a user remembers ``history`` interactions (the
# tree's ``RECLOOP_HISTORY_SIZE`` default unless the variant says otherwise). The scale
# profile remembered 50 (``RECLOOP_HISTORY_SIZE=50``); trees from before ``learn_context``
# existed get the scale profile's traffic spelled out.
SCALE_TRAFFIC: dict[str, Any] = {"context": 20, "history": 50}

VARIANTS: dict[str, Callable[[Path], Variant]] = {
    "after": lambda _: Variant(
        "after", ROOT, {"model": SCALE_PROFILE, "traffic": {"history": SCALE_TRAFFIC["history"]}}
    ),
    # the shipped defaults, nothing overridden: ModelParams() and RECLOOP_HISTORY_SIZE's
    # default (issue #16's memory goal is stated "with defaults")
    "defaults": lambda _: Variant("defaults", ROOT, {}),
    # the defaults without the co-occurrence memory budget (a bound never reached): what
    # the budget changes in the lists (--reference defaults-unbudgeted)
    "defaults-unbudgeted": lambda _: Variant(
        "defaults-unbudgeted", ROOT, {"model": {"neighbor_memory_mb": 1 << 20}}
    ),
    "before": _before,
    # main before the learn-step work (same bounded model): the same-run reference
    "learn-before": _learn_before,
    # main before the list-cost work, with the shipped defaults: the same-run reference
    "lists-before": _lists_before,
    # the same code with rows that never fill up: what the bound alone changes
    "unbounded": lambda _: Variant(
        "unbounded",
        ROOT,
        {
            "model": {**SCALE_PROFILE, "neighbors": 1_000_000},
            "traffic": {"history": SCALE_TRAFFIC["history"]},
        },
    ),
}
OLD_TREES = ("before", "learn-before")  # their options carry SCALE_TRAFFIC (see main)


def traffic_shape(options: dict[str, Any], model_params: Any) -> dict[str, int]:
    """The context and history lengths of a variant's traffic (in the child, its own tree).

    Explicit ``traffic`` options win; otherwise the context is the variant's
    ``learn_context`` and the history the tree's default ``history_size`` (not read from
    the environment: the benchmark measures settings, not whatever ``RECLOOP_*`` is set).
    """
    given = options.get("traffic", {})
    context = given.get("context", getattr(model_params, "learn_context", None))
    history = given.get("history")
    if history is None:
        from pipeline.config import Settings  # the variant's tree (the child's sys.path)

        history = Settings.model_fields["history_size"].default
    if context is None:
        msg = "this tree's ModelParams has no learn_context: pass traffic.context"
        raise ValueError(msg)
    return {"context": int(context), "history": int(history)}


# --------------------------------------------------------------------------- child process
SAMPLES = ("learn_us", "learn_cpu_us", "list_ms", "list_cpu_ms", "refresh_ms", "refresh_cpu_ms")


def run_one(
    tree: str, items: int, checkpoints: list[int], users: int, seed: int, options: dict[str, Any]
) -> dict[str, Any]:
    """Learn up to each checkpoint and measure there (runs in the child process)."""
    sys.path.insert(0, tree)
    sys.path.insert(1, str(BENCH))
    import numpy as np
    from common import rss_mib, timed
    from scale_traffic import CATEGORIES, Traffic, event_doc, record_args

    import pipeline
    from pipeline.features.state import UserState
    from pipeline.features.update import FeatureParams
    from pipeline.lists.build import Trigger, build_list
    from pipeline.lists.recommend import Recommender
    from pipeline.model.catalog import ItemInfo
    from pipeline.model.learn import apply_learning, learn_batch
    from pipeline.model.models import ModelParams, SharedModels
    from pipeline.model.record import LearnRecord
    from schemas.events import Event

    assert Path(pipeline.__file__).is_relative_to(tree), pipeline.__file__
    model_params = ModelParams(**options.get("model", {}))
    shape_of_traffic = traffic_shape(options, model_params)
    traffic = Traffic(n_items=items, n_users=users, seed=seed, **shape_of_traffic)
    params = FeatureParams(
        half_life_seconds=3 * 86_400.0,
        history_size=shape_of_traffic["history"],
        excluded_size=2_000,
        dedupe_size=2_000,
    )
    gc.collect()
    rss0 = rss_mib()
    models = SharedModels(model_params)
    recommender = Recommender(models)
    t = time.perf_counter()
    for item_id, cats, duration, published, title in traffic.item_infos():
        models.upsert_item(ItemInfo(item_id, cats, duration, published, None, title))
    out: dict[str, Any] = {"pipeline": pipeline.__file__, "items": items, "checkpoints": []}
    out["traffic"] = shape_of_traffic
    out["model_params"] = {
        k: v
        for k, v in dataclasses.asdict(model_params).items()
        if isinstance(v, int | float | str | None)
    }
    out["register_s"] = time.perf_counter() - t

    def record(e: dict[str, Any]) -> Any:
        return LearnRecord(*record_args(e))

    def event(e: dict[str, Any], event_id: str) -> Event:
        return Event.model_validate(event_doc(e, event_id))

    applying = [0.0]  # CPU seconds in ``apply_all`` (the bulk minus generating traffic)

    knn = getattr(models, "user_knn", None)  # per-worker user-kNN (trees that have one)
    skip = models.params.skip_weight  # a skip's affinity (co-exposure), see features.sequence

    def bulk(n: int) -> float:
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            events = traffic.next_batch(min(500, n - start))
            records = [record(e) for e in events]
            with timed() as took:
                models.apply_all(records)
                if knn is not None:  # what ``observe_user`` adds: every user is this worker's
                    index = models.catalog.get
                    for e in events:
                        if e["weight"] > 0 or skip > 0:  # affinity_of(weight) > 0
                            knn.add(f"u{e['user']}", index(e["item_id"]))
            applying[0] += took[1] / 1e6
        return time.perf_counter() - t0

    def state_of(user: int) -> UserState:
        state = UserState(f"u{user}")
        past = [event(doc, event_id) for doc, event_id in traffic.history_docs(user)]
        learn_batch(models, {state.user_id: state}, past, params=params, threshold=0.6)
        state.mark_clean()
        return state

    for target in checkpoints:
        n = max(0, target - traffic.position)
        applying[0] = 0.0
        bulk_s = bulk(n)
        gc.collect()
        point: dict[str, Any] = {
            "events": target,
            "bulk_s": bulk_s,
            "bulk_us_per_event": 1e6 * bulk_s / max(1, n),
            "apply_cpu_us": 1e6 * applying[0] / max(1, n),  # per record, batches of 500
        }
        point["rss_mib"] = rss_mib() - rss0
        point["shape"] = shape(models, np)
        with timed() as first:
            recommender.refresh_indexes(traffic.now())
        point["first_refresh_ms"], point["first_refresh_cpu_ms"] = first[0] / 1e3, first[1] / 1e3
        samples: dict[str, list[float]] = {k: [] for k in SAMPLES}
        lists = {}
        for rnd in range(10):
            bulk(2_000)
            with timed() as took:
                recommender.refresh_indexes(traffic.now())
            samples["refresh_ms"].append(took[0] / 1e3)
            samples["refresh_cpu_ms"].append(took[1] / 1e3)
            for user in traffic.draw_users(100).tolist():
                state = state_of(user)
                e = traffic.next_batch(1, users=np.array([user]))[0]
                ev = event(e, f"m{target}-{rnd}-{user}")
                with timed() as took:
                    learning = learn_batch(
                        models, {state.user_id: state}, [ev], params=params, threshold=0.6
                    )
                    apply_learning(models, learning)
                samples["learn_us"].append(took[0])
                samples["learn_cpu_us"].append(took[1])
                with timed() as took:
                    built = build_list(
                        recommender, (), state, Trigger(ev.event_id, ev.ts), now_ms=ev.ts,
                        version="bench",
                    )  # fmt: skip
                samples["list_ms"].append(took[0] / 1e3)
                samples["list_cpu_ms"].append(took[1] / 1e3)
                doc = json.loads(built.doc)
                lists[f"{rnd}-{user}"] = [i["item_id"] for i in doc["items"]]
        point.update(samples, lists=lists, rss_after_mib=rss_mib() - rss0)
        out["checkpoints"].append(point)
        log = f"  {items:,} items, {target:,} events: rss +{point['rss_mib']:.0f} MiB"
        print(f"{log}, bulk {point['bulk_us_per_event']:.0f} us/event", file=sys.stderr)
    out["categories"] = len(CATEGORIES)
    return out


def shape(models: Any, np: Any) -> dict[str, Any]:
    """Sizes of the model state, from whichever structures the tree has."""
    cooc = models.cooc
    if hasattr(cooc, "table"):  # bounded NeighborTable
        lengths = cooc.table.lengths()
        return {
            "pairs": int(lengths.sum()),
            "longest_row": int(lengths.max(initial=0)),
            "arena": cooc.table.used,  # entries allocated to blocks (free ones included)
            # packing and budget figures, from trees that have them
            "free_slots": cooc.table.free_slots() if hasattr(cooc.table, "free_slots") else None,
            "compactions": getattr(cooc.table, "compactions", None),
            "compact_s": getattr(cooc.table, "compact_seconds", None),
            "budget_passes": getattr(cooc.table, "budget_passes", None),
            "high_water": getattr(cooc.table, "high_water", None),
            "catalog": len(models.catalog),
            "model_bytes": models.nbytes(),
            "cooc_bytes": cooc.nbytes(),
            **knn_shape(models),
        }
    lengths = np.array([len(r) for r in cooc.rows.values()] or [0])
    return {
        "pairs": int(lengths.sum()),
        "longest_row": int(lengths.max()),
        "catalog": len(models.catalog),
    }


def knn_shape(models: Any) -> dict[str, Any]:
    """The user-kNN's size, when the tree's has one that measures itself."""
    knn = getattr(models, "user_knn", None)
    if knn is None or not hasattr(knn, "nbytes"):
        return {}
    users = len(knn.users())
    return {"uknn_users": users, "uknn_entries": knn.entries(), "uknn_bytes": knn.nbytes()}


# --------------------------------------------------------------------------- parent process
def run_variant(variant: Variant, items: int, args: argparse.Namespace) -> dict[str, Any]:
    """One (variant, items) run in a fresh process; its checkpoints summarised, lists apart."""
    from common import MachineLoad, contention_note, log, summary

    load = MachineLoad()
    load.start()
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        cmd = [sys.executable, __file__, "--child", str(variant.tree), "--items", str(items)]
        cmd += ["--events", args.events, "--users", str(args.users), "--seed", str(args.seed)]
        cmd += ["--options", json.dumps(variant.options)]
        t = time.monotonic()
        subprocess.run([*cmd, "--child-out", tmp.name], check=True)
        result: dict[str, Any] = json.loads(Path(tmp.name).read_text())
    load.stop()
    # CPU of the rest of the machine while this run learned and measured (% of one core)
    result["machine_load"] = load.window(t)
    log(f"{variant.name}/{items}: {contention_note(result['machine_load'], 'timings suspect')}")
    result.update(wall_s=time.monotonic() - t, events=args.events, users=args.users)
    for p in result["checkpoints"]:
        for key in SAMPLES:
            p[key] = summary(p[key])
    return result


def overlap(lists: dict[str, list[str]], ref: dict[str, list[str]]) -> float | None:
    """Mean share of a reference list's items that a variant's list holds too."""
    users = [u for u in lists if u in ref and ref[u]]
    if not users:
        return None
    return sum(len(set(lists[u]) & set(ref[u])) / len(ref[u]) for u in users) / len(users)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", default="10000,100000,1000000")
    parser.add_argument("--events", default="1000000,5000000", help="checkpoints (events learned)")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", default="after", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--results", default="scale", help="name of the results file")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="table times")
    parser.add_argument(
        "--reference", default="before", help="variant whose lists the overlap column compares"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    checkpoints = [int(x) for x in args.events.split(",")]
    if args.child:
        options = json.loads(args.options)
        result = run_one(args.child, int(args.items), checkpoints, args.users, args.seed, options)
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    sys.path.insert(0, str(ROOT))
    from common import fmt, log, table, write_results

    path = BENCH / "results" / f"{args.results}.json"
    lists_path = BENCH / "results" / f"{args.results}_lists.json"
    runs = json.loads(path.read_text()).get("runs", {}) if path.exists() else {}
    lists = json.loads(lists_path.read_text()) if lists_path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="recloop-scale-") as workdir:
        variants = [VARIANTS[name](Path(workdir)) for name in args.variants.split(",")]
        variants = [
            Variant(v.name, v.tree, {**v.options, "traffic": SCALE_TRAFFIC})
            if v.name in OLD_TREES
            else v
            for v in variants
        ]
        for variant in variants:
            for items in (int(x) for x in args.items.split(",")):
                log(f"{variant.name}: {items:,} items, checkpoints {args.events}")
                run = run_variant(variant, items, args)
                key = f"{variant.name}/{items}"
                lists[key] = {str(p["events"]): p.pop("lists") for p in run["checkpoints"]}
                runs[key] = run
    # runs not repeated keep their stored results when they measured the same thing
    same = {k: r for k, r in runs.items() if (r["events"], r["users"]) == (args.events, args.users)}
    rows = []
    for key, run in sorted(same.items(), key=lambda kv: (int(kv[0].split("/")[1]), kv[0])):
        name, items = key.split("/")
        for p in run["checkpoints"]:
            ref = lists.get(f"{args.reference}/{items}", {}).get(str(p["events"]))
            mine = lists.get(key, {}).get(str(p["events"]))
            compare = ref and mine and name != args.reference
            p["overlap_at_20_vs_reference"] = overlap(mine, ref) if compare else None
            p["reference"] = args.reference
            c = "_cpu" if args.clock == "cpu" else ""
            learn, lists_ms, refresh = p[f"learn{c}_us"], p[f"list{c}_ms"], p[f"refresh{c}_ms"]
            rows.append(
                [name, f"{int(items):,}", f"{p['events']:,}", fmt(p["shape"]["pairs"]),
                 fmt(p["shape"]["longest_row"]), fmt(p["rss_mib"], 0),
                 fmt(p["shape"].get("uknn_bytes", 0) / 2**20, 0), fmt(p.get("apply_cpu_us")),
                 fmt(learn["mean"], 0), fmt(learn["p99"], 0),
                 fmt(lists_ms["mean"], 2), fmt(lists_ms["p99"], 2),
                 fmt(refresh["p50"], 1), fmt(refresh["max"], 1),
                 fmt(p[f"first_refresh{c}_ms"], 0), fmt(p["overlap_at_20_vs_reference"], 3)]
            )  # fmt: skip
    headers = ["variant", "items", "events", "pairs", "longest row", "model RSS MiB",
               "uknn MiB", "apply us (cpu, batches)", "learn us",
               "learn p99", "list ms", "list p99", "refresh ms", "refresh max",
               "first refresh", f"overlap@20 vs {args.reference}"]  # fmt: skip
    title = f"scale: in-process model state and costs ({args.clock} time)"
    print(table(headers, rows, title=title))
    lists_path.parent.mkdir(parents=True, exist_ok=True)
    lists_path.write_text(json.dumps(lists))
    out = write_results(
        args.results, {"runs": same, "base_commit": BASE_COMMIT, "args": vars(args)}
    )
    log(f"wrote {out} and {lists_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
