"""Closed-loop A/B of the new-item slot on the live stack: does a fair first chance pay?

    .venv/bin/python bench/new_items.py [--seeds 3] [--duration 240] [--share 0.15]
    .venv/bin/python bench/new_items.py --summarize bench/results/new_items.json

Starts Kafka + Redis and, per seed, one worker with an experiment declared: control
``new_item_share`` 0, treatment ``--share``. ``recloop simulate --closed-loop`` runs a world
whose catalogue changes (``pipeline.tooling.churn``): ``--releases-per-minute`` new items
(most by creators of the catalogue), ``--live-channels`` channels going on and off air, old
items retired by tombstones. Time is accelerated like ``bench/experiment.py``'s: an item
counts as new for ``--window`` seconds (the worker's ``RECLOOP_NEW_ITEM_WINDOW_SECONDS`` and
the tally's), not a day.

Two sources, both user-level (``pipeline.lists.experiment_stats``): the simulator's ground
truth per arm (``pipeline.tooling.new_item_tally``: share of list impressions and of events
on new items, the new items' completion and skip rates, overall completion and skip rate,
events per user) and the worker's own experiment report (click-through, completion, skip
rate, events per user, returns, SRM). Prints a table per seed and the seeds pooled by
inverse variance, and writes
``bench/results/new_items.json`` (``bench/plot.py`` draws it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Services, add_common_args, log, services  # noqa: E402
from bench.experiment import drop_topics, live_run  # noqa: E402
from pipeline.lists.experiment_report import format_report, report  # noqa: E402
from pipeline.lists.experiment_stats import (  # noqa: E402
    Z95,
    Sums,
    compare,
    sample_ratio_mismatch,
)
from pipeline.lists.experiments import load_experiments  # noqa: E402
from pipeline.tooling.new_item_tally import METRICS  # noqa: E402

EXPERIMENT = "new_items"


def declaration(share: float) -> dict[str, Any]:
    """One experiment: the slot off (control) against ``share`` of each list."""
    control = {"name": "control", "share": 0.5, "changes": {"new_item_share": 0.0}}
    slot = {"name": "new_item_slot", "share": 0.5, "changes": {"new_item_share": share}}
    return {"experiments": [
        {"name": EXPERIMENT, "attribution_seconds": 600, "variants": [control, slot]}
    ]}  # fmt: skip


def tally_comparisons(tally: dict[str, Any]) -> dict[str, Any]:
    """Treatment against control on each ground-truth metric, with the arms' user counts."""
    arms = {a["variant"]: a for a in tally["arms"] if a["experiment"] == EXPERIMENT}
    control, treatment = arms.get("control"), arms.get("new_item_slot")
    if control is None or treatment is None:
        msg = f"the tally lacks an arm: {sorted(arms)} (did the worker assign users?)"
        raise RuntimeError(msg)
    users = {"control": control["users"], "new_item_slot": treatment["users"]}
    stat, p = sample_ratio_mismatch(users, {"control": 0.5, "new_item_slot": 0.5})
    out: dict[str, Any] = {"users": users, "srm": {"chi2": stat, "p_value": p}, "metrics": {}}
    for metric in METRICS:
        c, t = Sums(**control["sums"][metric]), Sums(**treatment["sums"][metric])
        out["metrics"][metric] = dataclasses.asdict(compare(t, c))
    return out


def _pct(x: float | None, metric: str) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if metric == "events_per_user" else f"{100 * x:.2f} %"


def format_tally(seed: int, cmp: dict[str, Any]) -> str:
    """One seed's ground-truth table: control, treatment, lift with its 95 % interval."""
    users, srm = cmp["users"], cmp["srm"]
    lines = [
        f"seed {seed}: users control {users['control']}, slot {users['new_item_slot']}; "
        f"SRM chi2 {srm['chi2']:.2f} p={srm['p_value']:.3g}",  # fmt: skip
        f"  {'metric':<22}{'control':>10}{'slot':>10}   lift [95 % CI]                p",
    ]
    for metric, c in cmp["metrics"].items():
        lift = "-"
        if c["lift"] is not None:
            low, high = 100 * c["lift_low"], 100 * c["lift_high"]
            lift = f"{100 * c['lift']:+.1f} % [{low:+.1f}, {high:+.1f}]"
        p = f"{c['p_value']:.2g}" if c["p_value"] is not None else "-"
        lines.append(f"  {metric:<22}{_pct(c['control'], metric):>10}"
                     f"{_pct(c['treatment'], metric):>10}   {lift:<30}{p}")  # fmt: skip
    return "\n".join(lines)


WORKER_METRICS = ("click_through", "completion_rate", "skip_rate", "events_per_user",
                  "return_30s", "return_90s")  # fmt: skip


