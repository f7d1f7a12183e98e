"""Quality benchmark: prequential replay of MovieLens through the production engine.

    .venv/bin/python bench/quality.py            # the standard run (ML-100K, k=10)
    .venv/bin/python bench/quality.py --sweep    # also the model variants that chose the defaults

Converts the data set with ``recloop dataset movielens`` (into .recloop/data/), replays it with
``recloop replay``'s code, prints the table and writes ``bench/results/quality.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

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


def run(events: Path, items: Path, k: int, overrides: dict[str, Any]) -> dict[str, Any]:
    model, lists = split_params(**overrides)
    config = ReplayConfig(k=k, model=model, lists=lists)
    return replay_files(events, items, config)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sweep", action="store_true", help="also run the model variants")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    args = parser.parse_args()

    converted = ROOT / ".recloop" / "data" / args.data.name
    stats = convert_movielens(args.data, converted)
    print(f"converted {args.data} -> {converted}: {stats.events} events, {stats.items} items")
    events, items = converted / "events.jsonl", converted / "items.jsonl"

    started = time.time()
    report = run(events, items, args.k, {})
    print(format_report(report))
    result: dict[str, Any] = {
        "benchmark": "quality",
        "data": str(args.data),
        "timestamp": int(started),
        **report,
    }
    if args.sweep:
        names = list(VARIANTS)
        with ProcessPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(run, events, items, args.k, VARIANTS[n]) for n in names[1:]]
            reports = [report] + [f.result() for f in futures]
        base = report["most_popular"]["hit_rate"] or 1.0
        print(
            f"\n{'variant':<52} {'HR@' + str(args.k):>8} {'NDCG':>8} {'coverage':>9} "
            f"{'x most-pop':>11}"
        )
        rows = []
        for name, rep in zip(names, reports, strict=True):
            m = rep["model"]
            print(
                f"{name:<52} {m['hit_rate']:>8.4f} {m['ndcg']:>8.4f} {m['coverage']:>9.3f} "
                f"{m['hit_rate'] / base:>11.2f}"
            )
            rows.append({"variant": name, "overrides": VARIANTS[name], **m})
        result["sweep"] = rows
    write_json(args.out, result)  # with the machine facts (harness.results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
