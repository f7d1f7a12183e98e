"""How long a withdrawn item stays in users' lists (issue #17 goal: p99 < 2 s for 10k lists).

    .venv/bin/python bench/withdraw.py [--users 10000] [--runs 3] [--workers 1]

End to end on a real broker and Redis (started here on free loopback ports unless
``RECLOOP_KAFKA_BOOTSTRAP`` / ``RECLOOP_REDIS_URL`` are set) with real worker processes:
``--users`` new users click the same item, so their lists are alike and hold the same
items. Each run then withdraws (``available: false`` on the items topic) an item that every
one of those lists holds, and times, per user, the withdrawal message's send to the first
list of that user on ``recloop.recommendations`` that no longer holds it (the record's
timestamp, set when the worker sent it; Redis was written just before). Afterwards it
checks that no stored list holds the item. Between runs the worker's background refreshes
(which rank the lists again) are left to finish.

Reported per run: lists changed, p50 / p95 / p99 / max seconds; and the median over runs of
the p99. Results: ``bench/results/withdraw.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `harness` beside this file

from harness.output import log, table  # noqa: E402
from harness.results import write_results  # noqa: E402
from harness.services import bench_settings, services, with_new_port  # noqa: E402
from harness.stats import summary  # noqa: E402

from pipeline.config import Settings  # noqa: E402
from pipeline.kafka.producer import EventProducer  # noqa: E402
from pipeline.kafka.topics import ensure_topics  # noqa: E402
from pipeline.stores.client import sync_redis  # noqa: E402
from pipeline.stores.keys import RedisKeys  # noqa: E402
from pipeline.tooling.processes import TopicReader, WorkerProcess  # noqa: E402

CATEGORIES = ("Comedy", "Drama", "Music", "Kids", "Sports", "Documentary")
PER_CATEGORY = 20
GOAL_P99_SECONDS = 2.0


def _items(raw: bytes | None) -> list[str]:
    return [] if raw is None else [e["item_id"] for e in orjson.loads(raw)["items"]]


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout} s waiting for {what}"
            raise TimeoutError(msg)
        time.sleep(0.5)


def _stored(client: Any, keys: RedisKeys, users: list[str]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for lo in range(0, len(users), 2_000):
        chunk = users[lo : lo + 2_000]
        pipe = client.pipeline(transaction=False)
        for user in chunk:
            pipe.get(keys.recs(user))
        out.update(zip(chunk, pipe.execute(), strict=True))
    return out


def _held_by(client: Any, keys: RedisKeys, settings: Settings, item: str) -> set[str]:
    users: set[str] = set()
    for p in range(settings.topic_partitions):
        users.update(m.decode() for m in client.zrange(keys.holders(p, item), 0, -1))
    return users


def run(args: argparse.Namespace) -> dict[str, Any]:
    with services("withdraw") as svc:
        settings = bench_settings(svc, "withdraw", topic_partitions=args.partitions)
        ensure_topics(settings)
        keys = RedisKeys(settings.redis_namespace)
        client = sync_redis(settings.redis_url)
        now = int(time.time() * 1000)
        with EventProducer(settings) as producer:
            for c in CATEGORIES:
                for n in range(PER_CATEGORY):
                    producer.item(
                        f"{c.lower()}-{n}", [c], duration_seconds=600.0,
                        published_ts=now - n * 3_600_000, title=f"{c} {n}",
                    )  # fmt: skip
        workers = [
            WorkerProcess(with_new_port(settings), log_path=svc.workdir / f"worker-{k}.log")
            for k in range(args.workers)
        ]
        reader = TopicReader(settings, settings.topic_recommendations)
        try:
            for w in workers:
                w.wait_ready(180)
            tag = uuid.uuid4().hex[:6]
            users = [f"w{tag}-{k}" for k in range(args.users)]
            started = time.monotonic()
            with EventProducer(settings) as producer:
                for user in users:
                    producer.click(user, "comedy-0")
            _wait(
                lambda: all(v is not None for v in _stored(client, keys, users).values()),
                600,
                "every user's first list",
            )
            log(f"{len(users)} users have a list ({time.monotonic() - started:.1f} s)")
            runs = []
            for r in range(args.runs):
                time.sleep(args.settle)  # background refreshes of the previous run finish
                stored = _stored(client, keys, users)
                common = set(_items(stored[users[0]]))
                for raw in stored.values():
                    common &= set(_items(raw))
                if not common:
                    log("the lists share no item any more; stopping")
                    break
                item = sorted(common)[0]
                holders = _held_by(client, keys, settings, item)
                reader.poll(1.0)
                seen = len(reader.records)
                category = [item.split("-")[0].title()]
                with EventProducer(settings) as producer:
                    # a warm client: its connection and idempotence set-up are not timed
                    producer.item(item, category, duration_seconds=600.0)
                    producer.flush()
                    time.sleep(1.0)
                    t0 = int(time.time() * 1000)
                    producer.item(item, category, duration_seconds=600.0, available=False)
                    producer.flush()
                first: dict[str, int] = {}
                deadline = time.monotonic() + 120
                while len(first) < len(holders) and time.monotonic() < deadline:
                    reader.poll(0.5)
                    for rec in reader.records[seen:]:
                        user = (rec.key or b"").decode()
                        if user in holders and user not in first and item not in _items(rec.value):
                            first[user] = int(rec.timestamp_ms or 0)
                    seen = len(reader.records)
                latencies = [(ts - t0) / 1000 for ts in first.values()]
                after = _stored(client, keys, users)
                still = sum(item in _items(raw) for raw in after.values())
                stats = summary(latencies)
                runs.append({
                    "item": item, "holders": len(holders), "lists_changed": len(first),
                    "still_holding": still, "seconds": stats,
                })  # fmt: skip
                log(f"run {r + 1}: {len(first)}/{len(holders)} lists, p99 {stats['p99']:.3f} s")
        finally:
            reader.close()
            for w in workers:
                w.stop()
            client.close()
    p99s = [run["seconds"]["p99"] for run in runs]
    return {
        "users": args.users,
        "workers": args.workers,
        "partitions": args.partitions,
        "runs": runs,
        "median_p99_seconds": statistics.median(p99s) if p99s else None,
        "goal_p99_seconds": GOAL_P99_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds between runs")
    args = parser.parse_args()
    result = run(args)
    rows = [
        [
            str(k + 1), r["holders"], r["lists_changed"], r["still_holding"],
            f"{r['seconds']['p50']:.3f}", f"{r['seconds']['p95']:.3f}",
            f"{r['seconds']['p99']:.3f}", f"{r['seconds']['max']:.3f}",
        ]
        for k, r in enumerate(result["runs"])
    ]  # fmt: skip
    print(table(
        ["run", "lists holding", "changed", "still holding", "p50 s", "p95 s", "p99 s", "max s"],
        rows,
        title=f"withdrawn item leaves {args.users:,} lists ({args.workers} worker(s))",
    ))  # fmt: skip
    print(f"median p99: {result['median_p99_seconds']} s (goal < {GOAL_P99_SECONDS} s)")
    path = write_results("withdraw", result)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
