"""One owner per user whatever the producer, and forget is final: live, on a Redis Cluster.

* Ten clicks for one user sent alternately to their partition and another one (a producer
  that partitions by hand) count exactly ten, with two workers: the misplaced ones hop to
  the user's partition before anyone applies them.
* Events keyed like kcat / librdkafka do by default (CRC32, not Kafka's murmur2) and then a
  ``recloop forget``: nothing of the user is left, whichever reached the owner first.
* A forget sent behind a 3,000-event backlog of the user's partition: the user's earlier
  event, processed after the forget, is dropped (the forget marker), nothing is left.
* After a forget, no key of the keyspace names the user nor holds their id (``SCAN`` every
  node), for every key pattern of README's key table; and every key recloop wrote before
  the forget matches a pattern of that table (the table is complete).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from pipeline.config import Settings
from pipeline.events.build import build_event
from pipeline.kafka.partitioning import key_partitioner
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.client import SyncRedisClient, sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import TopicReader, WorkerProcess, wait_for
from tests.e2e.fault_harness import stop_all

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 8
README = Path(__file__).resolve().parents[2] / "README.md"
ITEMS = [f"{c}-{n}" for c in ("comedy", "drama", "music") for n in range(10)]
EXPERIMENTS = {
    "experiments": [
        {
            "name": "live",
            "attribution_seconds": 3600,
            "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
        }
    ]
}


@dataclass
class Live:
    settings: Settings
    make: Callable[[], Settings]
    redis: SyncRedisClient
    keys: RedisKeys
    workers: list[WorkerProcess]
    logs: Path
    partition: Callable[[str], int]

    def start_workers(self, n: int) -> list[WorkerProcess]:
        started = [
            WorkerProcess(self.make(), log_path=self.logs / f"w{len(self.workers) + k}.log")
            for k in range(n)
        ]
        self.workers.extend(started)
        return [w.wait_ready(90) for w in started]

    def counts(self, user: str) -> tuple[int, int, int]:
        raw = self.redis.hmget(self.keys.features(user), ["n_click", "n_skip", "n_watch"])
        return tuple(int(v or 0) for v in raw)  # type: ignore[return-value]

    def metric(self, name: str, *labels: str) -> float:
        """A counter summed over the live workers (lines containing every label)."""
        total = 0.0
        for w in self.workers:
            if w.proc.poll() is not None:
                continue
            for line in w.metrics().splitlines():
                if line.startswith(name + "{") and all(lbl in line for lbl in labels):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def keyspace(self) -> list[bytes]:
        """Every key of the test's namespace, from every node."""
        return sorted(self.redis.scan_iter(match=f"{self.settings.redis_namespace}:*", count=1000))

    def forget(self, user: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "agents", "forget", user, "--timeout", "60"],
            env={**os.environ, **self.settings.to_env()}, capture_output=True, text=True,
            timeout=90,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "done" in result.stdout


@pytest.fixture
def live(
    settings_factory: Callable[..., Settings], redis_cluster_url: str, tmp_path: Path
) -> Iterator[Live]:
    experiments = tmp_path / "experiments.json"
    experiments.write_bytes(orjson.dumps(EXPERIMENTS))

    def make() -> Settings:
        return settings_factory(
            redis_url=redis_cluster_url,
            topic_partitions=PARTITIONS,
            experiments_file=experiments,
            refresh_interval_ms=10_000,
        )

    settings = make()
    ensure_topics(settings)
    with EventProducer(settings) as producer:
        now = int(time.time() * 1000)
        for n, item in enumerate(ITEMS):
            category = item.split("-")[0].title()
            producer.item(item, [category], duration_seconds=600.0, published_ts=now - n * 60_000)
    client = sync_redis(redis_cluster_url)
    workers: list[WorkerProcess] = []
    keys = RedisKeys(settings.redis_namespace)
    yield Live(settings, make, client, keys, workers, tmp_path, key_partitioner(PARTITIONS))
    stop_all(workers)
    client.close()


