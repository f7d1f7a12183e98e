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
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import redis
from common import (
    CpuMeter,
    Services,
    add_common_args,
    bench_settings,
    contention_note,
    fast_produce,
    fetch_text,
    log,
    percentile,
    proc_status_kib,
    prom_sum,
    services,
    table,
    write_results,
)

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.simulator import World


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    if not 1 <= a <= b:
        raise argparse.ArgumentTypeError(f"expected N or A-B with 1 <= A <= B, got {text!r}")
    return a, b


class UserTraffic:
    """2-3 plausible events for each of the simulator's users, one user after the other."""

    def __init__(self, world: World, seed: int) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.by_category: dict[str, tuple[list[str], list[float]]] = defaultdict(lambda: ([], []))
        for item in world.items():
            sim = world.item(item["item_id"])
            for category in sim.categories:
                ids, weights = self.by_category[category]
                ids.append(sim.item_id)
                weights.append(sim.popularity)

    def events(self, user_index: int, n: int) -> Iterator[dict[str, Any]]:
        """Click an item of a favourite category, react to it (watch or skip), click again..."""
        user = self.world.user(f"u{user_index}")
        rng = self.rng
        context = {
            "device": user.device,
            "locale": user.locale,
            "surface": "home",
            "position": rng.randrange(10),
        }
        item = None
        for k in range(n):
            if k % 2 == 0 or item is None:
                category = rng.choices(list(user.taste), weights=list(user.taste.values()))[0]
                ids, weights = self.by_category.get(category) or next(
                    iter(self.by_category.values())
                )
                item = self.world.item(rng.choices(ids, weights=weights)[0])
                yield self._event(
                    "click", user.user_id, item.item_id, item.duration_seconds, context
                )
                continue
            interest = self.world.interest(user.user_id, item.item_id)
            if rng.random() < 0.8 - 0.7 * interest:
                ev = self._event("skip", user.user_id, item.item_id, item.duration_seconds, context)
                ev["watch_seconds"] = round(
                    rng.uniform(1.0, min(15.0, 0.1 * item.duration_seconds)), 1
                )
            else:
                ev = self._event(
                    "watch", user.user_id, item.item_id, item.duration_seconds, context
                )
                completion = rng.betavariate(1 + 7 * interest, 1 + 7 * (1 - interest))
                ev["watch_seconds"] = round(completion * item.duration_seconds, 1)
            yield ev

    def _event(
        self, kind: str, user_id: str, item_id: str, duration: float, context: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "event_id": f"{self.rng.getrandbits(128):032x}",
            "type": kind,
            "user_id": user_id,
            "item_id": item_id,
            "ts": now_ms(),
            "duration_seconds": duration,
            "context": context,
        }


def redis_used(client: redis.Redis) -> dict[str, int]:
    info = client.info("memory")
    return {
        k: int(info[k])
        for k in ("used_memory", "used_memory_dataset", "used_memory_overhead")
        if k in info
    }


def worker_mem(worker: WorkerProcess) -> dict[str, float]:
    return {k: proc_status_kib(worker.pid, k) / 1024 for k in ("VmRSS", "VmHWM")}


def processed(worker: WorkerProcess) -> tuple[int, int]:
    """(events handled, lists published) from the worker's /metrics."""
    text = fetch_text(worker.url("/metrics"))
    return int(prom_sum(text, "recloop_events_total")), int(
        prom_sum(text, "recloop_lists_published_total")
    )