def pooled(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per metric, the seeds' differences pooled by inverse variance (independent runs).

    Each seed's 95 % interval gives its standard error; the pooled difference is reported
    with its interval, p-value and as a lift against the seeds' mean control value.
    """
    per_metric: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for metric, c in run["ground_truth"]["metrics"].items():
            per_metric.setdefault(metric, []).append(c)
        for metric in WORKER_METRICS:
            c = run["worker_report"][0]["variants"][1]["comparisons"].get(metric)
            if c is not None:
                per_metric.setdefault(f"worker:{metric}", []).append(c)
    out: dict[str, dict[str, float | None]] = {}
    for metric, cs in per_metric.items():
        usable = [c for c in cs if c["diff"] is not None and c["diff_high"] > c["diff_low"]]
        if not usable:
            continue
        weights = [(2 * Z95 / (c["diff_high"] - c["diff_low"])) ** 2 for c in usable]
        diff = sum(w * c["diff"] for w, c in zip(weights, usable, strict=True)) / sum(weights)
        se = math.sqrt(1 / sum(weights))
        control = sum(c["control"] for c in usable) / len(usable)
        low, high = diff - Z95 * se, diff + Z95 * se
        out[metric] = {
            "seeds": len(usable), "control": control, "treatment": control + diff,
            "diff": diff, "diff_low": low, "diff_high": high,
            "lift": diff / control if control else None,
            "lift_low": low / control if control else None,
            "lift_high": high / control if control else None,
            "p_value": math.erfc(abs(diff) / se / math.sqrt(2)) if se > 0 else None,
        }  # fmt: skip
    return out


def format_pooled(pool: dict[str, dict[str, float | None]]) -> str:
    """The pooled table: control, treatment, lift with its 95 % interval, p."""
    lines = [f"pooled over seeds (inverse variance):\n  {'metric':<28}{'control':>10}{'slot':>10}"
             "   lift [95 % CI]                p"]  # fmt: skip
    for metric, c in pool.items():
        name = metric.removeprefix("worker:")
        lift = "-"
        if c["lift"] is not None and c["lift_low"] is not None and c["lift_high"] is not None:
            lift = (f"{100 * c['lift']:+.1f} % [{100 * c['lift_low']:+.1f}, "
                    f"{100 * c['lift_high']:+.1f}]")  # fmt: skip
        p = f"{c['p_value']:.2g}" if c["p_value"] is not None else "-"
        label = f"{name} (worker)" if metric.startswith("worker:") else name
        lines.append(f"  {label:<28}{_pct(c['control'], name):>10}"
                     f"{_pct(c['treatment'], name):>10}   {lift:<30}{p}")  # fmt: skip
    return "\n".join(lines)


def summarize(path: Path) -> int:
    """Print a result's tables again (each seed, pooled) and store the pooled figures."""
    doc = orjson.loads(path.read_bytes())
    for run in doc["runs"]:
        print(format_tally(run["seed"], run["ground_truth"]))
        print(format_report(run["worker_report"]))
    doc["pooled"] = pooled(doc["runs"])
    print(format_pooled(doc["pooled"]))
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str))
    return 0


def one_seed(svc: Services, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    tally_path = svc.workdir / f"tally-{seed}.json"
    sim_args = (
        "--releases-per-minute", str(args.releases_per_minute),
        "--live-channels", str(args.live_channels),
        "--on-air-seconds", str(args.on_air_seconds),
        "--retirements-per-minute", str(args.retirements_per_minute),
        "--tally", str(tally_path), "--new-window-seconds", str(args.window),
    )  # fmt: skip
    settings, arms, elapsed = live_run(
        svc, args, declaration(args.share), seed, sim_args=sim_args,
        new_item_window_seconds=args.window,
    )  # fmt: skip
    rows = report(load_experiments(settings.experiments_file), arms,
                  windows=settings.return_windows)  # fmt: skip
    tally = orjson.loads(tally_path.read_bytes())
    cmp = tally_comparisons(tally)
    drop_topics(settings)
    print(format_tally(seed, cmp))
    print(format_report(rows))
    return {"seed": seed, "ground_truth": cmp, "worker_report": rows, "run_seconds": elapsed,
            "overflow_users": tally["overflow_users"],
            "contention": svc.contention(time.monotonic() - elapsed)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="runs, one seed each")
    parser.add_argument(
        "--summarize", type=Path, default=None, help="print (and pool) an existing result"
    )
    parser.add_argument("--seed", type=int, default=11, help="first seed")
    parser.add_argument("--share", type=float, default=0.15, help="treatment new_item_share")
    parser.add_argument("--window", type=float, default=120.0, help="seconds an item is new")
    parser.add_argument("--duration", type=float, default=240.0)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--releases-per-minute", type=float, default=20.0)
    parser.add_argument("--live-channels", type=int, default=20)
    parser.add_argument("--on-air-seconds", type=float, default=60.0)
    parser.add_argument("--retirements-per-minute", type=float, default=5.0)
    parser.add_argument("--away-seconds", type=float, default=60.0)
    parser.add_argument("--return-seconds", default="30,90")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "new_items.json")
    add_common_args(parser)
    args = parser.parse_args()
    if args.summarize is not None:
        return summarize(args.summarize)
    runs = []
    with services("new_items", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        for seed in range(args.seed, args.seed + args.seeds):
            runs.append(one_seed(svc, args, seed))
            log(f"seed {seed} done in {runs[-1]['run_seconds']:.0f} s")
    doc = {
        "benchmark": "new_items",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "timestamp": int(time.time()),
        "config": vars(args) | {"out": str(args.out)},
        "runs": runs,
        "pooled": pooled(runs),
    }
    print(format_pooled(doc["pooled"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
