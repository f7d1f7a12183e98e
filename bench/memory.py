"""Memory: worker RSS and Redis bytes per user after many distinct users went through one worker.

    .venv/bin/python bench/memory.py [--users 100000] [--events-per-user 2] [--items 2000]

Standard run (the defaults, ``make bench-memory``): 100,000 distinct simulated users with 2
events each (a click, then a watch or a skip of the same item; ``--events-per-user 2-3`` adds a
second click for a random share) go through one worker, produced while it runs; the bench
waits until every event was handled and the deferred list refreshes are done, then reports:

* worker RSS (``VmRSS`` of ``/proc/<pid>/status``) when ready and after the run, and its peak
  (``VmHWM``); the worker caches up to 100,000 user states in process, so the growth per user
  is the cost of that cache;
* Redis ``INFO memory`` ``used_memory`` before (worker ready, catalogue loaded) and after,
  divided by the number of users: everything the run added, shared keys (model log, active
  users, trending, snapshots) included; those shared keys are listed on their own;
* ``MEMORY USAGE <key> SAMPLES 0`` of every per-user key kind (features, history, excluded,
  events, recs, and any kind ``RedisKeys.user_keys`` adds), averaged over a random sample of
  users, with the keys' encodings and lengths.

The worker drains a backlog here, so it runs with ``batch_within_seconds=0.25`` instead of the
default 0.02 s: Faust's ``take_events`` then hands it batches of hundreds of events instead of
a few dozen, which makes the run ~2x shorter and leaves what is stored per user unchanged (the
model log gets fewer, larger entries; it is reported among the shared keys).

Events are built from the simulator's users and catalogue (``World.user``, ``World.interest``):
the simulator's own traffic is skewed toward heavy users and would need millions of events to
touch 100,000 distinct users.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator
from typing import Any

import orjson
import redis
from harness.kafka import fast_produce, publish_catalogue
from harness.machine import CpuMeter, contention_note, proc_status_kib
from harness.output import log, table
from harness.processes import wait_handled
from harness.prom import fetch_text, prom_sum
from harness.redis_memory import count_user_keys, redis_used, sample_user_keys, shared_keys
from harness.results import write_results
from harness.services import Services, add_common_args, bench_settings, services
from harness.traffic import UserTraffic

from pipeline.config import Settings
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.simulator import World


def parse_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    if not 1 <= a <= b:
        raise argparse.ArgumentTypeError(f"expected N or A-B with 1 <= A <= B, got {text!r}")
    return a, b


def worker_mem(worker: WorkerProcess) -> dict[str, float]:
    return {k: proc_status_kib(worker.pid, k) / 1024 for k in ("VmRSS", "VmHWM")}


def run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    settings: Settings = bench_settings(
        svc,
        "memory",
        topic_partitions=args.partitions,
        batch_within_seconds=args.batch_within,
    )
    ensure_topics(settings)
    world = World(seed=args.seed, n_users=args.users, n_items=args.items)
    publish_catalogue(settings, world.items())
    client = redis.Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.redis_namespace)
    rng = random.Random(args.seed)
    lo, hi = args.events_per_user
    plan = [rng.randint(lo, hi) for _ in range(args.users)]
    total = sum(plan)

    worker = WorkerProcess(settings, log_path=svc.workdir / "worker.log")
    try:
        worker.wait_ready(120)
        time.sleep(args.settle)  # catalogue consumed, first timers run
        mem0 = worker_mem(worker)
        redis0 = redis_used(client)
        log(
            f"worker ready: RSS {mem0['VmRSS']:.0f} MiB, redis used_memory "
            f"{redis0['used_memory'] / 2**20:.1f} MiB"
        )

        traffic = UserTraffic(world, args.seed)
        meter = CpuMeter({"worker": worker.pid, **svc.pids()}).start()
        t0 = time.monotonic()
        order = list(range(args.users))
        rng.shuffle(order)

        def records() -> Iterator[tuple[bytes, bytes]]:
            for index in order:
                for event in traffic.events(index, plan[index]):
                    yield event["user_id"].encode(), orjson.dumps(event)

        fast_produce(settings, settings.topic_events, records())
        produced_s = time.monotonic() - t0
        log(
            f"produced {total:,} events for {args.users:,} users in {produced_s:.1f} s; waiting "
            "for the worker"
        )

        lists = wait_handled(worker, total, args.timeout)
        drained_s = time.monotonic() - t0
        cpu = meter.stop()
        load = svc.contention(t0, t0 + drained_s)
        log(
            f"drained in {drained_s:.1f} s ({total / drained_s:,.0f} events/s end to end); "
            "measuring"
        )

        mem1 = worker_mem(worker)
        metrics_text = fetch_text(worker.url("/metrics"))
        redis1 = redis_used(client)
        sample = [
            f"u{i}"
            for i in random.Random(args.seed + 1).sample(
                range(args.users), min(args.sample, args.users)
            )
        ]
        per_kind = sample_user_keys(client, keys, sample)
        shared = shared_keys(client, settings.redis_namespace)
        key_counts = count_user_keys(client, settings.redis_namespace)
    finally:
        worker.stop()
        client.close()

    delta = redis1["used_memory"] - redis0["used_memory"]
    shared_bytes = sum(r["bytes"] for r in shared)
    per_user_keys = sum(k["mean_bytes"] * k["present"] / k["sampled"] for k in per_kind.values())
    cached = prom_sum(metrics_text, "recloop_cached_users")
    return {
        "config": {
            "batch_within_seconds": settings.batch_within_seconds,
            "users": args.users,
            "events_per_user": f"{lo}-{hi}" if lo != hi else str(lo),
            "items": args.items,
            "partitions": args.partitions,
            "seed": args.seed,
            "sample": len(sample),
            "history_size": settings.history_size,
            "dedupe_ids_per_user": settings.dedupe_ids_per_user,
            "user_ttl_seconds": settings.user_ttl_seconds,
        },
        "events": total,
        "produce_seconds": produced_s,
        "drain_seconds": drained_s,
        "drain_rate": total / drained_s,
        "lists_published": lists,
        "cpu_percent": cpu,
        "machine_load_percent": load,
        "worker": {
            "rss_ready_mib": mem0["VmRSS"],
            "rss_after_mib": mem1["VmRSS"],
            "rss_peak_mib": mem1["VmHWM"],
            "rss_growth_per_user_bytes": (mem1["VmRSS"] - mem0["VmRSS"]) * 2**20 / args.users,
            "cached_users": cached,
        },
        "redis": {
            "before": redis0,
            "after": redis1,
            "delta_bytes": delta,
            "delta_per_user_bytes": delta / args.users,
            "shared_keys": shared[:20],
            "shared_bytes": shared_bytes,
            "delta_minus_shared_per_user_bytes": (delta - shared_bytes) / args.users,
            "per_user_keys_sampled_bytes": per_user_keys,
            "per_kind": per_kind,
            "user_key_counts": dict(key_counts),
        },
    }


def report(r: dict[str, Any]) -> str:
    c, w, rd = r["config"], r["worker"], r["redis"]
    mib = 2**20
    head = table(
        ["measure", "value"],
        [
            ["events handled", r["events"]],
            ["drain (s) / events per s", f"{r['drain_seconds']:,.1f} / {r['drain_rate']:,.0f}"],
            ["lists published", r["lists_published"]],
            ["worker RSS ready (MiB)", w["rss_ready_mib"]],
            ["worker RSS after (MiB)", w["rss_after_mib"]],
            ["worker RSS peak (MiB)", w["rss_peak_mib"]],
            ["worker RSS growth per user (bytes)", round(w["rss_growth_per_user_bytes"])],
            ["user states cached in worker", int(w["cached_users"])],
            ["redis used_memory before (MiB)", rd["before"]["used_memory"] / mib],
            ["redis used_memory after (MiB)", rd["after"]["used_memory"] / mib],
            ["redis used_memory delta per user (bytes)", round(rd["delta_per_user_bytes"])],
            ["  of which shared keys (MiB total)", rd["shared_bytes"] / mib],
            [
                "  delta minus shared, per user (bytes)",
                round(rd["delta_minus_shared_per_user_bytes"]),
            ],
            ["per-user keys, MEMORY USAGE sum (bytes)", round(rd["per_user_keys_sampled_bytes"])],
        ],
        title=(
            f"memory: {c['users']:,} users x {c['events_per_user']} events through 1 worker, "
            f"{c['items']:,} items; key sizes from {c['sample']:,} sampled users"
        ),
    )
    kinds = table(
        [
            "per-user key",
            "type / encoding",
            "present",
            "mean bytes",
            "p50 bytes",
            "max bytes",
            "mean length",
        ],
        [
            [
                k,
                f"{v['type']} / {v['encoding']}",
                f"{v['present']}/{v['sampled']}",
                v["mean_bytes"],
                v["p50_bytes"],
                v["max_bytes"],
                v["mean_length"],
            ]
            for k, v in rd["per_kind"].items()
        ],
    )
    shared = table(
        ["shared key (not per user)", "type", "bytes"],
        [[s["key"], s["type"], s["bytes"]] for s in rd["shared_keys"][:8]],
    )
    note = contention_note(r["machine_load_percent"], affects="drain speed only; sizes unaffected")
    return "\n\n".join([head, kinds, shared, note])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--users", type=int, default=100_000, help="distinct users (default 100,000)")
    p.add_argument(
        "--events-per-user",
        type=parse_range,
        default=(2, 2),
        help="N or A-B events per user (default 2)",
    )
    p.add_argument("--items", type=int, default=2_000, help="catalogue size (default 2,000)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument(
        "--sample", type=int, default=1_000, help="users whose keys are measured (default 1,000)"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds after ready before the baseline (default 3)",
    )
    p.add_argument(
        "--batch-within",
        type=float,
        default=0.25,
        help="the worker's RECLOOP_BATCH_WITHIN_SECONDS (default 0.25, see the module doc)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="max seconds for the worker to handle everything",
    )
    add_common_args(p)
    args = p.parse_args()
    t0 = time.monotonic()
    with services("memory", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        result = run(args, svc)
        result["quiet_at_start"] = svc.quiet
    result["wall_seconds"] = time.monotonic() - t0
    print(report(result))
    path = write_results("memory", result)
    print(f"\nwrote {path} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