def sample_user_keys(client: redis.Redis, keys: RedisKeys, users: list[str]) -> dict[str, Any]:
    """MEMORY USAGE, encoding and length of every per-user key kind over ``users``."""
    kinds: dict[str, dict[str, Any]] = {}
    pipe = client.pipeline(transaction=False)
    plan = []
    for user in users:
        for key in keys.user_keys(user):
            kind = key.rsplit(":", 1)[1]
            plan.append((kind, key))
            pipe.memory_usage(key, samples=0)
            pipe.type(key)
            pipe.object("encoding", key)
    replies = pipe.execute(raise_on_error=False)
    lengths_pipe = client.pipeline(transaction=False)
    length_plan = []
    for i, (kind, key) in enumerate(plan):
        usage, typ, enc = replies[3 * i : 3 * i + 3]
        entry = kinds.setdefault(
            kind, {"bytes": [], "missing": 0, "encodings": Counter(), "types": Counter()}
        )
        if usage is None or isinstance(usage, Exception):
            entry["missing"] += 1
            continue
        entry["bytes"].append(int(usage))
        t = typ.decode() if isinstance(typ, bytes) else str(typ)
        entry["types"][t] += 1
        entry["encodings"][enc.decode() if isinstance(enc, bytes) else str(enc)] += 1
        length_plan.append((kind, t))
        {
            "hash": lengths_pipe.hlen,
            "list": lengths_pipe.llen,
            "zset": lengths_pipe.zcard,
            "string": lengths_pipe.strlen,
            "set": lengths_pipe.scard,
        }.get(t, lengths_pipe.exists)(key)
    lengths = lengths_pipe.execute()
    lens: dict[str, list[int]] = defaultdict(list)
    for (kind, _), n in zip(length_plan, lengths, strict=True):
        lens[kind].append(int(n))
    out = {}
    for kind, e in kinds.items():
        b = e["bytes"]
        out[kind] = {
            "sampled": len(users),
            "present": len(b),
            "missing": e["missing"],
            "mean_bytes": sum(b) / len(b) if b else 0.0,
            "p50_bytes": percentile(b, 50),
            "max_bytes": max(b) if b else 0,
            "type": ",".join(e["types"]) or "(absent)",
            "encoding": ",".join(k for k, _ in e["encodings"].most_common()) or "-",
            "mean_length": sum(lens[kind]) / len(lens[kind]) if lens[kind] else 0.0,
        }
    return out


def shared_keys(client: redis.Redis, ns: str) -> list[dict[str, Any]]:
    """Every key of the namespace that is not per user (model log, snapshots, trending, active
    set, segment sets, ...), largest first; robust to keys added to the layout later."""
    user_prefix = f"{ns}:user:".encode()
    rows = []
    for key in client.scan_iter(match=f"{ns}:*", count=10_000):
        if key.startswith(user_prefix):
            continue
        usage = client.memory_usage(key, samples=0) or 0
        rows.append({"key": key.decode(), "bytes": int(usage), "type": client.type(key).decode()})
    rows.sort(key=lambda r: -r["bytes"])
    return rows


def count_user_keys(client: redis.Redis, ns: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for key in client.scan_iter(match=f"{ns}:user:*", count=10_000):
        counts[key.rsplit(b":", 1)[1].decode()] += 1
    return counts


def run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    settings: Settings = bench_settings(
        svc,
        "memory",
        topic_partitions=args.partitions,
        batch_within_seconds=args.batch_within,
    )
    ensure_topics(settings)
    world = World(seed=args.seed, n_users=args.users, n_items=args.items)
    with EventProducer(settings) as producer:
        for item in world.items():
            producer.send_item(item)
        producer.flush(60)
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

        deadline = time.monotonic() + args.timeout
        done, lists = processed(worker)
        last_report = time.monotonic()
        while done < total and time.monotonic() < deadline:
            time.sleep(0.5)
            done, lists = processed(worker)
            if time.monotonic() - last_report > 15:
                log(f"  {done:,}/{total:,} events handled")
                last_report = time.monotonic()
        drained_s = time.monotonic() - t0
        if done < total:
            raise RuntimeError(
                f"worker handled {done:,}/{total:,} events within {args.timeout:.0f} s; see "
                f"{worker.log_path}"
            )
        # deferred refreshes: wait until the published-list count stops moving
        stable_since = time.monotonic()
        while time.monotonic() - stable_since < 2.0:
            time.sleep(0.5)
            _, now_lists = processed(worker)
            if now_lists != lists:
                lists, stable_since = now_lists, time.monotonic()
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
