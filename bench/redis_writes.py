"""The Redis write path of a batch, on a single Redis and on a 3-master Redis Cluster.

    .venv/bin/python bench/redis_writes.py [--batches 200] [--users 250] [--events-per-user 2]

What one worker batch writes, without Kafka and without ranking: ``--users`` users with
``--events-per-user`` new events each (features, history, sets, the owed refresh, the
user's version, their index entries, the batch's model-log entry and experiment counters)
through ``BatchStore.write``, then one list per user through ``RedisListStore.write``. Each
batch's users are new, so every write does the full work. Both kinds of Redis are started
here on free loopback ports (``LocalStack``'s Redis, ``LocalRedisCluster``), with the same
settings as the test suite, one after the other.

Reported per kind: median and p99 milliseconds per batch for the batch write and the list
write (client wall clock: the round trips plus the Lua work), and the Redis servers' CPU
per batch (``INFO cpu``, summed over the nodes) and the client's own CPU per batch (encoding,
pipelines). Results: ``bench/results/redis_writes.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results import write_json  # noqa: E402  (bench/ is on sys.path)

from pipeline.config import Settings  # noqa: E402
from pipeline.features.state import UserState  # noqa: E402
from pipeline.lists.build import BuiltList, Trigger  # noqa: E402
from pipeline.model.catalog import ItemInfo  # noqa: E402
from pipeline.model.learn import learn_batch  # noqa: E402
from pipeline.model.models import ModelParams, SharedModels  # noqa: E402
from pipeline.stores.batch import BatchEffects, BatchStore  # noqa: E402
from pipeline.stores.client import RedisClient, open_redis, sync_redis  # noqa: E402
from pipeline.stores.commands import load_scripts  # noqa: E402
from pipeline.stores.experiments import Contribution  # noqa: E402
from pipeline.stores.lists import RedisListStore  # noqa: E402
from pipeline.stores.model_log import ModelLog  # noqa: E402
from pipeline.stores.users import UserStore  # noqa: E402
from pipeline.tooling.probes import free_ports  # noqa: E402
from pipeline.tooling.redis_cluster import LocalRedisCluster  # noqa: E402
from pipeline.tooling.stack import LocalStack  # noqa: E402
from pipeline.worker.processor import feature_params  # noqa: E402
from pipeline.worker.runtime import SCRIPTS, partitioning  # noqa: E402
from schemas.events import Event  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "redis_writes.json"
CATEGORIES = ("Comedy", "Drama", "Music", "Kids", "Sports")


def redis_cpu(url: str) -> float:
    """CPU seconds (user + sys) of every node behind ``url``."""
    client = sync_redis(url)
    try:
        if isinstance(client, redis.RedisCluster):
            info: Any = client.info("cpu", target_nodes=redis.RedisCluster.PRIMARIES)
            nodes = list(info.values())
        else:
            nodes = [client.info("cpu")]
        return sum(float(n["used_cpu_user"]) + float(n["used_cpu_sys"]) for n in nodes)
    finally:
        client.close()


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(redis_url=url, redis_namespace=f"bw{uuid.uuid4().hex[:6]}")
    client: RedisClient = await open_redis(settings)
    keys_ns = settings.redis_namespace
    from pipeline.stores.keys import RedisKeys

    keys = RedisKeys(keys_ns)
    parts = partitioning(settings)
    users = UserStore(
        client, keys=keys, partitions=parts, ttl_seconds=3_600, history_cap=50,
        excluded_cap=2_000, events_cap=2_000,
    )  # fmt: skip
    log = ModelLog(client, keys=keys, worker_id="bench", retention_seconds=600)
    batches = BatchStore(
        client, keys, partitions=parts, users=users, model_log=log, forget_marker_ms=60_000
    )
    lists = RedisListStore(client, keys, parts, ttl_seconds=3_600)
    await load_scripts(client, SCRIPTS)
    models = SharedModels(ModelParams())
    for n in range(200):
        models.upsert_item(ItemInfo(f"i{n}", (CATEGORIES[n % len(CATEGORIES)],), 600.0))
    params = feature_params(settings)
    doc = orjson.dumps({"items": [{"item_id": f"i{n}", "score": 1.0} for n in range(20)]})
    write_ms: list[float] = []
    list_ms: list[float] = []
    client_cpu = 0.0
    cpu_before = redis_cpu(url)
    now = int(time.time() * 1000)
    offset = 0
    for b in range(args.batches):
        states = {f"b{b}-u{u}": UserState(f"b{b}-u{u}") for u in range(args.users)}
        events = []
        for k in range(args.events_per_user):
            for user in states:
                offset += 1
                events.append(Event.model_validate({
                    "event_id": f"{user}-{k}", "type": "watch", "user_id": user,
                    "item_id": f"i{(offset * 7) % 200}", "ts": now + k,
                    "watch_seconds": 500.0, "duration_seconds": 600.0,
                }))  # fmt: skip
        learning = learn_batch(models, states, events, params=params, threshold=0.6)
        owed = {u: (Trigger(f"{u}-1", now), now + 500) for u in states}
        outcomes = [
            Contribution(parts.of(e.user_id), "events:0", offset + i, "bench", "a", {"actions": 1})
            for i, e in enumerate(events[: args.users // 5])
        ]
        effects = BatchEffects(
            now, uuid.uuid4().hex, list(states.values()), learning.records,
            outcomes=outcomes, owed=owed,
        )  # fmt: skip
        started, cpu_started = time.perf_counter(), time.process_time()
        result = await batches.write(effects)
        write_ms.append((time.perf_counter() - started) * 1000)
        client_cpu += time.process_time() - cpu_started
        assert not result.conflicted and not result.reload
        built = [BuiltList(u, doc, Trigger(f"{u}-1", now), None) for u in states]
        started, cpu_started = time.perf_counter(), time.process_time()
        stored = await lists.write(built)
        list_ms.append((time.perf_counter() - started) * 1000)
        client_cpu += time.process_time() - cpu_started
        assert all(stored)
    cpu = redis_cpu(url) - cpu_before
    await client.aclose()

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "median_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
        }

    return {
        "batch_write": summary(write_ms),
        "list_write": summary(list_ms),
        "redis_cpu_ms_per_batch": round(cpu * 1000 / args.batches, 2),
        "client_cpu_ms_per_batch": round(client_cpu * 1000 / args.batches, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--users", type=int, default=250, help="users per batch (default 250)")
    p.add_argument("--events-per-user", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        port, *cluster_ports = free_ports(7)
        stack = LocalStack(Path(tmp) / "single", redis_port=port)
        cluster = LocalRedisCluster(
            Path(tmp) / "cluster", ports=cluster_ports[:3], bus_ports=cluster_ports[3:]
        )
        try:
            stack.start_redis()
            results["redis"] = asyncio.run(measure(stack.redis_url, args))
            stack.stop()
            cluster.start()
            results["redis-cluster"] = asyncio.run(measure(cluster.url, args))
        finally:
            stack.stop()
            cluster.stop()
    doc = {
        "benchmark": "redis_writes",
        "timestamp": int(time.time()),
        "load_average_1m_at_end": os.getloadavg()[0],
        "config": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }
    write_json(args.out, doc)  # with the machine facts (harness.results)
    head = ("redis", "batch write p50/p99 ms", "list write p50/p99 ms", "CPU ms redis/client")
    print(f"{head[0]:<15}{head[1]:>26}{head[2]:>26}{head[3]:>22}")
    for kind, r in results.items():
        bw, lw = r["batch_write"], r["list_write"]
        cpu = f"{r['redis_cpu_ms_per_batch']:.1f} / {r['client_cpu_ms_per_batch']:.1f}"
        print(
            f"{kind:<15}{bw['median_ms']:>15.2f} / {bw['p99_ms']:<8.2f}"
            f"{lw['median_ms']:>15.2f} / {lw['p99_ms']:<8.2f}{cpu:>22}"
        )


if __name__ == "__main__":
    main()
