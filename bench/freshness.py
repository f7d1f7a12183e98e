"""Freshness: how long from an event to its user's refreshed list, at a steady event rate.

    .venv/bin/python bench/freshness.py [--rate 1000] [--runs 3] [--workers 1]
                                        [--duration 60] [--users 5000] [--items 2000]

Standard points (``make bench-freshness`` runs both): one worker, 1,000 events/s (goal: p99
< 1 s, no growing backlog) and 2,000 events/s (``--rate 2000``, goal: p99 < 2 s), each for
60 s after a 5 s warm-up, 5,000 users, 2,000 items, three runs (fresh topics, group and
Redis namespace each); every figure is the median of the runs with min-max. Results:
bench/results/freshness.json (1,000/s) and freshness_<rate>.json (other rates).

What is measured
----------------
* **topic path**: a reader of the recommendations topic records, for every list with a
  ``trigger_ts``, ``receive time - trigger_ts``: event sent -> list received, producer and
  consumer hops included (``ts`` is the bench's send time). Only events sent during the
  measured window count. Coalescing (one refresh per user per ``refresh_interval_ms``) is
  part of it: an event within 500 ms of its user's previous refresh waits for the deferred one.
* **Redis path**: for 1 % of the events, the user's ``recs`` key is polled until it reflects
  the event or something newer (``harness.listeners.RedisSampler``).
* **censoring**: users whose last event got no list by the end; when not 0, the percentiles
  are lower bounds.
* **cost**: the worker's CPU per event handled in the window, and the cores the offered rate
  needs at that cost (a figure a busy machine skews far less than latencies).
* **backlog**: the group's committed lag, once a second; the mean over 40-60 % of the run
  against the mean over its last 20 % (Faust commits every 2.8 s); after the producer stops,
  the time until the lag is 0.
* **per 10 s window** (a stall shows up as data): latency p50/p99 by trigger time, and from
  the worker's ``/metrics`` scraped once a second: events/s, lists published per event, the
  event-loop lag (``recloop_event_loop_lag_max_seconds``), mean batch stage times
  (``recloop_batch_stage_seconds{stage}``) and their share of the wall clock, the backlog in
  seconds of work (``recloop_backlog_seconds``), the worker's CPU.

``--profile-seconds N`` samples worker 0 with py-spy for the first N s of the last run's
window (bench/results/<name>_profile.txt). Every run records the CPU other processes used.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from freshness_figures import FIGURES, Observed, analyse, goal_p99_ms, profile_header, report
from harness import pyspy
from harness.kafka import LagSampler, publish_catalogue
from harness.listeners import ListListener, RedisSampler
from harness.machine import CpuMeter
from harness.output import log
from harness.prom import MetricsSampler, fetch_text, prom_sum
from harness.results import write_results
from harness.runs import add_runs_arg, repeat, summarise
from harness.services import (
    Services,
    add_common_args,
    bench_settings,
    services,
    with_new_port,
    worker_knobs,
)
from harness.stats import ratio
from harness.traffic import paced_produce

from pipeline.kafka.topics import ensure_topics
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.simulator import World


def measure(args: argparse.Namespace, svc: Services, i: int) -> dict[str, Any]:
    """One run on fresh topics: workers, paced traffic and every probe; its figures."""
    settings = bench_settings(svc, "freshness", topic_partitions=args.partitions)
    ensure_topics(settings)
    world = World(seed=args.seed + i, n_users=args.users, n_items=args.items)
    publish_catalogue(settings, world.items())
    listener, sampler = ListListener(settings), RedisSampler(settings)
    threads: list[Any] = [listener, sampler]
    for thread in threads:
        thread.start()
    workers: list[WorkerProcess] = []
    spy: list[Any] = []
    profiled = args.profile_seconds > 0 and i == args.runs - 1
    raw = svc.workdir / f"profile-{i}.raw"
    last_sent: dict[str, int] = {}
    rng = random.Random(args.seed + i)
    try:
        for n in range(args.workers):
            log_path = svc.workdir / f"{settings.app_id}-{n}.log"
            workers.append(WorkerProcess(with_new_port(settings), log_path=log_path))
        for w in workers:
            w.wait_ready(120)
        t_measure = time.monotonic() + args.warmup
        lag = LagSampler(settings, t0=t_measure)
        urls, pids = [w.url("/metrics") for w in workers], [w.pid for w in workers]
        scrapes = MetricsSampler(urls, pids, t0=t_measure)
        threads += [lag, scrapes]
        lag.start()
        scrapes.start()
        named = {f"worker-{n}": pid for n, pid in enumerate(pids)}
        meter = CpuMeter({**named, "bench": os.getpid(), **svc.pids()})
        handled: list[float] = []

        def handled_now() -> float:
            return sum(prom_sum(fetch_text(url), "recloop_events_total") for url in urls)

        def on_phase(phase: str) -> None:
            if phase == "measure":
                handled.append(handled_now())
                meter.start()
                if profiled:
                    spy.append(pyspy.start(pids[0], raw, duration=int(args.profile_seconds)))

        def on_event(phase: str, event: dict[str, Any]) -> None:
            if phase == "measure":
                last_sent[event["user_id"]] = event["ts"]
                if rng.random() < args.redis_sample:
                    sampler.add(event["user_id"], event["event_id"], event["ts"])

        phases = paced_produce(
            settings,
            world,
            rate=args.rate,
            phases=[("warmup", args.warmup), ("measure", args.duration)],
            on_phase=on_phase,
            on_event=on_event,
        )
        meter.stop()
        handled.append(handled_now())
        for proc in spy:
            pyspy.stop(proc)
        log("producer stopped; waiting for the backlog to drain")
        drain_s = lag.wait_drained(args.drain_timeout)
        time.sleep(args.refresh_grace)  # deferred (coalesced) refreshes of the last events
        sampler.drain(5)
        final_metrics = [fetch_text(url) for url in urls]
    finally:
        for proc in spy:
            pyspy.stop(proc)
        for w in workers:  # first: a worker left running would outlive the stack
            w.stop()
        for thread in threads:
            if thread.is_alive():
                thread.stop()
    measured = phases["measure"]
    observed = Observed(
        rate=args.rate,
        duration=args.duration,
        phases=phases,
        listener=listener,
        sampler=sampler,
        lag=lag,
        scrapes=scrapes,
        meter=meter,
        handled=(handled[0], handled[1]),
        last_sent=last_sent,
        final_metrics=final_metrics,
        drain_s=drain_s,
        load=svc.contention(measured.pop("start_mono"), measured.pop("end_mono")),
        profile=_profile(raw, args) if profiled else None,
    )
    for phase in phases.values():
        phase.pop("start_mono", None)
        phase.pop("end_mono", None)
    return {**analyse(observed), "knobs": worker_knobs(settings)}


def _profile(raw: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    if not raw.exists():
        log("py-spy wrote no profile")
        return None
    analysis = pyspy.analyze(raw)
    name = result_name(args)
    header = profile_header(raw, args.rate, args.profile_seconds, analysis["samples"])
    path = pyspy.write_profile(name, analysis, header, raw=raw)
    return {"file": str(path), "analysis": analysis}


def result_name(args: argparse.Namespace) -> str:
    """``freshness`` for the standard point (1,000/s, one worker), else with rate and workers.

    >>> result_name(argparse.Namespace(name=None, rate=2000.0, workers=1))
    'freshness_2000'
    """
    if args.name:
        return str(args.name)
    name = "freshness" if args.rate == 1000 else f"freshness_{args.rate:g}"
    return name if args.workers == 1 else f"{name}_w{args.workers}"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("--rate", type=float, default=1000.0, help="events/s (default 1000; standard: 2000 too)")
    add("--workers", type=int, default=1, help="worker processes (default 1)")
    add("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    add("--warmup", type=float, default=5.0, help="unmeasured seconds of traffic first (5)")
    add("--users", type=int, default=5000, help="simulated users (default 5000)")
    add("--items", type=int, default=2000, help="catalogue size (default 2000)")
    add("--partitions", type=int, default=8, help="partitions of the bench topics (default 8)")
    add("--seed", type=int, default=7, help="seed of run 1 (run k uses seed + k - 1)")
    add("--redis-sample", type=float, default=0.01, help="share of events timed on Redis")
    add("--drain-timeout", type=float, default=60.0, help="max wait for the backlog at the end")
    add("--refresh-grace", type=float, default=1.5, help="wait for deferred refreshes (s)")
    add("--profile-seconds", type=float, default=0.0, help="py-spy the last run (0: off)")
    add("--name", default=None, help="results: bench/results/<name>.json (default from --rate)")
    add_runs_arg(p)
    add_common_args(p)
    args = p.parse_args()
    t0 = time.monotonic()
    with services("freshness", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        runs = repeat(args.runs, lambda i: measure(args, svc, i))
        quiet, load = svc.quiet, svc.contention(t0)
    keys = ("runs", "workers", "rate", "duration", "warmup", "users", "items", "partitions")
    summary = summarise(runs, FIGURES)
    met = sum(bool(r["goal"]["met"]) for r in runs)
    result = {
        "config": {k: getattr(args, k) for k in (*keys, "seed", "redis_sample")} | runs[0]["knobs"],
        "summary": summary,
        "goal": {
            "p99_ms_below": goal_p99_ms(args.rate),
            "median_p99_ms": summary["topic_latency_ms.p99"]["median"],
            "runs_met": met,
            "met": met > len(runs) / 2,
        },
        "handled_to_offered": ratio(summary["worker_throughput.handled_rate"]["median"], args.rate),
        "runs": runs,
        "quiet_at_start": quiet,
        "machine_load_percent": load,
        "wall_seconds": time.monotonic() - t0,
    }
    print(report(result))
    path = write_results(result_name(args), result, benchmark="freshness")
    print(f"\nwrote {path} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