def user_where(prefix: str, accept: Callable[[str], bool]) -> str:
    """The first ``<prefix>-<n>`` user id ``accept`` takes."""
    return next(u for n in range(10_000) if accept(u := f"{prefix}-{uuid.uuid4().hex[:4]}{n}"))


def raw_event(settings: Settings, user: str, item: str, kind: str, **extra: Any) -> bytes:
    doc: dict[str, Any] = {"type": kind, "user_id": user, "item_id": item, **extra}
    if kind == "watch":
        doc |= {"watch_seconds": 600.0, "duration_seconds": 600.0}
    return build_event(doc, settings, now_ms=int(time.time() * 1000))[1]


class ByHand:
    """A producer that sends to the partitions it is told (as another client would)."""

    def __init__(self, settings: Settings) -> None:
        config = {"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "linger.ms": 5}
        self.producer = Producer(config)

    def send(self, topic: str, *, key: bytes, value: bytes, partition: int) -> None:
        self.producer.produce(topic, value=value, key=key, partition=partition)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "records not acknowledged within 30 s"

    def close(self) -> None:
        self.flush()


def by_hand(settings: Settings) -> ByHand:
    """A producer that puts each record on the partition it is told."""
    return ByHand(settings)


def crc32_partition(key: str) -> int:
    """librdkafka's default (``consistent_random``) partition of a keyed record: CRC32."""
    return zlib.crc32(key.encode()) % PARTITIONS


def names_user(client: SyncRedisClient, key: bytes, user: bytes) -> bool:
    """Whether ``key``'s name or anything it holds contains ``user``."""
    if user in key:
        return True
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        blobs: list[Any] = [client.get(key)]
    elif kind == "hash":
        blobs = [x for kv in client.hgetall(key).items() for x in kv]
    elif kind == "set":
        blobs = list(client.smembers(key))
    elif kind == "zset":
        blobs = list(client.zrange(key, 0, -1))
    elif kind == "list":
        blobs = list(client.lrange(key, 0, -1))
    elif kind == "stream":
        blobs = [x for _, fields in client.xrange(key) for kv in fields.items() for x in kv]
    else:
        blobs = []
    return any(user in bytes(b) for b in blobs if b is not None)


def readme_key_patterns() -> list[re.Pattern[str]]:
    """The key patterns of README's "Redis keys" table, as regular expressions."""
    text = README.read_text()
    table = text[text.index("| key |", text.index("### Redis keys")) :]
    table = table[: table.index("\n\n")]
    patterns = []
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        for key in re.findall(r"`([^`]+)`", first_cell):
            regex = re.escape(key)
            regex = regex.replace(re.escape("{USER_ID}"), r"\{[^}]+\}")
            regex = regex.replace(re.escape("{P}"), r"\{\d+\}")
            regex = re.sub(
                re.escape(re.escape("<")) + ".*?" + re.escape(re.escape(">")), ".+", regex
            )
            patterns.append(re.compile(regex.replace("recloop", "[^:]+", 1) + "$"))
    return patterns


def test_clicks_sent_to_two_partitions_count_once_each(live: Live) -> None:
    """The "before" of issue #20: n_click=6 while history and de-dup set held 10."""
    live.start_workers(2)
    user = user_where("split", lambda u: live.partition(u) == 1)
    producer = by_hand(live.settings)
    for k in range(10):
        raw = raw_event(live.settings, user, ITEMS[k], "click")
        producer.send(
            live.settings.topic_events, key=user.encode(), value=raw, partition=(1, 5)[k % 2]
        )
    producer.flush()
    producer.close()
    assert wait_for(lambda: live.counts(user) == (10, 0, 0), timeout=60), live.counts(user)
    time.sleep(2)  # nothing late may change it
    assert live.counts(user) == (10, 0, 0)
    assert live.redis.llen(live.keys.history(user)) == 10
    assert live.redis.zcard(live.keys.events(user)) == 10
    assert live.metric("recloop_repartitioned_total", live.settings.topic_events) == 5


def test_forget_after_crc32_keyed_events_leaves_nothing(live: Live) -> None:
    live.start_workers(2)
    user = user_where("kcat", lambda u: crc32_partition(u) != live.partition(u))
    reader = TopicReader(live.settings, live.settings.topic_recommendations)
    producer = by_hand(live.settings)
    for k in range(6):
        raw = raw_event(live.settings, user, ITEMS[k], "watch", context={"locale": "fr-FR"})
        producer.send(live.settings.topic_events, key=user.encode(), value=raw,
                      partition=crc32_partition(user))  # fmt: skip
    producer.flush()
    producer.close()
    live.forget(user)
    assert wait_for(
        lambda: live.metric("recloop_repartitioned_total", live.settings.topic_events) >= 6,
        timeout=30,
    )
    time.sleep(3)  # the hopped events are applied or dropped by now
    offending = [k for k in live.keyspace() if names_user(live.redis, k, user.encode())]
    assert not offending, offending
    tomb = reader.until(lambda rs: any(r.key == user.encode() and r.value is None for r in rs))
    assert any(r.key == user.encode() and r.value is None for r in tomb)
    reader.close()


def test_forget_behind_a_3000_event_backlog_leaves_nothing(live: Live) -> None:
    user = f"late-{uuid.uuid4().hex[:6]}"
    p = live.partition(user)
    tag = uuid.uuid4().hex[:6]
    others = [u for n in range(2_000) if live.partition(u := f"bk{n}-{tag}") == p][:50]
    with EventProducer(live.settings) as producer:  # no worker runs: this is the backlog
        for n in range(3_000):
            producer.click(others[n % len(others)], ITEMS[n % len(ITEMS)])
        producer.watch(user, ITEMS[0], 600.0, duration_seconds=600.0)  # accepted, then...
        producer.flush()
        producer.forget(user)  # ...forgotten before any worker saw the event
        producer.flush()
    live.start_workers(1)
    assert wait_for(
        lambda: sum(sum(live.counts(u)) for u in others) == 3_000, timeout=120, interval=0.5
    )
    time.sleep(2)
    assert live.redis.exists(*live.keys.user_keys(user)) == 0
    offending = [k for k in live.keyspace() if names_user(live.redis, k, user.encode())]
    assert not offending, offending
    dropped = live.metric("recloop_events_total", 'outcome="forgotten"')
    print(f"\nbacklog forget: events dropped as forgotten={dropped:.0f}")


def test_after_forget_no_key_names_the_user(live: Live) -> None:
    live.start_workers(1)
    user = f"scan-{uuid.uuid4().hex[:6]}"
    with EventProducer(live.settings) as producer:
        ctx = {"locale": "de-DE", "device": "tv", "surface": "home"}
        first = producer.watch(user, ITEMS[0], 600.0, duration_seconds=600.0, context=ctx)
        producer.flush()
        assert wait_for(
            lambda: (live.redis.get(live.keys.recs(user)) or b"").find(first.encode()) > 0, 30
        )
        producer.click(user, ITEMS[5])  # an outcome attributed to the user's experiment arm
        producer.control("mute", user, category="Music")
        producer.flush()
        assert wait_for(lambda: live.redis.exists(live.keys.controls(user)) == 1, timeout=30)
        producer.watch(user, ITEMS[1], 600.0, duration_seconds=600.0)  # deferred: owed
        producer.flush()
    p = live.partition(user)
    assert wait_for(lambda: live.redis.zcard(live.keys.owed(p)) > 0, timeout=30)
    before = live.keyspace()
    patterns = readme_key_patterns()
    undocumented = [k for k in before if not any(pt.match(k.decode()) for pt in patterns)]
    assert not undocumented, f"keys missing from README's key table: {undocumented}"
    naming = [k for k in before if names_user(live.redis, k, user.encode())]
    kinds = {pt.pattern for k in naming for pt in patterns if pt.match(k.decode())}
    assert len(kinds) >= 10, f"the user should be in most kinds of key before: {naming}"
    live.forget(user)
    after = live.keyspace()
    offending = [k for k in after if names_user(live.redis, k, user.encode())]
    assert not offending, offending
    assert live.redis.zscore(live.keys.forgotten(p), live.keys.forget_token(user)) is not None
