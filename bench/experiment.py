"""Closed-loop experiments on the live stack: an A/B test with a known winner, and A/A tests.

    .venv/bin/python bench/experiment.py [--duration 240] [--rate 150] [--users 400]
    .venv/bin/python bench/experiment.py --aa [--seeds 20] [--duration 120]

Starts Kafka + Redis, one worker with the experiment declared, publishes a catalogue and runs
``recloop simulate --closed-loop --away-seconds S``: simulated users read their current list
from Redis and choose from it (70 %) by their latent taste, or browse; after a session they
stay away for a while, less long when the session matched their taste
(``pipeline.tooling.returns``), so return rates have a ground truth. Return windows are
``--return-seconds`` (30 s and 90 s: an accelerated timescale for day 1 and day 7).

* **A/B** (default): control non-personalised (trending), treatment personalised. Prints
  ``recloop experiments report`` and, for the three ratio metrics, what the first release's
  action-level formula would have said; writes ``bench/results/experiment.json``.
* **A/A** (``--aa``): ``--experiments-per-run`` experiments, each with two identical
  (personalised) arms, in each of ``--seeds`` runs. The true difference is zero, so a 95 %
  interval should cover zero in about 95 % of the replicates: the coverage of the user-level
  intervals and of the action-level ones, per metric; writes
  ``bench/results/experiment_aa.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Services, add_common_args, bench_settings, log, services  # noqa: E402
from pipeline.cli.common import partitioning, with_redis  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.kafka.topics import ensure_topics, topic_names  # noqa: E402
from pipeline.lists.experiment_outcomes import RATIOS  # noqa: E402
from pipeline.lists.experiment_report import ArmTotals, format_report, report  # noqa: E402
from pipeline.lists.experiment_stats import action_level_compare  # noqa: E402
from pipeline.lists.experiments import load_experiments  # noqa: E402
from pipeline.stores.experiments import read_arms  # noqa: E402
from pipeline.stores.keys import RedisKeys  # noqa: E402
from pipeline.tooling.processes import WorkerProcess  # noqa: E402

PERSONALIZED: dict[str, Any] = {}
TRENDING = {"personalized": False}


def declaration(aa: bool, experiments: int) -> dict[str, Any]:
    """A/B: one experiment, trending vs personalised. A/A: ``experiments`` of two twins."""
    if not aa:
        return {"experiments": [{
            "name": "personalization", "attribution_seconds": 600, "variants": [
                {"name": "non_personalized", "share": 0.5, "changes": TRENDING},
                {"name": "personalized", "share": 0.5, "changes": PERSONALIZED}]}]}  # fmt: skip
    return {"experiments": [{
        "name": f"aa{k}", "traffic": 1.0 / experiments, "attribution_seconds": 600,
        "variants": [{"name": "a", "share": 0.5, "changes": PERSONALIZED},
                     {"name": "b", "share": 0.5, "changes": PERSONALIZED}]}
        for k in range(experiments)]}  # fmt: skip


def live_run(
    svc: Services,
    args: argparse.Namespace,
    doc: dict[str, Any],
    seed: int,
    *,
    sim_args: tuple[str, ...] = (),
    **overrides: Any,
) -> tuple[Settings, dict[tuple[str, str], ArmTotals], float]:
    """One closed-loop run on its own topics and namespace; the arms' sums at its end.

    ``sim_args`` go to ``recloop simulate`` as they are, ``overrides`` to the settings.
    """
    path = svc.workdir / f"experiments-{seed}.json"
    path.write_bytes(orjson.dumps(doc))
    uid = svc.workdir.name[-6:]
    settings = bench_settings(
        svc,
        "experiment",
        experiments_file=path,
        topic_controls=f"bench-exp-{uid}-{seed}.controls",
        topic_partitions=args.partitions,
        experiment_return_seconds=args.return_seconds,
        **overrides,
    )
    ensure_topics(settings)
    worker = WorkerProcess(settings, log_path=svc.workdir / f"worker-{seed}.log").wait_ready(180)
    started = time.monotonic()
    try:
        with (svc.workdir / f"simulator-{seed}.log").open("ab") as sim_log:
            subprocess.run(
                [sys.executable, "-m", "agents", "simulate", "--closed-loop",
                 "--users", str(args.users), "--items", str(args.items), "--rate", str(args.rate),
                 "--duration", str(args.duration), "--seed", str(seed),
                 "--away-seconds", str(args.away_seconds), *sim_args],
                env={**os.environ, **settings.to_env()},
                stdout=sim_log, stderr=subprocess.STDOUT, timeout=args.duration + 180, check=True,
            )  # fmt: skip
        time.sleep(3.0)  # let the worker take the last events
    finally:
        worker.stop()
    elapsed = time.monotonic() - started
    declared = load_experiments(path)
    keys = RedisKeys(settings.redis_namespace)
    parts = partitioning(settings)
    now_ms = time.time_ns() // 1_000_000
    arms = with_redis(
        settings,
        lambda client: read_arms(
            client, keys, parts, declared, windows=settings.return_windows, now_ms=now_ms
        ),
    )
    return settings, arms, elapsed


def action_level(arms: dict[tuple[str, str], ArmTotals], experiment: str, control: str,
                 treatment: str) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The first release's formula on the same counters (every action a trial)."""
    c, t = arms[(experiment, control)].counters, arms[(experiment, treatment)].counters
    out = {}
    for metric, (x, y) in RATIOS.items():
        cmp = action_level_compare(t.get(x, 0), t.get(y, 0), c.get(x, 0), c.get(y, 0))
        out[metric] = dataclasses.asdict(cmp)
    return out


