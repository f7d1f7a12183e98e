"""recloop's Kafka clients against a real broker: partitioning, lag, readers.

* Keys land where Kafka's Java client puts them: the pure murmur2 agrees with Kafka's own
  ``Utils.murmur2`` (run from the broker's jars), and the broker holds every record
  ``EventProducer`` sent on the partition that function names.
* Lag is end offset minus committed offset, from the broker (``pipeline.kafka.lag``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.lag import KafkaAdmin
from pipeline.kafka.partitioning import murmur2, partition_for
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.reader import read_range
from pipeline.kafka.topics import ensure_topics
from pipeline.tooling.processes import TopicReader

pytestmark = pytest.mark.integration

JAVA_MURMUR2 = """
import org.apache.kafka.common.utils.Utils;
import java.nio.charset.StandardCharsets;
public class Murmur2 {
    public static void main(String[] args) throws Exception {
        var in = new java.io.BufferedReader(
            new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; )
            System.out.println(Utils.murmur2(line.getBytes(StandardCharsets.UTF_8)));
    }
}
"""


def test_murmur2_is_kafkas_own(kafka_jar_cache: Path, tmp_path: Path) -> None:
    """The pure function against ``org.apache.kafka.common.utils.Utils.murmur2`` itself."""
    java = shutil.which("java")
    assert java, "java runs the broker; it must be here"
    libs = sorted(kafka_jar_cache.glob("libs-*"))
    assert libs, f"no Kafka jars in {kafka_jar_cache}"
    source = tmp_path / "Murmur2.java"
    source.write_text(JAVA_MURMUR2)
    rng = random.Random(3)
    keys = [f"user-{n}" for n in range(300)] + [
        "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_é€")
            for _ in range(rng.randrange(1, 40))
        )
        for _ in range(300)
    ]
    done = subprocess.run(
        [java, "-cp", f"{libs[-1]}/*", str(source)],
        input="\n".join(keys) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert [int(v) for v in done.stdout.split()] == [murmur2(k.encode()) for k in keys]


def test_the_broker_holds_each_key_on_its_murmur2_partition(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(topic_partitions=6)
    ensure_topics(settings)
    users = [f"u-{uuid.uuid4().hex[:8]}-{n}" for n in range(400)]
    with EventProducer(settings) as producer:
        for user in users:
            producer.click(user, "item-1")
            producer.control("mute", user, category="News")
        for n in range(100):
            producer.item(f"item-{n}", ["News"])
    for topic, keys in (
        (settings.topic_events, users),
        (settings.topic_controls, users),
        (settings.topic_items, [f"item-{n}" for n in range(100)]),
    ):
        records = read_range(settings, topic, timeout=30)
        assert len(records) == len(keys)
        placed = {r.key.decode(): r.partition for r in records if r.key}
        assert placed == {k: partition_for(k, 6) for k in keys}, topic


def test_lag_is_end_minus_committed_per_partition(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(topic_partitions=2)
    ensure_topics(settings)
    topic = settings.topic_events
    by_partition: dict[int, list[str]] = {0: [], 1: []}
    n = 0
    while min(len(v) for v in by_partition.values()) < 5:
        user = f"lag-{n}"
        by_partition[partition_for(user, 2)].append(user)
        n += 1
    with EventProducer(settings) as producer:
        for user in by_partition[0][:5] + by_partition[1][:5]:
            producer.click(user, "i")
    group = f"{settings.app_id}-lagtest"
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    consumer.close()
    admin = KafkaAdmin(settings)
    parts = admin.partitions([topic])
    assert parts == [(topic, 0), (topic, 1)]
    # partition 0: 5 written, 3 committed; partition 1: never committed, counted from 0
    assert admin.lag(group, parts) == {(topic, 0): 2, (topic, 1): 5}
    status = admin.group_status(group, lag_topics=[topic], topics=[topic])
    assert status.total_lag == 7 and status.end_offsets == {topic: 10}
    assert status.members == 0 and status.state == "empty"


def test_topic_reader_from_the_end_sees_only_new_records(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(topic_partitions=3)
    ensure_topics(settings)
    with EventProducer(settings) as producer:
        producer.click("old", "i")
    reader = TopicReader(settings, settings.topic_events)
    from pipeline.kafka.reader import TopicReader as Tail

    tail = Tail(settings, settings.topic_events, start="end")
    try:
        with EventProducer(settings) as producer:
            producer.click("new", "i")
        got: list[bytes | None] = []
        for _ in range(50):
            got += [r.key for r in tail.poll(0.2)]
            if got:
                break
        assert got == [b"new"]
        keys = [r.key for r in reader.until(lambda rs: len(rs) >= 2, timeout=20)]
        assert sorted(k or b"" for k in keys) == [b"new", b"old"]
    finally:
        tail.close()
        reader.close()
