"""The new-item slot per experiment arm on the live stack (real Kafka, real Redis).

One worker with an experiment whose treatment gives a quarter of each list to the new-item
slot and whose control gives none. Users in both arms watch an old Comedy item; then new
Comedy items from the same creator are published and a Comedy channel goes live. Every
treatment list built afterwards holds new items labelled with the slot's reasons ("new
from a creator you watch", "live now", "new in ..."); no control list has those reasons.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.lists.new_items import LIVE_NOW, NEW_FROM_CREATOR
from pipeline.stores.client import sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess, wait_for

SHARE = 0.25
USERS = 40
CATEGORIES = ("Comedy", "Drama", "Music")
YEAR_MS = 365 * 86_400_000
NEW = [f"new-comedy-{k}" for k in range(4)]
LIVE = "live-comedy"


def _slot_reason(reason: str) -> bool:
    return reason in (NEW_FROM_CREATOR, LIVE_NOW) or reason.startswith("new in ")


@pytest.fixture
def worker(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> Iterator[tuple[Settings, Any]]:
    experiments = tmp_path / "experiments.json"
    experiments.write_bytes(orjson.dumps({"experiments": [{"name": "slot", "variants": [
        {"name": "control", "share": 0.5, "changes": {"new_item_share": 0.0}},
        {"name": "treatment", "share": 0.5, "changes": {"new_item_share": SHARE}},
    ]}]}))  # fmt: skip
    settings = settings_factory(experiments_file=experiments, topic_partitions=2)
    ensure_topics(settings)
    old = int(time.time() * 1000) - YEAR_MS
    with EventProducer(settings) as producer:
        for category in CATEGORIES:
            for n in range(10):
                producer.item(
                    f"{category.lower()}-{n}", [category], duration_seconds=600.0,
                    published_ts=old + n, creator_id=f"creator-{category.lower()}",
                )  # fmt: skip
        # a channel known but off air: going on air later makes it "live now"
        producer.item(LIVE, ["Comedy"], duration_seconds=3600.0, published_ts=old,
                      creator_id="streamer", available=False)  # fmt: skip
        producer.flush()
    process = WorkerProcess(settings, log_path=tmp_path / "worker.log").wait_ready(90)
    client = sync_redis(settings.redis_url)
    try:
        yield settings, client
    finally:
        process.stop()
        client.close()


def test_only_the_treatment_arm_gives_new_and_live_items_their_slot(
    worker: tuple[Settings, Any],
) -> None:
    settings, client = worker
    keys = RedisKeys(settings.redis_namespace)
    users = [f"slot-{uuid.uuid4().hex[:6]}-{k}" for k in range(USERS)]

    def doc(user: str) -> dict[str, Any] | None:
        raw = client.get(keys.recs(user))
        return None if raw is None else orjson.loads(raw)

    with EventProducer(settings) as producer:
        for user in users:
            producer.click(user, "comedy-0")
            producer.watch(user, "comedy-0", 560.0, duration_seconds=600.0)
        producer.flush()
    assert wait_for(lambda: all(doc(u) is not None for u in users), timeout=60)
    arm = {u: doc(u)["variant"] for u in users}  # type: ignore[index]
    assert set(arm.values()) == {"control", "treatment"}
    assert not any(_slot_reason(e["reason"]) for u in users for e in doc(u)["items"])  # type: ignore[index]

    now = int(time.time() * 1000)
    with EventProducer(settings) as producer:
        for n, item in enumerate(NEW):
            producer.item(item, ["Comedy"], duration_seconds=600.0, published_ts=now - n,
                          creator_id="creator-comedy")  # fmt: skip
        producer.item(LIVE, ["Comedy"], duration_seconds=3600.0, published_ts=now - YEAR_MS,
                      creator_id="streamer", available=True)  # fmt: skip
        producer.flush()
    treatment = [u for u in users if arm[u] == "treatment"]

    def slotted_everywhere() -> bool:
        """Every treatment list has slot items (a click asks for a new list meanwhile)."""
        with EventProducer(settings) as producer:
            for user in users:
                producer.click(user, "comedy-1")
            producer.flush()
        time.sleep(1.0)
        return all(
            any(_slot_reason(e["reason"]) for e in doc(u)["items"])  # type: ignore[index]
            for u in treatment
        )

    assert wait_for(slotted_everywhere, timeout=60)
    settle = int(time.time() * 1000)
    with EventProducer(settings) as producer:
        for user in users:
            producer.click(user, "comedy-2")
        producer.flush()
    assert wait_for(lambda: all(_built_after(doc(u), settle) for u in users), timeout=60)
    slot_size = round(settings.list_size * SHARE)
    for user in users:
        entries = doc(user)["items"]  # type: ignore[index]
        slotted = [e for e in entries if _slot_reason(e["reason"])]
        if arm[user] == "control":
            assert slotted == [], f"control list has slot items: {slotted}"
            continue
        assert 1 <= len(slotted) <= slot_size
        assert {e["item_id"] for e in slotted} <= {*NEW, LIVE}
        reasons = {e["item_id"]: e["reason"] for e in slotted}
        assert reasons.get(LIVE, LIVE_NOW) == LIVE_NOW
        assert all(reasons.get(i, NEW_FROM_CREATOR) == NEW_FROM_CREATOR for i in NEW)
    seen = {e["item_id"] for u in treatment for e in doc(u)["items"]}  # type: ignore[index]
    assert LIVE in seen and seen & set(NEW)


def _built_after(doc: dict[str, Any] | None, ms: int) -> bool:
    return doc is not None and int(doc.get("generated_ts", 0)) > ms
