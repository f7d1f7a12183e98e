"""Freshness: how long from an event to its user's refreshed list, at a steady event rate.

    .venv/bin/python bench/freshness.py [--workers 1] [--rate 1000] [--duration 60]
                                        [--users 5000] [--items 2000]

Standard run (the defaults, ``make bench-freshness``): one worker, 1,000 events/s from the
simulator for 60 s after a 5 s warm-up, 5,000 users, 2,000 items. Goal: p99 < 1 s with no
growing backlog.

What is measured
----------------
* **topic path**: a confluent-kafka reader of the recommendations topic records, for every list
  with a ``trigger_ts``, ``receive time - trigger_ts``. ``trigger_ts`` is the ``ts`` of the event
  the list reflects, and ``ts`` is the time the bench sent it, so this is event sent -> list
  received, producer and consumer hops included. Only events sent during the measured window
  count. Coalescing (one refresh per user per ``refresh_interval_ms``) is part of what is
  measured: an event that arrives within 500 ms of its user's previous refresh waits for the
  deferred refresh, which carries the newest event as its trigger.
* **Redis path**: for a random sample of the events (1 %), a thread polls the user's ``recs``
  key until its ``trigger_event_id`` is that event or its ``trigger_ts`` is newer (every 5 ms
  for the first 2 s, then every 50 ms, after 10 s every 250 ms; given up after 30 s). The
  processor writes the key before it sends to Kafka, so the topic latency bounds this one.
* **censoring**: a list that never arrives is in no percentile, so the run also counts the
  users whose last event got no list by the end; when that is not 0, the percentiles are
  lower bounds.
* **cost**: the worker's CPU time per event it handled during the window, and how many cores
  the offered rate would need at that cost (a figure that a busy machine skews far less
  than the latencies).
* **backlog**: the worker group's committed lag on the events topic, sampled every second.
  Faust commits every 2.8 s, so single samples jitter by up to ~3 s of traffic; the check
  compares the mean over 40-60 % of the run with the mean over its last 20 %. After the
  producer stops, the time until the lag is 0 is reported too.

``--profile-seconds N`` samples worker 0 with py-spy for the first N s of the window
(bench/results/freshness_profile.txt). Every run records the CPU other processes used
meanwhile; above a quarter of a core the report flags the numbers as taken on a contended
machine.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyspy
from common import (
    RESULTS_DIR,
    CpuMeter,
    Services,
    add_common_args,
    admin_client,
    bench_settings,
    contention_note,
    fetch_text,
    group_lag,
    log,
    prom_sum,
    services,
    summary,
    table,
    verdict,
    with_new_port,
    write_results,
)

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer, kafka_producer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.simulator import World, events_due

GOAL_P99_MS = 1000.0
TICK_SECONDS = 0.005
"""The producer sends what is due every 5 ms: each event still gets its own send time as
``ts``, and a 2-core machine keeps the CPU a 1 ms loop would burn for the worker."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ListListener(threading.Thread):
    """Reads the recommendations topic from its end; keeps (received_ms, trigger_ts) pairs."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="list-listener", daemon=True)
        from pipeline.kafka.reader import TopicReader

        # from the end offsets as they are now: no list published later can be missed
        self.reader = TopicReader(
            settings,
            settings.topic_recommendations,
            start="end",
            client_id="bench-lists",
            options={"fetch.wait.max.ms": 50},
        )
        self.samples: list[tuple[int, int]] = []
        self.untriggered = 0
        self.received = 0
        self.newest: dict[str, int] = {}  # user -> newest trigger_ts received
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            records = self.reader.poll(0.1)
            received = now_ms()
            for record in records:
                self.received += 1
                trigger_ts = orjson.loads(record.value or b"{}").get("trigger_ts")
                if trigger_ts is None:
                    self.untriggered += 1
                else:
                    self.samples.append((received, int(trigger_ts)))
                    user = record.key.decode() if record.key else ""
                    if trigger_ts > self.newest.get(user, -1):
                        self.newest[user] = int(trigger_ts)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.reader.close()


class RedisSampler(threading.Thread):
    """Polls the recs key of sampled events until it reflects them (or something newer).

    Samples wait in a heap by next poll time: young ones are polled every tick, old ones
    (whose latency is already far past the goal) every 50 ms, then every 250 ms, so a backlog
    of hundreds of stale samples costs the machine little.
    """

    def __init__(self, settings: Settings, poll_seconds: float = 0.005, timeout_ms: int = 30_000):
        super().__init__(name="redis-sampler", daemon=True)
        import redis

        self.client = redis.Redis.from_url(settings.redis_url)
        self.keys = RedisKeys(settings.redis_namespace)
        self.poll_seconds = poll_seconds
        self.timeout_ms = timeout_ms
        self._heap: list[tuple[int, int, str, str]] = []  # (next poll ms, ts, user, event id)
        self.latencies: list[int] = []
        self.timed_out = 0
        self._lock = threading.Lock()
        self._halt = threading.Event()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def add(self, user_id: str, event_id: str, ts: int) -> None:
        with self._lock:
            heapq.heappush(self._heap, (ts, ts, user_id, event_id))

    def _next_poll(self, ts: int, now: int) -> int:
        age = now - ts
        step = 5 if age < 2_000 else 50 if age < 10_000 else 250
        return now + step

    def run(self) -> None:
        while not self._halt.is_set():
            now = now_ms()
            due = []
            with self._lock:
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            if due:
                pipe = self.client.pipeline(transaction=False)
                for _, _, user_id, _ in due:
                    pipe.get(self.keys.recs(user_id))
                values = pipe.execute()
                seen = now_ms()
                again = []
                for (_, ts, user_id, event_id), raw in zip(due, values, strict=True):
                    if raw is not None:
                        doc = orjson.loads(raw)
                        trig_ts = doc.get("trigger_ts")
                        if doc.get("trigger_event_id") == event_id or (
                            trig_ts is not None and trig_ts > ts
                        ):
                            self.latencies.append(seen - ts)
                            continue
                    if seen - ts > self.timeout_ms:
                        self.timed_out += 1
                        continue
                    again.append((self._next_poll(ts, seen), ts, user_id, event_id))
                with self._lock:
                    for item in again:
                        heapq.heappush(self._heap, item)
            time.sleep(self.poll_seconds)

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pending:
            time.sleep(0.05)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.client.close()


class LagSampler(threading.Thread):
    """Committed lag of the worker group on the events topic, once a second."""

    def __init__(self, settings: Settings, t0: float, interval: float = 1.0) -> None:
        super().__init__(name="lag-sampler", daemon=True)
        self.settings = settings
        self.admin = admin_client(settings)
        self.t0 = t0
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def lag(self) -> int:
        s = self.settings
        return group_lag(self.admin, s.app_id, s.topic_events, s.topic_partitions)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.samples.append((time.monotonic() - self.t0, self.lag()))
            except Exception as exc:  # a missed sample is not a failed benchmark
                log(f"lag sample failed: {exc!r}")

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
        self.admin.close()


def publish_catalogue(settings: Settings, world: World) -> int:
    items = world.items()
    with EventProducer(settings) as producer:
        for item in items:
            producer.send_item(item)
        producer.flush(30)
    return len(items)


def produce(
    settings: Settings,
    world: World,
    *,
    rate: float,
    warmup: float,
    duration: float,
    sampler: RedisSampler,
    sample_share: float,
    rng: random.Random,
    on_measure: Callable[[], None] = lambda: None,
    last_sent: dict[str, int],
) -> dict[str, Any]:
    """Send events paced at ``rate``/s: ``warmup`` s unmeasured, then ``duration`` s measured."""
    producer = kafka_producer(settings)
    topic = settings.topic_events
    out: dict[str, Any] = {}
    try:
        for phase, seconds in (("warmup", warmup), ("measure", duration)):
            if seconds <= 0:
                continue
            if phase == "measure":
                on_measure()
            sent = 0
            start = time.monotonic()
            start_ms = now_ms()
            end = start + seconds
            while True:
                t = time.monotonic()
                if t >= end:
                    break
                for _ in range(events_due(t - start, rate, sent)):
                    event = world.next_event(now_ms())
                    producer.produce(topic, orjson.dumps(event), event["user_id"].encode())
                    sent += 1
                    if phase == "measure":
                        last_sent[event["user_id"]] = event["ts"]
                    if phase == "measure" and rng.random() < sample_share:
                        sampler.add(event["user_id"], event["event_id"], event["ts"])
                producer.poll(TICK_SECONDS)  # serves acknowledgements while it waits
            elapsed = time.monotonic() - start
            out[phase] = {
                "sent": sent,
                "seconds": elapsed,
                "start_ms": start_ms,
                "end_ms": now_ms(),
                "start_mono": start,
                "end_mono": time.monotonic(),
            }
            log(f"{phase}: sent {sent:,} events in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")
    finally:
        left = producer.flush(30)
    if left:
        raise RuntimeError(f"{left} events unacknowledged after 30 s")
    return out


def window_mean(samples: list[tuple[float, int]], lo: float, hi: float) -> tuple[float, int, int]:
    """Mean, max and count of lag samples with ``lo <= t < hi``."""
    chosen = [lag for t, lag in samples if lo <= t < hi]
    if not chosen:
        return math.nan, 0, 0
    return sum(chosen) / len(chosen), max(chosen), len(chosen)


def run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    settings = bench_settings(svc, "freshness", topic_partitions=args.partitions)
    ensure_topics(settings)
    world = World(seed=args.seed, n_users=args.users, n_items=args.items)
    n_items = publish_catalogue(settings, world)
    log(f"catalogue: {n_items:,} items on {settings.topic_items}")

    listener = ListListener(settings)
    listener.start()
    sampler = RedisSampler(settings)
    sampler.start()
    workers: list[WorkerProcess] = []
    lag: LagSampler | None = None
    spy: list[Any] = []
    last_sent: dict[str, int] = {}  # user -> ts of their last event in the measured window
    try:
        t_start = time.monotonic()
        for i in range(args.workers):
            workers.append(
                WorkerProcess(with_new_port(settings), log_path=svc.workdir / f"worker-{i}.log")
            )
        for w in workers:
            w.wait_ready(120)
        log(f"{len(workers)} worker(s) ready in {time.monotonic() - t_start:.1f} s")

        t_measure = time.monotonic() + args.warmup
        lag = LagSampler(settings, t0=t_measure)
        lag.start()
        meter = CpuMeter(
            {**{f"worker-{i}": w.pid for i, w in enumerate(workers)}, "bench": os.getpid()}
            | svc.pids()
        )
        raw = svc.workdir / "profile.raw"

        handled: list[float] = []  # events handled by all workers at measure start / end

        def handled_now() -> float:
            return sum(
                prom_sum(fetch_text(w.url("/metrics")), "recloop_events_total") for w in workers
            )

        def on_measure() -> None:
            handled.append(handled_now())
            meter.start()
            if args.profile_seconds > 0:
                spy.append(pyspy.start(workers[0].pid, raw, duration=int(args.profile_seconds)))

        phases = produce(
            settings,
            world,
            rate=args.rate,
            warmup=args.warmup,
            duration=args.duration,
            sampler=sampler,
            sample_share=args.redis_sample,
            rng=random.Random(args.seed),
            on_measure=on_measure,
            last_sent=last_sent,
        )
        cpu = meter.stop()
        handled.append(handled_now())
        for proc in spy:
            pyspy.stop(proc)
        spy.clear()
        stopped = time.monotonic()
        log("producer stopped; waiting for the backlog to drain")
        drain_s = None
        deadline = stopped + args.drain_timeout
        while time.monotonic() < deadline:
            if lag.lag() == 0:
                drain_s = time.monotonic() - stopped
                break
            time.sleep(0.25)
        time.sleep(args.refresh_grace)  # deferred (coalesced) refreshes of the last events
        sampler.drain(5)
        lag.stop()
        metrics = [fetch_text(w.url("/metrics")) for w in workers]
    finally:
        for proc in spy:
            pyspy.stop(proc)
        for w in workers:  # first: a worker left running would outlive the stack
            w.stop()
        for thread in (lag, listener, sampler):
            if thread is not None and thread.is_alive():
                thread.stop()

    measure = phases["measure"]
    window_s = meter.stop_time - meter.start_time
    handled_in_window = handled[1] - handled[0]
    worker_cpu_s = sum(v for k, v in cpu.items() if k.startswith("worker")) * window_s / 100
    throughput = {
        "events_handled_in_window": handled_in_window,
        "handled_rate": handled_in_window / window_s if window_s else None,
        "worker_cpu_ms_per_event": 1000 * worker_cpu_s / handled_in_window
        if handled_in_window
        else None,
    }
    cpu_ms = throughput["worker_cpu_ms_per_event"]
    throughput["cores_needed_at_rate"] = cpu_ms * args.rate / 1000 if cpu_ms else None
    stale_users = sum(1 for u, t in last_sent.items() if listener.newest.get(u, -1) < t)
    unresolved = sampler.pending
    load = svc.contention(measure.pop("start_mono"), measure.pop("end_mono"))
    phases.get("warmup", {}).pop("start_mono", None)
    phases.get("warmup", {}).pop("end_mono", None)
    lo_ms, hi_ms = measure["start_ms"], measure["end_ms"]
    in_window = [(r, t) for r, t in listener.samples if lo_ms <= t <= hi_ms]
    topic_lat = [float(r - t) for r, t in in_window]
    redis_lat = [float(v) for v in sampler.latencies]

    # latency by 10 s window of the trigger time: a backlog shows as a rising p50
    windows = []
    step = 10_000
    for start in range(lo_ms, hi_ms, step):
        lat = [float(r - t) for r, t in in_window if start <= t < start + step]
        if lat:
            s = summary(lat)
            windows.append(
                {
                    "from_s": (start - lo_ms) / 1000,
                    "lists": len(lat),
                    "p50": s["p50"],
                    "p99": s["p99"],
                    "max": s["max"],
                }
            )

    d = args.duration
    mid_mean, mid_max, mid_n = window_mean(lag.samples, 0.4 * d, 0.6 * d)
    end_mean, end_max, end_n = window_mean(lag.samples, 0.8 * d, d)
    tolerance = args.rate * 1.0  # one second of traffic
    growing = bool(end_mean > mid_mean + tolerance) if not math.isnan(mid_mean + end_mean) else None
    if windows and len(windows) >= 2 and windows[-1]["p50"] > 5 * max(windows[0]["p50"], 50.0):
        growing = True  # latency that keeps rising is a backlog even when commits hide it

    produced_rate = measure["sent"] / measure["seconds"]
    applied = sum(prom_sum(m, "recloop_events_total", outcome="applied") for m in metrics)
    lists_by_trigger = {
        k: sum(prom_sum(m, "recloop_lists_published_total", trigger=k) for m in metrics)
        for k in ("event", "deferred", "background")
    }
    batch_n = sum(prom_sum(m, "recloop_batch_seconds_count") for m in metrics)
    batch_s = sum(prom_sum(m, "recloop_batch_seconds_sum") for m in metrics)
    batch_events = sum(prom_sum(m, "recloop_batch_size_sum") for m in metrics)

    ts = summary(topic_lat)
    rs = summary(redis_lat)
    ok_latency = bool(ts["p99"] < GOAL_P99_MS)
    ok_rate = produced_rate >= 0.98 * args.rate
    ok = ok_latency and ok_rate and growing is False
    return {
        "config": {
            "workers": args.workers,
            "rate": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "users": args.users,
            "items": args.items,
            "partitions": args.partitions,
            "seed": args.seed,
            "redis_sample": args.redis_sample,
            "refresh_interval_ms": settings.refresh_interval_ms,
            "batch_size": settings.batch_size,
            "batch_within_seconds": settings.batch_within_seconds,
            "kafka": "own LocalStack" if "kafka" in svc.started else svc.kafka_bootstrap,
        },
        "produced": {
            "events": measure["sent"],
            "seconds": measure["seconds"],
            "rate": produced_rate,
            "warmup_events": phases.get("warmup", {}).get("sent", 0),
        },
        "topic_latency_ms": ts,
        "redis_latency_ms": {
            **rs,
            "timed_out": sampler.timed_out,
            "unresolved_at_end": unresolved,
        },
        "censoring": {
            "users_with_events": len(last_sent),
            "users_last_event_without_list": stale_users,
            "note": "lists that never arrived are not in the percentiles: they are lower bounds "
            "when this is not 0",
        },
        "lists": {
            "received_in_window": len(in_window),
            "received_total": listener.received,
            "untriggered": listener.untriggered,
            "published_by_trigger": lists_by_trigger,
        },
        "worker": {
            "events_applied": applied,
            "batches": batch_n,
            "mean_batch_size": batch_events / batch_n if batch_n else None,
            "mean_batch_ms": 1000 * batch_s / batch_n if batch_n else None,
        },
        "latency_by_window": windows,
        "machine_load_percent": load,
        "cpu_percent": cpu,
        "worker_throughput": throughput,
        "profile": _profile(raw, args) if args.profile_seconds > 0 else None,
        "backlog": {
            "samples": [[round(t, 2), v] for t, v in lag.samples],
            "mid_mean": mid_mean,
            "mid_max": mid_max,
            "mid_samples": mid_n,
            "end_mean": end_mean,
            "end_max": end_max,
            "end_samples": end_n,
            "tolerance": tolerance,
            "growing": growing,
            "drain_after_stop_s": drain_s,
        },
        "goal": {
            "p99_ms_below": GOAL_P99_MS,
            "met": ok,
            "latency_ok": ok_latency,
            "rate_ok": ok_rate,
            "no_growing_backlog": growing is False,
        },
    }


def _profile(raw: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """Summarise the py-spy samples of worker 0 and write bench/results/freshness_profile.txt."""
    if not raw.exists():
        log("py-spy wrote no profile")
        return None
    analysis = pyspy.analyze(raw)
    header = (
        f"py-spy 100 Hz, --nonblocking, on-CPU samples of worker 0 during the first "
        f"{args.profile_seconds:.0f} s of the measured window ({args.rate:,.0f} events/s offered, "
        f"{analysis['samples']:,} samples)"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "freshness_profile.txt").write_text(pyspy.render(analysis, header))
    return {"file": str(RESULTS_DIR / "freshness_profile.txt"), "analysis": analysis}


def report(r: dict[str, Any]) -> str:
    c, ts, rs, b = r["config"], r["topic_latency_ms"], r["redis_latency_ms"], r["backlog"]
    title = (
        f"freshness: {c['workers']} worker(s), {c['rate']:,.0f} events/s target for "
        f"{c['duration_s']:.0f} s, "
        f"{c['users']:,} users, {c['items']:,} items"
    )
    lat = table(
        ["path (event ts -> list)", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"],
        [
            [
                "topic (list received)",
                ts["count"],
                ts["p50"],
                ts["p95"],
                ts["p99"],
                ts["max"],
                ts["mean"],
            ],
            [
                "redis (recs key reflects it)",
                rs["count"],
                rs["p50"],
                rs["p95"],
                rs["p99"],
                rs["max"],
                rs["mean"],
            ],
        ],
        title=title,
    )
    facts = table(
        ["fact", "value"],
        [
            ["events produced (measured window)", r["produced"]["events"]],
            ["achieved produce rate (events/s)", r["produced"]["rate"]],
            ["lists received (trigger in window)", r["lists"]["received_in_window"]],
            [
                "lists published: event / deferred / background",
                " / ".join(f"{int(v):,}" for v in r["lists"]["published_by_trigger"].values()),
            ],
            [
                "worker mean batch (events, ms)",
                f"{fmt_num(r['worker']['mean_batch_size'])}, "
                f"{fmt_num(r['worker']['mean_batch_ms'])}",
            ],
            [
                "redis samples timed out (30 s) / unresolved at end",
                f"{rs['timed_out']:,} / {rs['unresolved_at_end']:,}",
            ],
            [
                "users whose last event got no list by the end",
                f"{r['censoring']['users_last_event_without_list']:,} of "
                f"{r['censoring']['users_with_events']:,}",
            ],
            [
                "events handled in window (per s)",
                f"{r['worker_throughput']['events_handled_in_window']:,.0f} "
                f"({fmt_num(r['worker_throughput']['handled_rate'])}/s)",
            ],
            [
                "worker CPU per handled event (ms); cores needed at rate",
                f"{fmt_num(r['worker_throughput']['worker_cpu_ms_per_event'], 2)}; "
                f"{fmt_num(r['worker_throughput']['cores_needed_at_rate'], 2)}",
            ],
            [
                "CPU % of a core: workers / kafka / redis / bench",
                " / ".join(
                    fmt_num(sum(v for k, v in r["cpu_percent"].items() if k.startswith(name)))
                    for name in ("worker", "kafka", "redis", "bench")
                ),
            ],
            [
                "group lag mid (mean / max of samples)",
                f"{fmt_num(b['mid_mean'])} / {b['mid_max']:,}",
            ],
            [
                "group lag end (mean / max of samples)",
                f"{fmt_num(b['end_mean'])} / {b['end_max']:,}",
            ],
            ["growing backlog", {True: "yes", False: "no", None: "unknown"}[b["growing"]]],
            ["drain after producer stop (s)", fmt_num(b["drain_after_stop_s"], 1)],
        ],
    )
    windows = table(
        ["trigger window", "lists", "p50 ms", "p99 ms", "max ms"],
        [
            [
                f"{w['from_s']:.0f}-{w['from_s'] + 10:.0f} s",
                w["lists"],
                w["p50"],
                w["p99"],
                w["max"],
            ]
            for w in r["latency_by_window"]
        ],
    )
    g = r["goal"]
    goal = (
        f"goal p99 < {g['p99_ms_below']:.0f} ms at {c['rate']:,.0f}/s, no growing backlog: "
        f"{verdict(g['met'])}"
        f" (p99 {ts['p99']:,.0f} ms, rate {'ok' if g['rate_ok'] else 'LOW'}, backlog "
        f"{'ok' if g['no_growing_backlog'] else 'GROWING/unknown'})"
    )
    parts = [lat, facts, windows, goal + "\n" + contention_note(r["machine_load_percent"])]
    if r.get("profile"):
        a = r["profile"]["analysis"]
        parts.append(
            table(
                ["stage", "samples", "%"],
                [[n, c, q] for n, c, q in a["by_stage"][:12]],
                title="worker 0 on-CPU time by stage (py-spy)",
            )
        )
        parts.append(f"full profile: {r['profile']['file']}")
    return "\n\n".join(parts)


def fmt_num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second (default 1000)")
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds (default 60)")
    p.add_argument(
        "--warmup", type=float, default=5.0, help="unmeasured seconds of traffic first (default 5)"
    )
    p.add_argument("--users", type=int, default=5000, help="simulated users (default 5000)")
    p.add_argument("--items", type=int, default=2000, help="catalogue size (default 2000)")
    p.add_argument(
        "--partitions", type=int, default=8, help="partitions of the bench topics (default 8)"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--redis-sample",
        type=float,
        default=0.01,
        help="share of events whose Redis path is timed (default 0.01)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="max wait for the backlog after the producer stops",
    )
    p.add_argument(
        "--refresh-grace",
        type=float,
        default=1.5,
        help="wait after drain for deferred refreshes (s)",
    )
    p.add_argument(
        "--profile-seconds",
        type=float,
        default=0.0,
        help="py-spy worker 0 for this long from the start of the measured window (default 0: off)",
    )
    add_common_args(p)
    args = p.parse_args()
    t0 = time.monotonic()
    with services("freshness", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        result = run(args, svc)
        result["quiet_at_start"] = svc.quiet
    result["wall_seconds"] = time.monotonic() - t0
    print(report(result))
    path = write_results("freshness", result)
    print(f"\nwrote {path} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
