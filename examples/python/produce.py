"""Produce recloop events and a control from Python with confluent-kafka.

    pip install confluent-kafka
    python produce.py USER_ID [ITEM_ID ...]

Configuration comes from the same variables recloop reads: RECLOOP_KAFKA_BOOTSTRAP
(127.0.0.1:9092), RECLOOP_TOPIC_EVENTS (recloop.events), RECLOOP_TOPIC_CONTROLS
(recloop.controls). Prints one JSON line per acknowledged record: topic, key, partition,
offset.

The one setting that matters: ``partitioner: murmur2_random``. recloop's workers expect a
user's events and controls on the partition Kafka's Java client would choose
(murmur2 of the key); librdkafka's default (``consistent_random``, CRC32) would split users
across partitions and break per-user order and the co-partitioning of controls with events.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

from confluent_kafka import Producer


def main() -> int:
    if len(sys.argv) < 2:
        sys.stderr.write("usage: produce.py USER_ID [ITEM_ID ...]\n")
        return 2
    user_id, items = sys.argv[1], sys.argv[2:] or ["item-1", "item-2"]
    producer = Producer(
        {
            "bootstrap.servers": os.environ.get("RECLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            "partitioner": "murmur2_random",  # Kafka's Java-compatible key hashing: required
            "acks": "all",
            "enable.idempotence": True,
        }
    )
    events_topic = os.environ.get("RECLOOP_TOPIC_EVENTS", "recloop.events")
    controls_topic = os.environ.get("RECLOOP_TOPIC_CONTROLS", "recloop.controls")
    failures: list[str] = []

    def delivered(err, msg) -> None:  # noqa: ANN001 (confluent-kafka's callback signature)
        if err is not None:
            failures.append(str(err))
            return
        record = {"topic": msg.topic(), "key": msg.key().decode(),
                  "partition": msg.partition(), "offset": msg.offset()}  # fmt: skip
        print(json.dumps(record), flush=True)

    now = int(time.time() * 1000)
    events = [{"type": "watch", "item_id": items[0], "watch_seconds": 540, "duration_seconds": 600}]
    events += [{"type": "click", "item_id": item} for item in items[1:]]
    for event in events:
        event |= {"event_id": str(uuid.uuid4()), "user_id": user_id, "ts": now}
        # key = user_id: all of a user's events on one partition, in order
        producer.produce(events_topic, json.dumps(event).encode(), user_id.encode(),
                         on_delivery=delivered)  # fmt: skip
    control = {"control_id": str(uuid.uuid4()), "type": "declare_interests",
               "user_id": user_id, "ts": now, "categories": ["Comedy"]}  # fmt: skip
    producer.produce(controls_topic, json.dumps(control).encode(), user_id.encode(),
                     on_delivery=delivered)  # fmt: skip
    left = producer.flush(30)
    if failures or left:
        sys.stderr.write(f"not delivered: {failures or left}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
