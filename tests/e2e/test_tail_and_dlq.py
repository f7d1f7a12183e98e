"""``recloop tail`` and ``recloop dlq list|redrive`` against a real worker, Kafka and Redis.

Dead letters of reason ``processing_error`` are written the way a worker writes them (the
worker only does so after a batch failed twice, which a test cannot provoke from outside):
one for an event the worker already applied, one for an event it never saw, one whose
original is not JSON. Re-driving applies the missing event once, changes nothing for the
applied one (de-duplication by event_id), skips the invalid one unless ``--force``, and
can be repeated without effect.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from pipeline.config import Settings
from pipeline.kafka.dead_letters import dead_letters
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess, wait_for
from schemas.dead_letter import RejectReason
from schemas.validation import Rejected, dead_letter_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def env(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> Iterator[tuple[Settings, WorkerProcess]]:
    settings = settings_factory(topic_partitions=2)
    ensure_topics(settings)
    worker = WorkerProcess(settings, log_path=tmp_path / "worker.log").wait_ready(90)
    yield settings, worker
    worker.stop()


def recloop(
    settings: Settings, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents", *args],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clicks(client: redis.Redis, keys: RedisKeys, user: str) -> int:
    return int(client.hget(keys.features(user), "n_click") or 0)


def test_dlq_redrive_resends_valid_originals_once_in_effect(
    env: tuple[Settings, WorkerProcess], redis_client: redis.Redis
) -> None:
    settings, worker = env
    keys = RedisKeys(settings.redis_namespace)
    user = f"dlq-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)

    def event(event_id: str) -> bytes:
        doc = {"event_id": event_id, "type": "click", "user_id": user, "item_id": "i", "ts": now}
        return orjson.dumps(doc)

    applied, missed = event(f"{user}-applied"), event(f"{user}-missed")
    with EventProducer(settings) as producer:
        producer.send_raw(settings.topic_events, user, applied)
        producer.send_raw(settings.topic_events, user, b"{not json")  # a real dead letter
        for n, raw in enumerate((applied, missed, b"\x00 not json")):
            letter = dead_letter_bytes(
                raw,
                Rejected(RejectReason.PROCESSING_ERROR, "batch failed twice"),
                topic=settings.topic_events,
                partition=0,
                offset=n,
                now_ms=now,
            )
            producer.send_raw(settings.topic_dlq, None, letter)
    assert wait_for(lambda: clicks(redis_client, keys, user) == 1, timeout=30), worker.tail()
    assert wait_for(lambda: len(dead_letters(settings)) == 4, timeout=30)

    listed = recloop(settings, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "4 dead letter(s)" in listed.stdout
    assert re.search(r"processing_error +3\n", listed.stdout), listed.stdout
    assert re.search(r"not_json +1\n", listed.stdout), listed.stdout
    as_json = recloop(settings, "dlq", "list", "--reason", "not_json", "--json")
    [doc] = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert doc["reason"] == "not_json" and doc["original_text"] == "{not json"

    first = recloop(settings, "dlq", "redrive", "--reason", "processing_error")
    assert first.returncode == 1  # one letter skipped
    assert "re-sent 2 of 3 dead letter(s) with reason processing_error" in first.stdout
    assert "not a valid message (not_json); --force" in first.stderr
    assert wait_for(lambda: clicks(redis_client, keys, user) == 2, timeout=30), worker.tail()

    again = recloop(settings, "dlq", "redrive", "--reason", "processing_error")
    assert "re-sent 2 of 3" in again.stdout
    forced = recloop(settings, "dlq", "redrive", "--reason", "processing_error", "--force")
    assert forced.returncode == 0 and "re-sent 3 of 3" in forced.stdout
    # the forced invalid original is dead-lettered again, with the reason the parser gives
    assert wait_for(
        lambda: sum(d["reason"] == "not_json" for d in dead_letters(settings)) == 2, timeout=30
    )
    time.sleep(2)  # the re-driven copies of both events have been handled by now
    assert clicks(redis_client, keys, user) == 2  # applied once each, whatever was re-sent


def test_tail_follows_a_topic_filters_by_user_and_stops_on_ctrl_c(
    env: tuple[Settings, WorkerProcess],
) -> None:
    settings, worker = env
    user, other = f"tail-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    with EventProducer(settings) as producer:
        producer.click(other, "i")
        producer.click(user, "i")
        producer.watch(user, "j", 60.0, duration_seconds=120.0)
    done = recloop(settings, "tail", "events", "--from-beginning", "--user", user, "--max", "2")
    assert done.returncode == 0, done.stderr
    values = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(v["user_id"], v["type"]) for v in values] == [(user, "click"), (user, "watch")]
    assert "tail: 2 record(s)" in done.stderr

    # from the end: only what arrives after it started; Ctrl-C ends it cleanly
    follow = subprocess.Popen(
        [sys.executable, "-m", "agents", "tail", "recommendations", "--meta"],
        env={**os.environ, **settings.to_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)  # started and positioned at the end
        with EventProducer(settings) as producer:
            producer.click(user, "k")
        assert follow.stdout is not None
        line = follow.stdout.readline()  # blocks until the worker's list arrives
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=60)  # closing the consumer is slow under load
    finally:
        if follow.poll() is None:
            follow.kill()
    record: dict[str, Any] = orjson.loads(line)
    assert record["topic"] == settings.topic_recommendations and record["key"] == user
    assert record["value"]["user_id"] == user
    assert follow.returncode == 0 and "Traceback" not in err, err
    assert "record(s) from" in err