def drop_topics(settings: Settings) -> None:
    """Delete a finished run's topics (an A/A series would otherwise leave hundreds)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.delete_topics(list(topic_names(settings)), operation_timeout=30).values():
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - best effort: a leftover topic is harmless
            log(f"topic not deleted: {exc}")


def ab(svc: Services, args: argparse.Namespace) -> dict[str, Any]:
    doc = declaration(False, 1)
    settings, arms, elapsed = live_run(svc, args, doc, args.seed)
    declared = load_experiments(settings.experiments_file)
    rows = report(declared, arms, windows=settings.return_windows)
    naive = action_level(arms, "personalization", "non_personalized", "personalized")
    print(f"closed loop: {args.users} users, {args.rate}/s for {args.duration:.0f} s "
          f"(away {args.away_seconds:.0f} s, return windows {args.return_seconds} s)")  # fmt: skip
    print(format_report(rows))
    for metric, c in naive.items():
        user = rows[0]["variants"][1]["comparisons"][metric]
        print(f"  {metric}: user-level lift CI [{100 * user['lift_low']:+.1f}%, "
              f"{100 * user['lift_high']:+.1f}%] p={user['p_value']:.2g}; the action-level "
              f"formula would say [{100 * c['lift_low']:+.1f}%, {100 * c['lift_high']:+.1f}%] "
              f"p={c['p_value']:.2g}")  # fmt: skip
    return {"report": rows, "action_level": naive, "run_seconds": elapsed,
            "contention": svc.contention(time.monotonic() - elapsed)}  # fmt: skip


def aa(svc: Services, args: argparse.Namespace) -> dict[str, Any]:
    doc = declaration(True, args.experiments_per_run)
    replicates: list[dict[str, Any]] = []
    started = time.monotonic()
    for n, seed in enumerate(range(args.seed, args.seed + args.seeds)):
        settings, arms, elapsed = live_run(svc, args, doc, seed)
        rows = report(load_experiments(settings.experiments_file), arms,
                      windows=settings.return_windows)  # fmt: skip
        for exp in rows:
            user = exp["variants"][1]["comparisons"]
            naive = action_level(arms, exp["experiment"], "a", "b")
            replicates.append({"seed": seed, "experiment": exp["experiment"],
                               "users": exp["users"], "srm_p": exp["srm"]["p_value"],
                               "user_level": user, "action_level": naive})  # fmt: skip
        drop_topics(settings)
        log(f"A/A run {n + 1}/{args.seeds} (seed {seed}) took {elapsed:.0f} s; "
            f"{_coverage_line(replicates)}")  # fmt: skip
    coverage = {method: _coverage(replicates, method) for method in ("user_level", "action_level")}
    print(f"A/A: {len(replicates)} replicates ({args.seeds} seeds x {args.experiments_per_run} "
          f"experiments), {args.duration:.0f} s each at {args.rate}/s")  # fmt: skip
    for metric in coverage["user_level"]:
        u = coverage["user_level"][metric]
        a = coverage["action_level"].get(metric)
        naive = f"{100 * a['coverage']:.0f} % ({a['covered']}/{a['n']})" if a else "-"
        print(f"  {metric:<18} user-level {100 * u['coverage']:.0f} % ({u['covered']}/{u['n']})"
              f"   action-level {naive}")  # fmt: skip
    srm_flags = sum(r["srm_p"] < 0.001 for r in replicates)
    return {"replicates": replicates, "coverage": coverage, "srm_flags": srm_flags,
            "total_seconds": time.monotonic() - started}  # fmt: skip


def _coverage(replicates: list[dict[str, Any]], method: str) -> dict[str, dict[str, Any]]:
    """Per metric: replicates whose 95 % interval of the difference covers zero."""
    out: dict[str, dict[str, Any]] = {}
    for r in replicates:
        for metric, c in r[method].items():
            if c["diff_low"] is None or c["diff_high"] is None:
                continue
            row = out.setdefault(metric, {"n": 0, "covered": 0})
            row["n"] += 1
            row["covered"] += c["diff_low"] <= 0 <= c["diff_high"]
    for row in out.values():
        row["coverage"] = row["covered"] / row["n"]
    pooled_n = sum(r["n"] for r in out.values())
    if pooled_n:
        covered = sum(r["covered"] for r in out.values())
        out["all metrics"] = {"n": pooled_n, "covered": covered, "coverage": covered / pooled_n}
    return out


def _coverage_line(replicates: list[dict[str, Any]]) -> str:
    u, a = _coverage(replicates, "user_level"), _coverage(replicates, "action_level")
    if "all metrics" not in u or "all metrics" not in a:
        return "no interval yet"
    return (f"coverage so far: user-level {100 * u['all metrics']['coverage']:.0f} %, "
            f"action-level {100 * a['all metrics']['coverage']:.0f} %")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--aa", action="store_true", help="A/A runs (see above)")
    parser.add_argument("--seeds", type=int, default=20, help="A/A: runs, one seed each")
    parser.add_argument(
        "--experiments-per-run", type=int, default=2, help="A/A: replicates per run"
    )
    parser.add_argument("--duration", type=float, default=None, help="A/B 240 s, A/A 120 s")
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--away-seconds", type=float, default=60.0)
    parser.add_argument("--return-seconds", default="30,90")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    add_common_args(parser)
    args = parser.parse_args()
    if args.duration is None:
        args.duration = 120.0 if args.aa else 240.0
    name = "experiment_aa" if args.aa else "experiment"
    out = args.out or ROOT / "bench" / "results" / f"{name}.json"

    with services("experiment", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        result = aa(svc, args) if args.aa else ab(svc, args)
    doc = {
        "benchmark": name,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "timestamp": int(time.time()),
        "config": vars(args) | {"out": str(out)},
        **result,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
