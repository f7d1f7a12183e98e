"""User controls on the live stack: they always win, and lists follow within seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.lists.experiments import assign, load_experiments
from pipeline.tooling.processes import wait_for
from tests.integration.conftest import arm_counter, counts, features, item_id, recs


def listed(stack: dict[str, Any], user: str) -> list[str]:
    return [entry["item_id"] for entry in (recs(stack, user) or {}).get("items", [])]


def reflects(stack: dict[str, Any], user: str, trigger: str) -> bool:
    return (recs(stack, user) or {}).get("trigger_event_id") == trigger


def watch_some(producer: EventProducer, user: str, category: str, n: int) -> str:
    last = ""
    for k in range(n):
        last = producer.watch(user, item_id(category, k), 600.0, duration_seconds=600.0)
    return last


def test_muted_category_never_appears_until_unmuted(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"mute-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        last = watch_some(producer, user, "Comedy", 4)
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, last), timeout=30)
        assert any(i.startswith("comedy") for i in listed(stack, user))
        muted = producer.control("mute", user, category="Comedy")
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, muted), timeout=30)
        assert not any(i.startswith("comedy") for i in listed(stack, user))
        # behaviour cannot bring it back: more comedy watches, still muted
        last = producer.watch(user, item_id("Comedy", 9), 600.0, duration_seconds=600.0)
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, last), timeout=30)
        assert not any(i.startswith("comedy") for i in listed(stack, user))
        unmuted = producer.control("unmute", user, category="Comedy")
        producer.flush()
    assert wait_for(lambda: reflects(stack, user, unmuted), timeout=30)
    assert any(i.startswith("comedy") for i in listed(stack, user))
    controls = stack["redis"].hgetall(stack["keys"].controls(user))
    assert controls[b"muted_categories"] == b"[]"
    assert 0 < stack["redis"].ttl(stack["keys"].controls(user)) <= settings.user_ttl_seconds


def test_muted_creator_and_item_and_not_interested_are_excluded(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"ni-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        last = watch_some(producer, user, "Music", 3)
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, last), timeout=30)
        before = listed(stack, user)
        target = before[0]
        producer.control("not_interested", user, item_id=target, reason="seen it elsewhere")
        producer.control("mute", user, item_id=before[1])
        last = producer.control("mute", user, creator_id="creator-1")
        producer.flush()
    assert wait_for(lambda: reflects(stack, user, last), timeout=30)
    after = listed(stack, user)
    assert target not in after and before[1] not in after
    # creator-1 made items n % 3 == 1
    assert not [i for i in after if int(i.rsplit("-", 1)[1]) % 3 == 1]
    assert len(after) == settings.list_size


def test_personalization_off_gives_trending_and_stops_features(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"off-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        last = watch_some(producer, user, "Drama", 2)
        producer.flush()
        assert wait_for(lambda: counts(stack, user) == (0, 0, 2), timeout=30)
        off = producer.control("personalization_off", user)
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, off), timeout=30)
        assert (recs(stack, user) or {})["personalized"] is False
        last = producer.watch(user, item_id("Sports", 1), 600.0, duration_seconds=600.0)
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, last), timeout=30)
        assert counts(stack, user) == (0, 0, 2)  # the opt-out event wrote no feature
        assert (recs(stack, user) or {})["personalized"] is False
        on = producer.control("personalization_on", user)
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, on), timeout=30)
        assert (recs(stack, user) or {})["personalized"] is True
        last = producer.click(user, item_id("Sports", 2))
        producer.flush()
    assert wait_for(lambda: counts(stack, user) == (1, 0, 2), timeout=30)


def test_declared_interests_shape_a_new_users_first_list(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"decl-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        declared = producer.control("declare_interests", user, categories=["Kids", "Documentary"])
        producer.flush()
    assert wait_for(lambda: reflects(stack, user, declared), timeout=30)
    doc = recs(stack, user) or {}
    top = [entry for entry in doc["items"][:6]]
    assert all(e["item_id"].split("-")[0] in ("kids", "documentary") for e in top)
    assert any(e["reason"].startswith("you said you like") for e in top)
    assert doc["personalized"] is True


def test_segments_are_written_and_counted(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    user = f"seg-{uuid.uuid4().hex[:6]}"
    with EventProducer(settings) as producer:
        for k in range(6):
            producer.watch(
                user, item_id("Sports", k), 600.0, duration_seconds=600.0,
                context={"locale": "fr-FR", "device": "tv", "surface": "home"},
            )  # fmt: skip
        producer.flush()
    assert wait_for(lambda: counts(stack, user) == (0, 0, 6), timeout=30)
    f = features(stack, user)
    assert f["segment_lifecycle"] == "active" and f["segment_category"] == "Sports"
    assert f["segment_locale"] == "fr-FR" and f["segment_device"] == "tv"
    p = stack["partition"](user)
    assert stack["redis"].sismember(stack["keys"].segment(p, "locale", "fr-FR"), user)
    assert not stack["redis"].sismember(stack["keys"].segment(p, "lifecycle", "new"), user)
    result = subprocess.run(
        [sys.executable, "-m", "agents", "segments", "--json"],
        env={**os.environ, **settings.to_env()}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sizes = orjson.loads(result.stdout)
    assert sizes["locale"]["fr-FR"] >= 1 and sizes["category"]["Sports"] >= 1


def test_experiment_arm_is_stated_and_outcomes_are_attributed(stack: dict[str, Any]) -> None:
    settings: Settings = stack["settings"]
    declared = load_experiments(settings.experiments_file)
    user = f"exp-{uuid.uuid4().hex[:6]}"
    arm = assign(declared, user)
    assert arm is not None
    keys = stack["keys"]
    before = arm_counter(stack, "itest", arm[1].name, "hits")
    with EventProducer(settings) as producer:
        first = producer.click(user, item_id("Kids", 1))
        producer.flush()
        assert wait_for(lambda: reflects(stack, user, first), timeout=30)
        doc = recs(stack, user) or {}
        assert doc["experiment"] == "itest" and doc["variant"] == arm[1].name
        pick = doc["items"][0]["item_id"]
        producer.watch(user, pick, 600.0, duration_seconds=600.0)
        producer.flush()

    def hits() -> int:
        return arm_counter(stack, "itest", arm[1].name, "hits")

    assert wait_for(lambda: hits() == before + 1, timeout=30)
    assert arm_counter(stack, "itest", arm[1].name, "completions") >= 1
    assert arm_counter(stack, "itest", arm[1].name, "exposures") >= 1
    p = stack["partition"](user)
    exposed = keys.experiment_exposed(p, "itest", arm[1].name)
    first = stack["redis"].hget(keys.experiment_user(user), "first_ms")
    assert first is not None and stack["redis"].zscore(exposed, user) == float(first)
    assert stack["redis"].hget(keys.experiment_user(user), "hits") == b"1"
    guard = stack["redis"].hget(
        keys.experiment(p, "itest", arm[1].name), f"offset:{settings.topic_events}:{p}"
    )
    assert guard is not None  # the offset guard that makes the counters exactly-once
