"""Quality benchmark: prequential replay of MovieLens through the production engine.

    .venv/bin/python bench/quality.py            # the standard run (ML-100K, k=10)
    .venv/bin/python bench/quality.py --sweep    # also the model variants that chose the defaults
    .venv/bin/python bench/quality.py --time-scale 30     # every event timestamp stretched x30
    .venv/bin/python bench/quality.py --first-half --set context_size=30   # a tuning run

Converts the data set with ``recloop dataset movielens`` (into .recloop/data/), replays it with
``recloop replay``'s code, prints the table and writes ``bench/results/quality.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results import write_json  # noqa: E402  (bench/ is on sys.path)

from pipeline.tooling.dataset import convert_movielens  # noqa: E402
from pipeline.tooling.replay import (  # noqa: E402
    ReplayConfig,
    format_report,
    replay_files,
    split_params,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "default (item-kNN, recency-weighted, taste prior)": {},
    "+ river ranker, P(like) weight 1": {"ranker_power": 1.0},
    "no taste prior (category weight 0)": {"category_weight": 0.0},
    "no diversity cap": {"category_cap": 1000},
    "kNN over last 10 positives": {"context_size": 10},
    "kNN over last 30 positives": {"context_size": 30},
    "exploration share 10 %": {"exploration_share": 0.1},
    "exploration share 20 %": {"exploration_share": 0.2},
    "category cap 3 (more diverse)": {"category_cap": 3},
}


_REPLAY_FIELDS = frozenset(f.name for f in dataclasses.fields(ReplayConfig))


def run(
    events: Path, items: Path, k: int, overrides: dict[str, Any], *, first_half: bool = False
) -> dict[str, Any]:
    """One replay; ``overrides`` name model, list or replay knobs."""
    replay_knobs = {n: v for n, v in overrides.items() if n in _REPLAY_FIELDS}
    model, lists = split_params(**{n: v for n, v in overrides.items() if n not in _REPLAY_FIELDS})
    config = ReplayConfig(k=k, first_half_only=first_half, model=model, lists=lists, **replay_knobs)
    return replay_files(events, items, config)


def scale_time(source: Path, target: Path, factor: float) -> None:
    """Copy an events file with every ``ts`` stretched by ``factor`` around the first one.

    ``t0 + (ts - t0) * factor``: same events, same order, only the clock runs faster or
    slower (quality must not hang on a wall-clock constant tuned on one data set).
    """
    docs = [orjson.loads(line) for line in source.read_bytes().splitlines() if line.strip()]
    t0 = min(d["ts"] for d in docs)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        for d in docs:
            d["ts"] = t0 + round((d["ts"] - t0) * factor)
            fh.write(orjson.dumps(d) + b"\n")


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` knobs (values parsed as JSON, else kept as strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        try:
            out[name] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out[name] = raw
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sweep", action="store_true", help="also run the model variants")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/")
    parser.add_argument("--time-scale", type=float, default=1.0, help="stretch event time")
    parser.add_argument("--first-half", action="store_true", help="stop at the median (tuning)")
    parser.add_argument("--set", action="append", default=[], help="a knob, name=value")
    args = parser.parse_args()

    converted = ROOT / ".recloop" / "data" / args.data.name
    events, items = converted / "events.jsonl", converted / "items.jsonl"
    if not events.exists() or not items.exists():  # parallel tuning runs share a conversion
        stats = convert_movielens(args.data, converted)
        print(f"converted {args.data} -> {converted}: {stats.events} events, {stats.items} items")
    if args.time_scale != 1.0:
        scaled = converted.with_name(f"{converted.name}-time-x{args.time_scale:g}")
        scale_time(events, scaled / "events.jsonl", args.time_scale)
        events = scaled / "events.jsonl"
        print(f"event time stretched x{args.time_scale:g}: {events}")
    overrides = parse_overrides(args.set)
    if args.out is None:
        tuning = args.first_half or overrides or args.time_scale != 1.0
        name = "quality.json" if not tuning else "quality-tuning.json"
        args.out = ROOT / "bench" / "results" / name

    started = time.time()
    report = run(events, items, args.k, overrides, first_half=args.first_half)
    print(format_report(report))
    result: dict[str, Any] = {
        "benchmark": "quality",
        "data": str(args.data),
        "time_scale": args.time_scale,
        "first_half_only": args.first_half,
        "overrides": overrides,
        "timestamp": int(started),
        **report,
    }
    if args.sweep:
        names = list(VARIANTS)
        with ProcessPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(
                    run,
                    events,
                    items,
                    args.k,
                    {**overrides, **VARIANTS[n]},
                    first_half=args.first_half,
                )  # fmt: skip
                for n in names[1:]
            ]
            reports = [report] + [f.result() for f in futures]
        base = report["most_popular"]["hit_rate"] or 1.0
        print(
            f"\n{'variant':<52} {'HR@' + str(args.k):>8} {'NDCG':>8} {'HR 1st':>8} "
            f"{'HR 2nd':>8} {'coverage':>9} {'x most-pop':>11}"
        )
        rows = []
        for name, rep in zip(names, reports, strict=True):
            m = rep["model"]
            print(
                f"{name:<52} {m['hit_rate']:>8.4f} {m['ndcg']:>8.4f} "
                f"{m['hit_rate_1st_half']:>8.4f} {m['hit_rate_2nd_half']:>8.4f} "
                f"{m['coverage']:>9.3f} {m['hit_rate'] / base:>11.2f}"
            )
            rows.append({"variant": name, "overrides": VARIANTS[name], **m})
        result["sweep"] = rows
    write_json(args.out, result)  # with the machine facts (harness.results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
