"""Read a user's recommendation list from Python: from the topic, then over HTTP.

    pip install confluent-kafka
    python read_lists.py USER_ID

RECLOOP_KAFKA_BOOTSTRAP, RECLOOP_TOPIC_RECOMMENDATIONS and RECLOOP_API_URL
(http://127.0.0.1:8000) configure it; RECLOOP_API_KEY is sent when set. Prints two JSON
lines: the first list published for USER_ID on the recommendations topic (recommendation
v1, keyed by user_id), then ``GET /v1/users/{USER_ID}/recommendations``. Exits 1 if no
list arrives within 60 s.

A downstream service reads the whole topic with its own consumer group, as here. Since lists
are keyed by user_id with Kafka's murmur2 partitioner, a reader interested in few users
could read only their partitions: ``murmur2(user_id) & 0x7fffffff % partitions``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

from confluent_kafka import Consumer


def from_topic(user_id: str, timeout: float) -> dict | None:
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get("RECLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            "group.id": f"example-list-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([os.environ.get("RECLOOP_TOPIC_RECOMMENDATIONS", "recloop.recommendations")])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            if msg.key() == user_id.encode():
                return json.loads(msg.value())
    finally:
        consumer.close()
    return None


def from_api(user_id: str) -> dict:
    base = os.environ.get("RECLOOP_API_URL", "http://127.0.0.1:8000")
    url = f"{base}/v1/users/{urllib.parse.quote(user_id, safe='')}/recommendations"
    request = urllib.request.Request(url)
    if os.environ.get("RECLOOP_API_KEY"):
        request.add_header("X-API-Key", os.environ["RECLOOP_API_KEY"])
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (configured URL)
        return json.loads(response.read())


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: read_lists.py USER_ID\n")
        return 2
    user_id = sys.argv[1]
    published = from_topic(user_id, timeout=60)
    if published is None:
        sys.stderr.write(f"no list for {user_id} on the topic within 60 s\n")
        return 1
    print(json.dumps(published), flush=True)
    print(json.dumps(from_api(user_id)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
