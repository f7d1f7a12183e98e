"""Throughput: the highest sustained events/s of one worker, and of bare Faust on the same data.

    .venv/bin/python bench/throughput.py [--runs 3] [--events 200000] [--users 20000]
                                         [--items 2000] [--max-drain-seconds 60]
                                         [--profile-seconds 20]

Standard run (the defaults, ``make bench-throughput``): 200,000 simulator events of 20,000
users (2,000 items) are pre-loaded into the events topic *before* any consumer starts, so every
consumer below runs against a full backlog and its drain rate is its ceiling. Then ``--runs``
times (3), one pass at a time (the machine has 2 cores), each with a fresh consumer group and
Redis namespace, so every pass does the same work from scratch:

1. **worker**: one ``recloop worker`` (full path: decode, dedupe, features and models, Redis
   writes, list refresh to Redis and Kafka). Progress is the sum of its
   ``recloop_events_total`` (all outcomes) on ``/metrics``, polled every 0.5 s; the rate is
   measured from the first processed event to the last. A backlog not drained within
   ``--max-drain-seconds`` gives the rate over that window (it never ran dry, so it is still
   the sustained rate) and the pass is marked "capped".
2. **ceiling**: ``bench/ceiling_app.py``, a minimal Faust app on exactly the worker's Faust
   settings and event loop (``agents.faust_config``) that decodes each value and forwards it
   to another topic in the worker's batches; progress is its output topic's record count.
   ``--decode-only`` adds the same app without the sends as a second reference.

The two passes of a run alternate their order (worker first in runs 1 and 3), so drift of the
machine's load hits both; the worker/ceiling ratio is computed per run and reported as the
median of the runs, like every other figure (with min-max). Then, once:

3. **profile**: a fresh worker sampled by py-spy for ``--profile-seconds`` (apart from the
   measured passes, so the sampler cannot lower their rates);
   bench/results/throughput_profile.txt.

Every ``RECLOOP_*`` setting the bench does not set itself comes from the environment, worker
and ceiling alike, e.g. ``RECLOOP_FAUST_MONITOR=false .venv/bin/python bench/throughput.py``
measures both without Faust's monitor. CPU of the consumer, the broker, Redis and the bench is
measured over each drain, so a worker waiting on I/O shows as such.
Goals: >= 5,000 events/s per worker and >= 50 % of the ceiling.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from harness import pyspy
from harness.kafka import admin_client, topic_size
from harness.machine import CpuMeter, contention_note, rss_mib
from harness.output import log, table, verdict
from harness.processes import CeilingProcess, drain, worker_facts, worker_progress
from harness.prom import fetch_text
from harness.results import write_results
from harness.runs import Figure, add_runs_arg, figures_table, repeat, summarise
from harness.services import (
    KNOBS,
    Services,
    add_common_args,
    bench_settings,
    fresh_consumer,
    services,
    worker_knobs,
)
from harness.stats import ratio
from harness.traffic import preload

from pipeline.config import Settings
from pipeline.kafka.topics import ensure_topics
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.simulator import World

GOAL_RATE = 5_000.0
GOAL_SHARE = 0.5
FIGURES: list[Figure] = [
    ("worker events/s", "worker.rate", 0),
    ("worker events/s after the first 20 %", "worker.steady_rate", 0),
    ("worker CPU ms per event", "worker.cpu_ms_per_event", 3),
    ("worker CPU % of a core", "worker.cpu_percent.worker", 0),
    ("ceiling events/s (same run)", "ceiling.rate", 0),
    ("ceiling CPU ms per event", "ceiling.cpu_ms_per_event", 3),
    ("worker / ceiling (events/s)", "ratio", 3),
    ("worker / ceiling (CPU per event)", "cpu_ratio", 3),
    ("decode-only events/s", "decode_only.rate", 0),
    ("worker events per batch", "worker.worker.mean_batch_size", 0),
    ("worker RSS MiB", "worker.rss_mib", 0),
    ("worker GC pauses, s (whole process)", "worker.worker.gc_pause_seconds", 2),
    ("worker GC full passes, s", "worker.worker.gc_full_pause_seconds", 2),
    ("other processes, % of a core (worker pass)", "worker.machine_load_percent.others_mean", 0),
]


def worker_pass(settings: Settings, svc: Services, total: int, cap: float) -> dict[str, Any]:
    worker = WorkerProcess(settings, log_path=svc.workdir / f"{settings.app_id}.log")
    try:
        meter = CpuMeter({"worker": worker.pid, "bench": os.getpid(), **svc.pids()})
        result = drain(
            worker_progress(worker), total, cap_seconds=cap, meter=meter, consumer="worker"
        )
        result["machine_load_percent"] = svc.contention(*result.pop("window_mono"))
        result["worker"] = worker_facts(fetch_text(worker.url("/metrics")))
        result["rss_mib"] = rss_mib(worker.pid)
    finally:
        worker.stop()
    return result


def ceiling_pass(
    settings: Settings, svc: Services, total: int, cap: float, *, forward: bool = True
) -> dict[str, Any]:
    log_path = svc.workdir / f"{settings.app_id}.log"
    ceiling = CeilingProcess(settings, log_path=log_path, forward=forward)
    try:
        meter = CpuMeter({"ceiling": ceiling.pid, "bench": os.getpid(), **svc.pids()})
        result = drain(ceiling.progress, total, cap_seconds=cap, meter=meter, consumer="ceiling")
        result["machine_load_percent"] = svc.contention(*result.pop("window_mono"))
        result["rss_mib"] = rss_mib(ceiling.pid)
    finally:
        ceiling.stop()
    return result


def measure(args: argparse.Namespace, svc: Services, settings: Settings, i: int) -> dict[str, Any]:
    """One run: the worker and the ceiling on the same backlog, in alternating order."""
    total, cap = args.events, args.max_drain_seconds
    passes = ["worker", "ceiling"] if i % 2 == 0 else ["ceiling", "worker"]
    out: dict[str, Any] = {"order": passes}
    for name in passes:
        fresh = fresh_consumer(settings, f"{name}{i + 1}")
        if name == "worker":
            out["worker"] = worker_pass(fresh, svc, total, cap)
        else:
            out["ceiling"] = ceiling_pass(fresh, svc, total, cap)
        x = out[name]
        log(f"{name}: {x['rate']:,.0f} events/s{' (capped)' if x['capped'] else ''}")
    if args.decode_only:
        fresh = fresh_consumer(settings, f"decode{i + 1}")
        out["decode_only"] = ceiling_pass(fresh, svc, total, cap, forward=False)
        log(f"decode only: {out['decode_only']['rate']:,.0f} events/s")
    out["ratio"] = ratio(out["worker"]["rate"], out["ceiling"]["rate"])
    # the same ratio from CPU per event: what the rates would give were both CPU-bound on a
    # core of their own; far steadier than the rates when other processes take the CPU
    out["cpu_ratio"] = ratio(out["ceiling"]["cpu_ms_per_event"], out["worker"]["cpu_ms_per_event"])
    log(f"worker / ceiling: {out['ratio'] or 0:.3f} (by CPU per event {out['cpu_ratio'] or 0:.3f})")
    return out


def profile(args: argparse.Namespace, svc: Services, settings: Settings) -> dict[str, Any] | None:
    if args.profile_seconds <= 0:
        return None
    if pyspy.find_pyspy() is None:
        log("py-spy not installed (`.venv/bin/pip install py-spy`); no profile")
        return None
    log(f"profile: py-spy on a fresh worker for {args.profile_seconds:.0f} s")
    fresh = fresh_consumer(settings, "profile")
    worker = WorkerProcess(fresh, log_path=svc.workdir / "worker-profile.log")
    try:
        p = pyspy.profile_worker(
            worker,
            svc.workdir / "profile.raw",
            seconds=args.profile_seconds,
            rate=args.profile_rate,
            total=args.events,
        )
    finally:
        worker.stop()
    p["machine_load_percent"] = load = svc.contention(*p.pop("window_mono"))
    header = (
        f"py-spy {p['sample_rate']} Hz, --nonblocking, on-CPU samples of one recloop worker "
        f"draining a pre-loaded backlog ({p['rate_while_profiled']:,.0f} events/s while "
        f"sampled, worker CPU {p['worker_cpu_percent']:.0f} % of a core, "
        f"{p['analysis']['samples']:,} samples; other processes used "
        f"{load.get('others_mean') or 0:.0f} % of a core meanwhile)"
    )
    raw = svc.workdir / "profile.raw"
    p["file"] = str(pyspy.write_profile("throughput", p["analysis"], header, raw=raw))
    return p


def run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    settings = bench_settings(svc, "throughput", topic_partitions=args.partitions)
    ensure_topics(settings)
    world = World(seed=args.seed, n_users=args.users, n_items=args.items)
    log(f"pre-loading {args.events:,} events of {args.users:,} users into {settings.topic_events}")
    loaded = preload(settings, world, args.events)
    admin = admin_client(settings)
    try:
        in_topic = topic_size(admin, settings.topic_events, settings.topic_partitions)
    finally:
        admin.close()
    if in_topic != args.events:
        raise RuntimeError(f"events topic holds {in_topic:,} records, expected {args.events:,}")
    log(f"pre-loaded in {loaded['seconds']:.1f} s ({loaded['rate']:,.0f}/s)")
    runs = repeat(args.runs, lambda i: measure(args, svc, settings, i))
    summary = summarise(runs, FIGURES)
    worker_rate, share = summary["worker.rate"]["median"], summary["ratio"]["median"]
    return {
        "config": {
            **{k: getattr(args, k) for k in ("runs", "events", "users", "items", "partitions")},
            **{k: getattr(args, k) for k in ("seed", "max_drain_seconds", "decode_only")},
            **worker_knobs(settings),
        },
        "preload": loaded,
        "summary": summary,
        "runs": runs,
        "profile": profile(args, svc, settings),
        "goal": {
            "rate": GOAL_RATE,
            "share_of_ceiling": GOAL_SHARE,
            "rate_met": worker_rate is not None and worker_rate >= GOAL_RATE,
            "share_met": share is not None and share >= GOAL_SHARE,
        },
    }


def report(r: dict[str, Any]) -> str:
    c, s, g = r["config"], r["summary"], r["goal"]
    knobs = ", ".join(f"{k}={c[k]}" for k in sorted(KNOBS))
    title = (
        f"throughput: {c['events']:,} pre-loaded events, {r['preload']['distinct_users']:,} "
        f"users, {c['items']:,} items, {c['partitions']} partitions; median of {c['runs']} "
        f"run(s), the ceiling measured in every run\n{knobs}"
    )
    specs = [f for f in FIGURES if s[f[1]]["n"]]
    parts = [figures_table(s, specs, title=title)]
    rows = []
    for i, run in enumerate(r["runs"]):
        w, ce = run["worker"], run["ceiling"]
        rows.append(
            [
                f"run {i + 1} ({' then '.join(run['order'])})",
                "capped" if w["capped"] else "yes",
                "capped" if ce["capped"] else "yes",
                *(w["cpu_percent"].get(p) for p in ("kafka", "redis", "bench")),
                *(ce["cpu_percent"].get(p) for p in ("kafka", "redis")),
                w["machine_load_percent"].get("others_mean"),
                ce["machine_load_percent"].get("others_mean"),
            ]
        )
    parts.append(
        table(
            ["run", "worker drained", "ceiling drained", "kafka %", "redis %", "bench %"]
            + ["kafka % (ceiling)", "redis % (ceiling)", "others %", "others % (ceiling)"],
            rows,
            title=f"per run: CPU in % of one core (the machine has {os.cpu_count()}); "
            "others: every other process on the machine",
        )
    )
    parts.append(contention_note(r["machine_load_percent"]))
    parts.append(
        f"goal >= {g['rate']:,.0f} events/s per worker: {verdict(g['rate_met'])}; "
        f"goal >= {100 * g['share_of_ceiling']:.0f} % of the ceiling: {verdict(g['share_met'])}"
    )
    p = r.get("profile")
    if p:
        a = p["analysis"]
        parts.append(
            table(
                ["worker stage (innermost recloop step on the stack)", "samples", "%"],
                [[n, k, q] for n, k, q in a["by_stage"][:14]],
                title=f"profile ({p['rate_while_profiled']:,.0f} events/s while sampled): "
                f"{p['file']}",
            )
        )
    return "\n\n".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--events", type=int, default=200_000, help="events pre-loaded (default 200,000)"
    )
    p.add_argument("--users", type=int, default=20_000, help="simulated users (default 20,000)")
    p.add_argument("--items", type=int, default=2_000, help="catalogue size (default 2,000)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--max-drain-seconds", type=float, default=60.0, help="cap on each drain (default 60)"
    )
    p.add_argument(
        "--profile-seconds", type=float, default=20.0, help="py-spy time, 0 = none (default 20)"
    )
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s (default 100)")
    p.add_argument(
        "--decode-only", action="store_true", help="also run the ceiling app without sends"
    )
    p.add_argument("--name", default="throughput", help="result file bench/results/<name>.json")
    add_runs_arg(p)
    add_common_args(p)
    args = p.parse_args()
    t0 = time.monotonic()
    with services("throughput", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        result = run(args, svc)
        result["quiet_at_start"] = svc.quiet
        result["machine_load_percent"] = svc.contention(t0)
    result["wall_seconds"] = time.monotonic() - t0
    print(report(result))
    path = write_results(args.name, result, benchmark="throughput")
    print(f"\nwrote {path} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
