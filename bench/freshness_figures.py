"""Freshness figures: from what one run of bench/freshness.py observed to its results, and the
report of several runs (medians with min-max, the median run's 10 s windows).

Kept apart from the orchestration in ``freshness.py``: this part starts nothing and reads
only what the run's threads recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.kafka import LagSampler
from harness.listeners import ListListener, RedisSampler
from harness.machine import CpuMeter, contention_note
from harness.output import fmt, table, verdict
from harness.prom import MetricsSampler, prom_sum, window_figures, windows
from harness.runs import Figure, figures_table
from harness.stats import median_run, summary

WINDOW_SECONDS = 10
TRIGGERS = ("event", "deferred", "background")
FIGURES: list[Figure] = [
    ("topic p50 ms (event sent -> list received)", "topic_latency_ms.p50", 0),
    ("topic p99 ms", "topic_latency_ms.p99", 0),
    ("topic max ms", "topic_latency_ms.max", 0),
    ("redis p50 ms (event sent -> recs key)", "redis_latency_ms.p50", 0),
    ("redis p99 ms", "redis_latency_ms.p99", 0),
    ("achieved produce rate (events/s)", "produced.rate", 0),
    ("events handled per s in the window", "worker_throughput.handled_rate", 0),
    ("worker CPU ms per event", "worker_throughput.worker_cpu_ms_per_event", 3),
    ("cores needed at the offered rate", "worker_throughput.cores_needed_at_rate", 2),
    ("lists published per event", "worker_metrics.lists_per_event", 3),
    ("lists built per event", "worker_metrics.lists_built_per_event", 3),
    ("list build, mean ms", "worker_metrics.list_build_mean_ms", 2),
    ("event-loop lag, max ms", "worker_metrics.loop_lag_max_ms", 0),
    ("event wait before the worker took it, mean ms", "worker_metrics.event_wait_mean_ms", 0),
    ("worker: taken -> list published, mean ms", "worker_metrics.worker_event_to_list_mean_ms", 0),
    ("batch prepare stage, mean ms", "worker_metrics.stage_prepare_mean_ms", 1),
    ("batch commit stage, mean ms", "worker_metrics.stage_commit_mean_ms", 1),
    ("backlog, max s of work", "worker_metrics.backlog_seconds_max", 2),
    ("group lag, mean over the last 20 %", "backlog.end_mean", 0),
    ("drain after producer stop (s)", "backlog.drain_after_stop_s", 1),
    ("users whose last event got no list", "censoring.users_last_event_without_list", 0),
    ("other processes, % of a core", "machine_load_percent.others_mean", 0),
]


def goal_p99_ms(rate: float) -> float:
    """p99 < 1 s up to 1,000 events/s, < 2 s above (issue #15's two standard points).

    >>> goal_p99_ms(1000), goal_p99_ms(2000)
    (1000.0, 2000.0)
    """
    return 1000.0 if rate <= 1000 else 2000.0


@dataclass
class Observed:
    """Everything one run recorded (threads stopped, workers gone)."""

    rate: float
    duration: float
    phases: dict[str, Any]
    listener: ListListener
    sampler: RedisSampler
    lag: LagSampler
    scrapes: MetricsSampler
    meter: CpuMeter
    handled: tuple[float, float]  # events handled by all workers at measure start / end
    last_sent: dict[str, int]  # user -> ts of their last event in the measured window
    final_metrics: list[str]
    drain_s: float | None
    load: dict[str, Any]
    profile: dict[str, Any] | None = None


def _lag_mean(samples: list[tuple[float, int]], lo: float, hi: float) -> tuple[float, int]:
    chosen = [lag for t, lag in samples if lo <= t < hi]
    return (sum(chosen) / len(chosen), max(chosen)) if chosen else (math.nan, 0)


def latency_windows(pairs: list[tuple[int, int]], lo_ms: int, hi_ms: int) -> dict[int, Any]:
    """p50/p99/max of (received, trigger) pairs by 10 s window of the trigger time.

    >>> latency_windows([(1_100, 1_000), (12_500, 12_000)], 0, 20_000)[10]["p50"]
    500.0
    """
    out = {}
    step = WINDOW_SECONDS * 1000
    for start in range(lo_ms, hi_ms, step):
        lat = [float(r - t) for r, t in pairs if start <= t < start + step]
        if lat:
            s = summary(lat)
            out[(start - lo_ms) // 1000] = {"lists": len(lat), **{k: s[k] for k in ("p50", "p99")}}
    return out


def analyse(o: Observed) -> dict[str, Any]:
    """The figures of one run."""
    measure, d = o.phases["measure"], o.duration
    window_s = o.meter.stop_time - o.meter.start_time
    handled = o.handled[1] - o.handled[0]
    worker_cpu_s = sum(o.meter.cpu_seconds(k) or 0.0 for k in o.meter.pids if k[:6] == "worker")
    cpu_ms = 1000 * worker_cpu_s / handled if handled else None
    lo_ms, hi_ms = measure["start_ms"], measure["end_ms"]
    in_window = [(r, t) for r, t in o.listener.samples if lo_ms <= t <= hi_ms]
    by_latency = latency_windows(in_window, lo_ms, hi_ms)
    by_metrics = {w["from_s"]: w for w in windows(o.scrapes.samples, 0, d, WINDOW_SECONDS)}
    merged = [
        {"from_s": t, **by_latency.get(t, {}), **by_metrics.get(t, {})}
        for t in sorted(by_latency.keys() | by_metrics.keys())
    ]
    base = [s for s in o.scrapes.samples if s[0] <= 0]
    inside = [s for s in o.scrapes.samples if 0 < s[0] <= d]
    mid_mean, mid_max = _lag_mean(o.lag.samples, 0.4 * d, 0.6 * d)
    end_mean, end_max = _lag_mean(o.lag.samples, 0.8 * d, d)
    growing = None if math.isnan(mid_mean + end_mean) else bool(end_mean > mid_mean + o.rate)
    lat = [w for w in merged if "p50" in w]
    if len(lat) >= 2 and lat[-1]["p50"] > 5 * max(lat[0]["p50"], 50.0):
        growing = True  # latency that keeps rising is a backlog even when commits hide it
    ts = summary([float(r - t) for r, t in in_window])
    produced_rate = measure["sent"] / measure["seconds"]
    goal = goal_p99_ms(o.rate)
    ok_latency, ok_rate = bool(ts["p99"] < goal), produced_rate >= 0.98 * o.rate
    newest = o.listener.newest

    def total(name: str, **labels: str) -> float:
        return sum(prom_sum(m, name, **labels) for m in o.final_metrics)

    n = total("recloop_batch_seconds_count")
    return {
        "produced": {
            "events": measure["sent"],
            "seconds": measure["seconds"],
            "rate": produced_rate,
        },
        "topic_latency_ms": ts,
        "redis_latency_ms": {
            **summary([float(v) for v in o.sampler.latencies]),
            "timed_out": o.sampler.timed_out,
            "unresolved_at_end": o.sampler.pending,
        },
        "censoring": {
            "users_with_events": len(o.last_sent),
            "users_last_event_without_list": sum(
                1 for u, t in o.last_sent.items() if newest.get(u, -1) < t
            ),
        },
        "lists": {
            "received_in_window": len(in_window),
            "received_total": o.listener.received,
            "untriggered": o.listener.untriggered,
            "published_by_trigger": {
                k: total("recloop_lists_published_total", trigger=k) for k in TRIGGERS
            },
        },
        "worker": {
            "batches": n,
            "mean_batch_size": total("recloop_batch_size_sum") / n if n else None,
        },
        "worker_throughput": {
            "events_handled_in_window": handled,
            "handled_rate": handled / window_s if window_s else None,
            "worker_cpu_ms_per_event": cpu_ms,
            "cores_needed_at_rate": cpu_ms * o.rate / 1000 if cpu_ms else None,
        },
        "worker_metrics": window_figures(base[-1], inside) if base and inside else {},
        "latency_by_window": merged,
        "cpu_percent": o.meter.result,
        "machine_load_percent": o.load,
        "metrics_scrape_failures": o.scrapes.failures,
        "backlog": {
            "samples": [[round(t, 2), v] for t, v in o.lag.samples],
            "mid_mean": mid_mean,
            "mid_max": mid_max,
            "end_mean": end_mean,
            "end_max": end_max,
            "tolerance": o.rate,
            "growing": growing,
            "drain_after_stop_s": o.drain_s,
        },
        "goal": {
            "p99_ms_below": goal,
            "met": ok_latency and ok_rate and growing is False,
            "latency_ok": ok_latency,
            "rate_ok": ok_rate,
            "no_growing_backlog": growing is False,
        },
        "profile": o.profile,
    }


BACKLOG = {True: "GROWING", False: "ok", None: "?"}
WINDOW_COLUMNS = [
    ("lists", "lists", 0),
    ("p50 ms", "p50", 0),
    ("p99 ms", "p99", 0),
    ("events/s", "events_per_s", 0),
    ("lists/event", "lists_per_event", 2),
    ("loop lag max ms", "loop_lag_max_ms", 0),
    ("wait ms", "event_wait_mean_ms", 0),
    ("prepare ms", "stage_prepare_mean_ms", 1),
    ("commit ms", "stage_commit_mean_ms", 1),
    ("commit busy", "stage_commit_busy_share", 2),
    ("backlog s", "backlog_seconds_max", 2),
    ("worker CPU %", "worker_cpu_percent", 0),
]


def report(doc: dict[str, Any]) -> str:
    c, runs, g = doc["config"], doc["runs"], doc["goal"]
    title = (
        f"freshness: {c['workers']} worker(s), {c['rate']:,.0f} events/s offered for "
        f"{c['duration']:.0f} s, {c['users']:,} users, {c['items']:,} items; median of "
        f"{len(runs)} run(s)"
    )
    parts = [figures_table(doc["summary"], FIGURES, title=title)]
    k = median_run(runs, "topic_latency_ms.p99")
    parts.append(
        table(
            ["window"] + [h for h, _, _ in WINDOW_COLUMNS],
            [
                [f"{w['from_s']:.0f}-{w['from_s'] + WINDOW_SECONDS:.0f} s"]
                + [fmt(w.get(key), digits) for _, key, digits in WINDOW_COLUMNS]
                for w in runs[k]["latency_by_window"]
            ],
            title=f"run {k + 1} (the median p99) by 10 s window of the trigger time; worker "
            "figures from its /metrics (commit busy: seconds of commit stage per second)",
        )
    )
    per_run = [
        f"run {i + 1}: p99 {r['topic_latency_ms']['p99']:,.0f} ms, backlog "
        f"{BACKLOG[r['backlog']['growing']]}, "
        f"{verdict(r['goal']['met'])}; {contention_note(r['machine_load_percent'])}"
        for i, r in enumerate(runs)
    ]
    parts.append(
        "\n".join(per_run)
        + f"\ngoal p99 < {g['p99_ms_below']:,.0f} ms at {c['rate']:,.0f}/s, no growing "
        f"backlog: {verdict(g['met'])} ({g['runs_met']} of {len(runs)} runs)"
    )
    profile = runs[-1].get("profile")
    if profile:
        parts.append(
            table(
                ["stage", "samples", "%"],
                [[n, s, q] for n, s, q in profile["analysis"]["by_stage"][:12]],
                title=f"worker 0 on-CPU time by stage (py-spy, last run): {profile['file']}",
            )
        )
    return "\n\n".join(parts)


def profile_header(path: Path, rate: float, seconds: float, samples: int) -> str:
    """The first line of a freshness profile file."""
    return (
        f"py-spy 100 Hz, --nonblocking, on-CPU samples of worker 0 during the first "
        f"{seconds:.0f} s of the measured window ({rate:,.0f} events/s offered, "
        f"{samples:,} samples); {path.name}"
    )
