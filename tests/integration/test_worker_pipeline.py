"""One real worker process on the real broker and Redis: ingest, features, lists, dead letters."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import TopicReader, WorkerProcess, wait_for
from tests.integration.conftest import (
    CATEGORIES,
    ITEMS_PER_CATEGORY,
    counts,
    features,
    item_id,
    recs,
)


def test_first_click_of_a_new_user_yields_a_list_on_the_topic_and_in_redis(
    stack: dict[str, Any],
) -> None:
    settings: Settings = stack["settings"]
    user = f"new-{uuid.uuid4().hex[:6]}"
    reader = TopicReader(settings, settings.topic_recommendations)
    with EventProducer(settings) as producer:
        event_id = producer.click(
            user, item_id("Music", 3), context={"locale": "en-GB", "device": "web"}
        )
        producer.flush()
    assert wait_for(lambda: recs(stack, user) is not None, timeout=30)
    doc = recs(stack, user)
    assert doc is not None
    assert doc["trigger_event_id"] == event_id
    assert doc["schema_version"] == 1 and doc["user_id"] == user
    assert len(doc["items"]) == settings.list_size
    assert all(entry["reason"] for entry in doc["items"])
    assert item_id("Music", 3) not in [entry["item_id"] for entry in doc["items"]]
    records = reader.until(lambda rs: any(r.key == user.encode() for r in rs), timeout=30)
    published = [orjson.loads(r.value) for r in records if r.key == user.encode()]
    reader.close()
    assert published and published[-1] == doc  # the Redis key holds the latest message


def test_features_hash_has_the_documented_fields_and_a_ttl(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"feat-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        producer.watch(user, item_id("Drama", 1), 600.0, duration_seconds=600.0)
        producer.skip(user, item_id("Kids", 1), watch_seconds=2.0)
        producer.click(user, item_id("Drama", 2))
        producer.flush()
    assert wait_for(lambda: sum(counts(stack, user)) == 3, timeout=30)
    f = features(stack, user)
    for name in (
        "n_click",
        "n_skip",
        "n_watch",
        "n_events",
        "skip_rate",
        "mean_completion",
        "affinity",
        "top_categories",
        "first_ts",
        "last_ts",
        "updated_ts",
        "schema_version",
    ):
        assert name in f, name
    assert counts(stack, user) == (1, 1, 1)
    assert orjson.loads(f["top_categories"])[0] == "Drama"
    assert float(f["skip_rate"]) == pytest.approx(1 / 3, abs=1e-6)
    keys: RedisKeys = stack["keys"]
    for key in (keys.features(user), keys.history(user), keys.excluded(user), keys.events(user)):
        ttl = stack["redis"].ttl(key)
        assert 0 < ttl <= settings.user_ttl_seconds, key
    assert wait_for(lambda: stack["redis"].ttl(keys.recs(user)) > 0, timeout=10)


def test_watches_in_one_category_make_it_dominate_the_list(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"docs-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        producer.click(user, item_id("Comedy", 0))
        for n in range(5):
            producer.watch(user, item_id("Documentary", n), 590.0, duration_seconds=600.0)
        last = producer.watch(user, item_id("Documentary", 5), 600.0, duration_seconds=600.0)
        producer.flush()

    def reflects_last() -> bool:
        doc = recs(stack, user)
        return doc is not None and doc["trigger_event_id"] == last

    assert wait_for(reflects_last, timeout=30)
    doc = recs(stack, user)
    assert doc is not None
    categories = [entry["item_id"].split("-")[0] for entry in doc["items"]]
    top = Counter(categories).most_common(1)[0][0]
    assert top == "documentary"
    assert categories[:3] == ["documentary"] * 3
    assert categories.count("documentary") <= settings.category_cap


def test_completed_and_skipped_items_never_reappear(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"excl-{uuid.uuid4().hex[:6]}"
    done = [item_id("Sports", n) for n in range(4)]
    skipped = [item_id("Sports", n) for n in range(4, 7)]
    with EventProducer(settings) as producer:
        for i in done:
            producer.watch(user, i, 600.0, duration_seconds=600.0)
        for i in skipped:
            producer.skip(user, i, watch_seconds=1.0)
        last = producer.watch(user, item_id("Sports", 7), 600.0, duration_seconds=600.0)
        producer.flush()
    assert wait_for(lambda: (recs(stack, user) or {}).get("trigger_event_id") == last, timeout=30)
    doc = recs(stack, user)
    assert doc is not None
    listed = {entry["item_id"] for entry in doc["items"]}
    assert not listed & set(done + skipped + [item_id("Sports", 7)])


def test_a_duplicate_event_changes_no_counter(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"dup-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        event_id = producer.click(user, item_id("Comedy", 2))
        producer.flush()
        assert wait_for(lambda: counts(stack, user) == (1, 0, 0), timeout=30)
        for _ in range(3):
            producer.click(user, item_id("Comedy", 2), event_id=event_id)
        producer.watch(user, item_id("Comedy", 2), 100.0, duration_seconds=600.0)
        producer.flush()
    assert wait_for(lambda: counts(stack, user) == (1, 0, 1), timeout=30)
    time.sleep(1.0)
    assert counts(stack, user) == (1, 0, 1)
    metrics = stack["worker"].metrics()
    assert 'recloop_events_total{outcome="duplicate",type="click"}' in metrics


def malformed_messages(now: int) -> list[tuple[bytes, str]]:
    """100 invalid payloads of varied kinds with the reason each must get."""

    def event(**overrides: Any) -> dict[str, Any]:
        doc = {
            "event_id": uuid.uuid4().hex,
            "type": "click",
            "user_id": "bad",
            "item_id": "x",
            "ts": now,
        }
        doc.update(overrides)
        return {k: v for k, v in doc.items() if v is not None}

    kinds: list[tuple[bytes, str]] = [
        (b"not json at all", "not_json"),
        (b"", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b"\xff\xfe\x00garbage", "not_utf8"),
        (orjson.dumps(event(user_id=None)), "missing_field"),
        (orjson.dumps(event(ts="yesterday")), "wrong_type"),
        (orjson.dumps(event(type="purchase")), "unknown_type"),
        (orjson.dumps(event(type="watch", watch_seconds=-5)), "negative_duration"),
        (orjson.dumps(event(ts=now + 10 * 86_400_000)), "future_ts"),
        (orjson.dumps(event(title="x" * 20_000)), "too_large"),
    ]
    return [kinds[i % len(kinds)] for i in range(100)]


def test_malformed_messages_go_to_the_dead_letter_topic_and_valid_events_still_flow(
    stack: dict[str, Any],
) -> None:
    settings: Settings = stack["settings"]
    now = int(time.time() * 1000)
    bad = malformed_messages(now)
    users = [f"dlq-{uuid.uuid4().hex[:6]}-{n}" for n in range(20)]
    expected: Counter[str] = Counter()
    reader = TopicReader(settings, settings.topic_dlq)
    with EventProducer(settings) as producer:
        for n in range(300):
            user = users[n % len(users)]
            producer.click(user, item_id(CATEGORIES[n % 6], n % ITEMS_PER_CATEGORY))
            expected[user] += 1
            if n % 3 == 0:
                raw, _ = bad[n // 3]
                producer.send_raw(settings.topic_events, b"bad", raw)
        producer.flush()
    records = reader.until(lambda rs: len(rs) >= 100, timeout=60)
    reader.poll(2.0)  # nothing more may arrive
    letters = reader.values()
    reader.close()
    assert len(letters) == 100
    assert Counter(letter["reason"] for letter in letters) == Counter(reason for _, reason in bad)
    sent = Counter(raw for raw, _ in bad)
    got = Counter(base64.b64decode(letter["original_base64"]) for letter in letters)
    assert got == sent
    assert all(letter["source_topic"] == settings.topic_events for letter in letters)
    assert all(letter["detail"] for letter in letters)
    offsets = {letter["source_offset"] for letter in letters}
    assert len(records) == 100 and len(offsets) == 100  # each dead letter names its own offset
    assert wait_for(lambda: all(sum(counts(stack, u)) == expected[u] for u in users), timeout=60)
    assert stack["worker"].proc.poll() is None  # the worker kept going


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in a Prometheus text page."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, _, value = line.rpartition(" ")
            out[key[len(name) :]] = float(value)
    return out


def test_a_decades_old_late_event_neither_leads_the_history_nor_skews_freshness(
    stack: dict[str, Any],
) -> None:
    settings: Settings = stack["settings"]
    keys: RedisKeys = stack["keys"]
    user = f"late-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    with EventProducer(settings) as producer:
        producer.watch(user, item_id("Drama", 3), 600.0, duration_seconds=600.0)
        producer.watch(user, item_id("Drama", 4), 600.0, duration_seconds=600.0)
        late = producer.watch(user, item_id("Kids", 5), 600.0, duration_seconds=600.0,
                              ts=now - 40 * 365 * 86_400_000)  # fmt: skip
        producer.flush()
    assert wait_for(lambda: (recs(stack, user) or {}).get("trigger_event_id") == late, timeout=30)
    stored = stack["redis"].lrange(keys.history(user), 0, -1)
    assert [orjson.loads(r)[0] for r in stored] == [
        item_id("Drama", 4),
        item_id("Drama", 3),
        item_id("Kids", 5),  # newest first by event time: the late watch is the oldest
    ]
    text = stack["worker"].metrics()
    freshness = _samples(text, "recloop_event_to_list_seconds_")
    assert 0 < freshness["sum"] / freshness["count"] < 30  # seconds, not decades
    # the wait before the worker took them runs from each Kafka record's send time
    wait = _samples(text, "recloop_event_wait_seconds_")
    assert wait["count"] >= 3
    assert 0 <= wait["sum"] / wait["count"] < 30
    lag = _samples(text, "recloop_event_time_lag_seconds_")
    week = 7 * 86_400.0
    assert lag['bucket{le="604800.0"}'] - lag['bucket{le="86400.0"}'] >= 1  # clamped, finite
    assert lag["sum"] <= lag["count"] * week


def test_worker_exposes_metrics_health_and_readiness(stack: dict[str, Any]) -> None:
    worker: WorkerProcess = stack["worker"]
    assert worker.ready()
    text = worker.metrics()
    for name in (
        "recloop_events_total",
        "recloop_dead_letters_total",
        "recloop_batch_seconds",
        "recloop_event_to_list_seconds",
        "recloop_event_time_lag_seconds",
        "recloop_event_wait_seconds",
        "recloop_lists_published_total",
    ):
        assert name in text


def test_forget_deletes_the_user_and_tombstones_their_list(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    keys: RedisKeys = stack["keys"]
    user = f"gone-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        for n in range(3):
            producer.watch(user, item_id("Kids", n), 600.0, duration_seconds=600.0)
        producer.flush()
    assert wait_for(lambda: counts(stack, user) == (0, 0, 3), timeout=30)
    assert wait_for(lambda: (recs(stack, user) or {}).get("personalized") is True, timeout=30)
    reader = TopicReader(settings, settings.topic_recommendations)
    result = subprocess.run(
        [sys.executable, "-m", "agents", "forget", user],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    client = stack["redis"]
    for key in keys.user_keys(user):
        assert not client.exists(key), key
    p = stack["partition"](user)
    assert client.zscore(keys.active(p), user) is None
    assert not client.sismember(keys.segment(p, "lifecycle", "new"), user)

    def tombstoned(records: list[Any]) -> bool:
        return any(r.key == user.encode() and r.value is None for r in records)

    assert tombstoned(reader.until(tombstoned, timeout=30))
    reader.close()
    # the user returns: personalised again, counting from zero
    with EventProducer(settings) as producer:
        producer.click(user, item_id("Music", 1))
        producer.flush()
    assert wait_for(lambda: counts(stack, user) == (1, 0, 0), timeout=30)
    assert wait_for(lambda: (recs(stack, user) or {}).get("personalized") is True, timeout=30)


def test_invalid_control_is_dead_lettered(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    reader = TopicReader(settings, settings.topic_dlq)
    marker = uuid.uuid4().hex
    bad = orjson.dumps({"control_id": marker, "type": "explode", "user_id": "x", "ts": 1})
    with EventProducer(settings) as producer:
        producer.send_raw(settings.topic_controls, b"x", bad)
        producer.flush()
    reader.until(lambda rs: any(marker.encode() in r.value for r in rs), timeout=30)
    letters = [v for v in reader.values() if marker in (v.get("original_text") or "")]
    reader.close()
    assert len(letters) == 1
    assert letters[0]["reason"] == "unknown_type"
    assert letters[0]["source_topic"] == settings.topic_controls
