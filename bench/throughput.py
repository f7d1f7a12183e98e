"""Throughput: the highest sustained events/s of one worker, and of bare Faust on the same data.

    .venv/bin/python bench/throughput.py [--events 200000] [--users 20000] [--items 2000]
                                         [--max-drain-seconds 60] [--profile-seconds 20]

Standard run (the defaults, ``make bench-throughput``): 200,000 simulator events of 20,000
users (2,000 items) are pre-loaded into the events topic *before* any consumer starts, so every
consumer below runs against a full backlog and its drain rate is its ceiling. Passes, one at a
time (the machine has 2 cores):

1. **worker**: one ``recloop worker`` (full path: decode, dedupe, features and models, one
   Redis transaction per batch, list refresh to Redis and Kafka). Progress is the sum of the
   worker's ``recloop_events_total`` (all outcomes) on ``/metrics``, polled every 0.5 s; the
   rate is measured from the first processed event to the last. If the backlog is not drained
   within ``--max-drain-seconds``, the rate over that window is reported (the backlog never
   ran dry, so it is still the sustained rate) and the run is marked "capped".
2. **ceiling**: ``bench/ceiling_app.py``, a minimal Faust app with a fresh consumer group on the
   same topic that decodes each value with orjson and forwards it to another topic (sends of a
   batch issued together, acks awaited); progress is the record count of its output topic.
   With ``--decode-only``, the same app without the sends runs as a second reference.
3. **profile**: a second worker with a fresh consumer group and Redis namespace (the same
   work as pass 1, from scratch) sampled by py-spy for ``--profile-seconds``; kept apart from
   pass 1 so the sampler cannot lower the measured rate.
   Output: bench/results/throughput_profile.txt.

Every ``RECLOOP_*`` setting the bench does not set itself comes from the environment, e.g.
``RECLOOP_BATCH_WITHIN_SECONDS=0.25 .venv/bin/python bench/throughput.py`` measures the worker
(and the Faust apps, which take the same batching) with a longer batch window.

CPU use of the worker, the broker, Redis and the bench itself is measured over each drain, so
a worker that is not CPU-bound (waiting on I/O) shows as such.
Goals: >= 5,000 events/s per worker and >= 50 % of the ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyspy
from common import (
    BENCH_DIR,
    RESULTS_DIR,
    CpuMeter,
    Services,
    add_common_args,
    admin_client,
    bench_settings,
    contention_note,
    fast_produce,
    fetch_text,
    log,
    prom_sum,
    services,
    table,
    topic_size,
    verdict,
    with_new_port,
    write_results,
)

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.tooling.probes import free_port
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.simulator import World

GOAL_RATE = 5_000.0
GOAL_SHARE = 0.5


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def preload(settings: Settings, world: World, n: int) -> dict[str, Any]:
    """Publish the catalogue, then ``n`` events (ts = send time), before any consumer runs."""
    with EventProducer(settings) as producer:
        for item in world.items():
            producer.send_item(item)
        producer.flush(60)
    users: set[str] = set()

    def records() -> Iterator[tuple[bytes, bytes]]:
        for _ in range(n):
            event = world.next_event(now_ms())
            users.add(event["user_id"])
            yield event["user_id"].encode(), orjson.dumps(event)

    t0 = time.monotonic()
    fast_produce(settings, settings.topic_events, records())
    seconds = time.monotonic() - t0
    return {"events": n, "distinct_users": len(users), "seconds": seconds, "rate": n / seconds}


def drain(
    progress: Callable[[], int | None],
    total: int,
    *,
    cap_seconds: float,
    start_timeout: float = 120.0,
    meter: CpuMeter | None = None,
    poll: float = 0.5,
) -> dict[str, Any]:
    """Poll ``progress()`` until it reaches ``total``; rate from first to last processed event."""
    deadline = time.monotonic() + start_timeout
    first_t = None
    first_c = 0
    while time.monotonic() < deadline:
        c = progress()
        if c:
            first_t, first_c = time.monotonic(), c
            break
        time.sleep(0.05)
    if first_t is None:
        raise RuntimeError(f"nothing processed within {start_timeout:.0f} s")
    if meter:
        meter.start()
    last_t, last_c = first_t, first_c
    series = [(0.0, first_c)]
    capped = False
    while last_c < total:
        time.sleep(poll)
        c = progress()
        t = time.monotonic()
        if c is None:
            continue
        if c != last_c:
            last_t, last_c = t, c
        series.append((round(t - first_t, 2), c))
        if t - first_t >= cap_seconds:
            capped = last_c < total
            last_t = t
            break
    cpu = meter.stop() if meter else {}
    seconds = max(last_t - first_t, 1e-9)
    consumer = next(iter(meter.pids), None) if meter else None  # the first pid is the consumer
    cpu_ms = None
    if consumer in cpu and last_c > first_c:
        wall = meter.stop_time - meter.start_time  # type: ignore[union-attr]
        cpu_ms = 10 * cpu[consumer] * wall / (last_c - first_c)
    # sustained rate after the first 20 % of the window (start-up transients excluded)
    steady = None
    if len(series) > 10:
        t20 = series[-1][0] * 0.2
        s0 = next(s for s in series if s[0] >= t20)
        s1 = series[-1]
        if s1[0] > s0[0]:
            steady = (s1[1] - s0[1]) / (s1[0] - s0[0])
    return {
        "processed": last_c,
        "counted_from": first_c,
        "seconds": seconds,
        "rate": (last_c - first_c) / seconds,
        "steady_rate": steady,
        "capped": capped,
        "cpu_percent": cpu,
        "cpu_ms_per_event": cpu_ms,
        "series": series[:: max(1, len(series) // 200)],
        "window_mono": (first_t, last_t),
    }


def worker_progress(worker: WorkerProcess) -> Callable[[], int | None]:
    def progress() -> int | None:
        try:
            return int(prom_sum(fetch_text(worker.url("/metrics")), "recloop_events_total"))
        except OSError:
            return None

    return progress


def worker_facts(text: str) -> dict[str, Any]:
    n = prom_sum(text, "recloop_batch_seconds_count")
    return {
        "applied": prom_sum(text, "recloop_events_total", outcome="applied"),
        "duplicate": prom_sum(text, "recloop_events_total", outcome="duplicate"),
        "dead_letter": prom_sum(text, "recloop_events_total", outcome="dead_letter"),
        "lists": int(prom_sum(text, "recloop_lists_published_total")),
        "batches": n,
        "mean_batch_size": prom_sum(text, "recloop_batch_size_sum") / n if n else None,
        "mean_batch_ms": 1000 * prom_sum(text, "recloop_batch_seconds_sum") / n if n else None,
        "redis_errors": prom_sum(text, "recloop_redis_errors_total"),
        "kafka_errors": prom_sum(text, "recloop_kafka_errors_total"),
    }


def run_worker_pass(
    settings: Settings, svc: Services, total: int, cap: float, label: str
) -> dict[str, Any]:
    worker = WorkerProcess(settings, log_path=svc.workdir / f"{label}.log")
    try:
        meter = CpuMeter({"worker": worker.pid, "bench": os.getpid(), **svc.pids()})
        result = drain(worker_progress(worker), total, cap_seconds=cap, meter=meter)
        result["machine_load_percent"] = svc.contention(*result.pop("window_mono"))
        result["worker"] = worker_facts(fetch_text(worker.url("/metrics")))
        result["rss_mib"] = _rss_mib(worker.pid)
    finally:
        worker.stop()
    return result


def _rss_mib(pid: int) -> float | None:
    from common import proc_status_kib

    with contextlib.suppress(OSError, KeyError):
        return proc_status_kib(pid, "VmRSS") / 1024
    return None


def create_topic(settings: Settings, name: str) -> None:
    from pipeline.kafka.topics import ensure_topics

    # the same creation path as the workers' own topics (idempotent, waits for leaders)
    ensure_topics(settings.model_copy(update={"topic_events": name}))


def run_ceiling_pass(
    settings: Settings, svc: Services, total: int, cap: float, *, forward: bool = True
) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    sink = f"{settings.topic_events}.ceiling-{uid}"
    web_port = free_port()
    if forward:
        create_topic(settings, sink)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CEILING_APP_ID": f"{settings.app_id}-ceiling-{uid}",
        "CEILING_BOOTSTRAP": settings.kafka_bootstrap,
        "CEILING_SOURCE": settings.topic_events,
        "CEILING_SINK": sink,
        "CEILING_WEB_PORT": str(web_port),
        "CEILING_FORWARD": "1" if forward else "0",
        "CEILING_PARTITIONS": str(settings.topic_partitions),
        "CEILING_BATCH_SIZE": str(settings.batch_size),
        "CEILING_BATCH_WITHIN": str(settings.batch_within_seconds),
    }
    log_path = svc.workdir / f"ceiling-{'forward' if forward else 'decode'}.log"
    log_file = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "ceiling_app.py")],
        env=env,
        cwd=svc.workdir,  # Faust writes its data folder into the working directory
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    admin = admin_client(settings)
    try:

        def progress() -> int | None:
            if proc.poll() is not None:
                raise RuntimeError(f"ceiling app exited with {proc.returncode}; see {log_path}")
            if forward:  # what reached the output topic, acknowledged
                return topic_size(admin, sink, settings.topic_partitions)
            try:
                return int(
                    orjson.loads(fetch_text(f"http://127.0.0.1:{web_port}/count"))["forwarded"]
                )
            except OSError:
                return None

        meter = CpuMeter({"ceiling": proc.pid, "bench": os.getpid(), **svc.pids()})
        result = drain(progress, total, cap_seconds=cap, meter=meter)
        result["machine_load_percent"] = svc.contention(*result.pop("window_mono"))
        result["rss_mib"] = _rss_mib(proc.pid)
    finally:
        admin.close()
        _stop_group(proc)
        log_file.close()
    return result


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_profile_pass(
    settings: Settings, svc: Services, total: int, seconds: float, rate: int
) -> dict[str, Any]:
    uid = uuid.uuid4().hex[:8]
    settings = with_new_port(
        settings.model_copy(
            update={
                "app_id": f"{settings.app_id}-profile-{uid}",
                "redis_namespace": f"{settings.redis_namespace}-profile-{uid}",
            }
        )
    )
    raw = svc.workdir / "profile.raw"
    worker = WorkerProcess(settings, log_path=svc.workdir / "worker-profile.log")
    spy = None
    try:
        progress = worker_progress(worker)
        deadline = time.monotonic() + 120
        while not progress() and time.monotonic() < deadline:
            time.sleep(0.05)
        c0, t0 = progress() or 0, time.monotonic()
        t_start = t0
        cpu0 = _cpu(worker.pid)
        spy = pyspy.start(worker.pid, raw, rate=rate, duration=int(seconds) + 30)
        while time.monotonic() - t0 < seconds and (progress() or 0) < total:
            time.sleep(0.2)
        code = pyspy.stop(spy)
        spy = None
        wall = time.monotonic() - t0
        c1 = progress() or 0
        cpu = 100 * (_cpu(worker.pid) - cpu0) / wall
    finally:
        if spy is not None:
            pyspy.stop(spy)
        worker.stop()
    if not raw.exists():
        log_text = raw.with_suffix(".log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"py-spy wrote no profile (exit {code}):\n{log_text}")
    analysis = pyspy.analyze(raw)
    return {
        "seconds": wall,
        "events": c1 - c0,
        "rate_while_profiled": (c1 - c0) / wall,
        "worker_cpu_percent": cpu,
        "sample_rate": rate,
        "on_cpu_share": analysis["samples"] / (rate * wall) if wall else None,
        "analysis": analysis,
        "raw": raw,
        "machine_load_percent": svc.contention(t_start, t_start + wall),
    }


def _cpu(pid: int) -> float:
    from common import cpu_seconds

    return cpu_seconds(pid)


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
    log(
        f"pre-loaded in {loaded['seconds']:.1f} s ({loaded['rate']:,.0f}/s), "
        f"{loaded['distinct_users']:,} distinct users"
    )

    log("pass 1: recloop worker draining the backlog")
    worker = run_worker_pass(settings, svc, args.events, args.max_drain_seconds, "worker")
    log(
        f"worker: {worker['processed']:,} events, "
        f"{worker['rate']:,.0f}/s{' (capped)' if worker['capped'] else ''}"
    )

    log("pass 2: minimal Faust app (decode + forward) on the same topic")
    ceiling = run_ceiling_pass(settings, svc, args.events, args.max_drain_seconds)
    log(
        f"ceiling: {ceiling['processed']:,} events, "
        f"{ceiling['rate']:,.0f}/s{' (capped)' if ceiling['capped'] else ''}"
    )
    decode_only = None
    if args.decode_only:
        log("pass 2b: minimal Faust app, decode only (no sends)")
        decode_only = run_ceiling_pass(
            settings, svc, args.events, args.max_drain_seconds, forward=False
        )
        log(f"decode only: {decode_only['processed']:,} events, {decode_only['rate']:,.0f}/s")

    profile = None
    if args.profile_seconds > 0:
        if pyspy.find_pyspy() is None:
            log("py-spy not installed (`.venv/bin/pip install py-spy`); no profile")
        else:
            log(f"pass 3: py-spy on a fresh worker for {args.profile_seconds:.0f} s")
            profile = run_profile_pass(
                settings, svc, args.events, args.profile_seconds, args.profile_rate
            )

    ratio = worker["rate"] / ceiling["rate"] if ceiling["rate"] else None
    return {
        "config": {
            "events": args.events,
            "users": args.users,
            "items": args.items,
            "partitions": args.partitions,
            "seed": args.seed,
            "max_drain_seconds": args.max_drain_seconds,
            "batch_size": settings.batch_size,
            "batch_within_seconds": settings.batch_within_seconds,
            "refresh_interval_ms": settings.refresh_interval_ms,
        },
        "preload": loaded,
        "worker": worker,
        "ceiling": ceiling,
        "ceiling_decode_only": decode_only,
        "ratio": ratio,
        "profile": profile,
        "goal": {
            "rate": GOAL_RATE,
            "share_of_ceiling": GOAL_SHARE,
            "rate_met": worker["rate"] >= GOAL_RATE,
            "share_met": ratio is not None and ratio >= GOAL_SHARE,
        },
    }


def report(r: dict[str, Any]) -> str:
    c, w, ce, d = r["config"], r["worker"], r["ceiling"], r["ceiling_decode_only"]

    def drained(x: dict[str, Any]) -> str:
        return "capped" if x["capped"] else "yes"

    def row(label: str, x: dict[str, Any], proc: str) -> list[Any]:
        return [
            label,
            x["processed"] - x["counted_from"],
            x["seconds"],
            x["rate"],
            x["steady_rate"],
            drained(x),
            x["cpu_percent"].get(proc),
            x.get("cpu_ms_per_event"),
            x["rss_mib"],
        ]

    rows = [
        row("recloop worker (full path)", w, "worker"),
        row("Faust ceiling (decode + forward)", ce, "ceiling"),
    ]
    if d:
        rows.append(row("Faust, decode only (reference)", d, "ceiling"))
    main_table = table(
        ["consumer (1 process)", "events", "seconds", "events/s", "steady events/s", "drained"]
        + ["CPU %", "CPU ms/event", "RSS MiB"],
        rows,
        title=(
            f"throughput: {c['events']:,} pre-loaded events, "
            f"{r['preload']['distinct_users']:,} users, {c['items']:,} items, "
            f"{c['partitions']} partitions, batch {c['batch_size']}"
        ),
    )
    cpu_rows = []
    for name in ("worker", "ceiling", "kafka", "redis", "bench"):
        cpu_rows.append([name, w["cpu_percent"].get(name), ce["cpu_percent"].get(name)])
    cpu = table(
        ["process", "CPU % (worker pass)", "CPU % (ceiling pass)"],
        cpu_rows,
        title="CPU over each drain (% of one core; the machine has " + str(os.cpu_count()) + ")",
    )
    wf = w["worker"]
    facts = table(
        ["worker fact", "value"],
        [
            [
                "batches / mean size / mean ms",
                f"{wf['batches']:,.0f} / {wf['mean_batch_size'] or 0:,.0f} / "
                f"{wf['mean_batch_ms'] or 0:,.1f}",
            ],
            [
                "applied / duplicate / dead-letter",
                f"{wf['applied']:,.0f} / {wf['duplicate']:,.0f} / {wf['dead_letter']:,.0f}",
            ],
            ["lists published", wf["lists"]],
            ["redis / kafka errors", f"{wf['redis_errors']:,.0f} / {wf['kafka_errors']:,.0f}"],
        ],
    )
    ratio = r["ratio"]
    g = r["goal"]
    goals = "\n".join(
        [
            f"goal >= {g['rate']:,.0f} events/s per worker: {verdict(g['rate_met'])} "
            f"({w['rate']:,.0f}/s, "
            f"{100 * w['rate'] / g['rate']:.0f} % of goal)",
            f"goal >= {100 * g['share_of_ceiling']:.0f} % of the Faust ceiling: "
            f"{verdict(g['share_met'])} "
            f"(worker/ceiling = {100 * ratio:.1f} %)"
            if ratio is not None
            else "ratio: -",
        ]
    )
    notes = [
        f"{label}: {contention_note(x['machine_load_percent'])}"
        for label, x in (("worker pass", w), ("ceiling pass", ce), ("decode-only pass", d))
        if x
    ]
    parts = [main_table, cpu, facts, goals + "\n" + "\n".join(notes)]
    p = r.get("profile")
    if p:
        a = p["analysis"]
        parts.append(
            table(
                ["function (file)", "samples", "%"],
                [[n, s, q] for n, s, q in a["self"][:12]],
                title=(
                    f"profile: py-spy {p['sample_rate']} Hz on a fresh worker for "
                    f"{p['seconds']:.0f} s "
                    f"({p['rate_while_profiled']:,.0f} events/s while sampled, worker CPU "
                    f"{p['worker_cpu_percent']:.0f} %); top self time"
                ),
            )
        )
        parts.append(
            table(
                ["worker stage (innermost recloop step on the stack)", "samples", "%"],
                [[n, s, q] for n, s, q in a["by_stage"][:14]],
            )
        )
        parts.append(f"full profile: {RESULTS_DIR / 'throughput_profile.txt'}")
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
        "--profile-seconds",
        type=float,
        default=20.0,
        help="py-spy sampling time, 0 = no profile (default 20)",
    )
    p.add_argument(
        "--profile-rate", type=int, default=100, help="py-spy samples per second (default 100)"
    )
    p.add_argument(
        "--decode-only",
        action="store_true",
        help="also run Faust decoding only, without sends (a second reference; +1 pass)",
    )
    add_common_args(p)
    args = p.parse_args()
    t0 = time.monotonic()
    with services("throughput", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        result = run(args, svc)
        result["quiet_at_start"] = svc.quiet
        profile = result.get("profile")
        if profile:
            load = profile["machine_load_percent"].get("others_mean")
            header = (
                f"py-spy {profile['sample_rate']} Hz, --nonblocking, on-CPU samples of one "
                "recloop worker draining a pre-loaded backlog "
                f"({profile['rate_while_profiled']:,.0f} events/s while sampled, worker CPU "
                f"{profile['worker_cpu_percent']:.0f} % of a core, "
                f"{profile['analysis']['samples']:,} samples; other processes used "
                f"{load or 0:.0f} % of a core meanwhile)"
            )
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            (RESULTS_DIR / "throughput_profile.txt").write_text(
                pyspy.render(profile["analysis"], header)
            )
            raw_copy = RESULTS_DIR / "throughput_profile.raw"
            raw_copy.write_bytes(Path(profile.pop("raw")).read_bytes())
            profile["raw_file"] = str(raw_copy)
    result["wall_seconds"] = time.monotonic() - t0
    print(report(result))
    path = write_results("throughput", result)
    print(f"\nwrote {path} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
