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

# name -> (knobs, time scale); the first is the shipped default
NO_LAYER = {"rerank_depth": 0}  # the learning-to-rank layer off: the blend's own order
ALONE = {
    "uknn_weight": 0.0,
    "stage_weight": 0.0,
    "category_weight": 0.0,
    "popularity_weight": 1e-6,  # a tie-break: items the signal leaves at 0 by popularity
    **NO_LAYER,
}
VARIANTS: dict[str, tuple[dict[str, Any], float]] = {
    "**shipped**: blend (windowed item-kNN + user-kNN 0.3 + stage popularity 0.1 + taste "
    "prior) + learning-to-rank layer (river, top 50, mix 0.5)": ({}, 1.0),
    "the same, event time x30": ({}, 30.0),
    "the same, event time /30": ({}, 1 / 30),
    "blend without the learning-to-rank layer": (NO_LAYER, 1.0),
    "learning-to-rank layer's order alone (mix 0)": ({"rerank_mix": 0.0}, 1.0),
    "+ river ranker, P(like)^1": ({"ranker_power": 1.0}, 1.0),
    "windowed item-kNN alone": (ALONE, 1.0),
    "user-kNN alone": ({**ALONE, "knn_weight": 0.0, "uknn_weight": 1.0}, 1.0),
    "stage popularity alone": (
        {**ALONE, "knn_weight": 0.0, "stage_weight": 1.0, "stage_halfway": 1e12},
        1.0,
    ),
    "co-occurrence learned from the last 20 items, 200 neighbours, 50 interactions kept (before)": (
        {"learn_context": 20, "neighbors": 200, "history_size": 50},
        1.0,
    ),
    "no user-kNN": ({"uknn_weight": 0.0}, 1.0),
    "no stage popularity": ({"stage_weight": 0.0}, 1.0),
    "flat co-occurrence window (all 100 learned positions alike)": ({"window_positions": 0.0}, 1.0),
    "no skips as co-exposure": ({"skip_weight": 0.0}, 1.0),
    "wall-clock decays as before (co-occurrence 180 d, popularity 30 d)": (
        {"cooc_half_life_seconds": 180 * 86_400.0, "popularity_half_life_seconds": 30 * 86_400.0},
        1.0,
    ),
}


_REPLAY_FIELDS = frozenset(f.name for f in dataclasses.fields(ReplayConfig))


def run(
    events: Path,
    items: Path,
    k: int,
    overrides: dict[str, Any],
    *,
    first_half: bool = False,
    time_scale: float = 1.0,
) -> dict[str, Any]:
    """One replay; ``overrides`` name model, list or replay knobs."""
    if time_scale != 1.0:
        scaled = events.parent.with_name(f"{events.parent.name}-time-x{time_scale:g}")
        scale_time(events, scaled / "events.jsonl", time_scale)
        events = scaled / "events.jsonl"
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


def default_data() -> Path:
    """ML-100K in the shared data folder beside the checkout (or beside its worktree)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        path = base / "shared" / "data" / "ml-100k"
        if path.exists():
            return path
    return ROOT.parent / "shared" / "data" / "ml-100k"


def converted(data: Path) -> tuple[Path, Path]:
    """Events and items files of a MovieLens folder, converted once into .recloop/data/."""
    out = ROOT / ".recloop" / "data" / data.name
    events, items = out / "events.jsonl", out / "items.jsonl"
    if not events.exists() or not items.exists():  # parallel tuning runs share a conversion
        stats = convert_movielens(data, out)
        print(f"converted {data} -> {out}: {stats.events} events, {stats.items} items")
    return events, items


def markdown_table(result: dict[str, Any], cost: dict[str, Any] | None) -> str:
    """README's quality table: baselines, the blend, each signal, time scales, costs."""
    k = result["k"]
    head = (
        f"| model | HR@{k} | NDCG@{k} | HR@{k} 1st half | HR@{k} 2nd half | coverage "
        "| x most-popular | x most-popular 2nd half |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]

    def row(name: str, m: dict[str, float], mp: dict[str, float]) -> str:
        return (
            f"| {name} | {m['hit_rate']:.4f} | {m['ndcg']:.4f} | {m['hit_rate_1st_half']:.4f} "
            f"| {m['hit_rate_2nd_half']:.4f} | {m['coverage']:.3f} "
            f"| {m['hit_rate'] / (mp['hit_rate'] or 1):.2f} "
            f"| {m['hit_rate_2nd_half'] / (mp['hit_rate_2nd_half'] or 1):.2f} |"
        )

    mp = result["most_popular"]
    lines.append(row("most-popular (users per item so far, the usual baseline)", mp, mp))
    lines.append(row("recently-popular (the same, 1-day half-life)", result["recent_popular"], mp))
    for variant in result.get("sweep") or [{"variant": "shipped blend", **result}]:
        lines.append(row(variant["variant"], variant["model"], variant["most_popular"]))
    speeds = [v["events_per_second"] for v in result.get("sweep") or [result]]
    lines.append("")
    lines.append(
        f"Replay: {result['events']:,} events, {result['positives']:,} positives; "
        f"{result['events_per_second']:,.0f} events/s (the default run; "
        f"{min(speeds):,.0f}-{max(speeds):,.0f} over the variants, two at a time)."
    )
    for c in (cost or {}).get("results", []):
        lines.append(
            f"Ranking cost, {c['catalogue']} ({c['items']:,} items): a list "
            f"{c['list_us_median']:,.0f} us median, {c['list_us_p99']:,.0f} us p99; learning "
            f"one event {c['learn_us_median']:,.0f} us median, {c['learn_us_p99']:,.0f} us p99"
            + (
                f"; the learning-to-rank layer's river step {c['rerank_learn_us_median']:,.0f} us "
                f"median per positive, {c['rerank_learn_us_p99']:,.0f} us p99."
                if "rerank_learn_us_median" in c
                else "."
            )
        )
    return "\n".join(lines)


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
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sweep", action="store_true", help="also run the model variants")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/")
    parser.add_argument("--time-scale", type=float, default=1.0, help="stretch event time")
    parser.add_argument("--first-half", action="store_true", help="stop at the median (tuning)")
    parser.add_argument("--set", action="append", default=[], help="a knob, name=value")
    args = parser.parse_args()

    events, items = converted(args.data)
    overrides = parse_overrides(args.set)
    if args.out is None:
        tuning = args.first_half or overrides or args.time_scale != 1.0
        name = "quality.json" if not tuning else "quality-tuning.json"
        args.out = ROOT / "bench" / "results" / name

    started = time.time()
    report = run(
        events, items, args.k, overrides, first_half=args.first_half, time_scale=args.time_scale
    )
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
                    {**overrides, **VARIANTS[n][0]},
                    first_half=args.first_half,
                    time_scale=VARIANTS[n][1],
                )
                for n in names[1:]
            ]
            reports = [report] + [f.result() for f in futures]
        rows = [
            {"variant": n, "overrides": VARIANTS[n][0], "time_scale": VARIANTS[n][1], **r}
            for n, r in zip(names, reports, strict=True)
        ]
        result["sweep"] = [{k: v for k, v in row.items() if k not in ("ranker",)} for row in rows]
    cost_path = ROOT / "bench" / "results" / "rank_cost.json"
    cost = orjson.loads(cost_path.read_bytes()) if cost_path.exists() else None
    print()
    print(markdown_table(result, cost))
    write_json(args.out, result)  # with the machine facts (harness.results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
