"""API v1 against a real worker, Kafka and Redis: every endpoint and every error status."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.tooling.probes import free_port
from pipeline.tooling.processes import TopicReader, wait_for
from pipeline.tooling.serve_process import ServeProcess
from schemas.recommendation import Recommendation
from tests.api.conftest import MAX_BATCH, Api, category_of, item_id

pytestmark = pytest.mark.integration


def event(user: str, item: str, **extra: Any) -> dict[str, Any]:
    return {"type": "click", "user_id": user, "item_id": item, **extra}


# --------------------------------------------------------------------------- probes
def test_health_and_ready(api: Api) -> None:
    assert api.http.get("/health").json() == {"status": "ok"}
    assert api.http.get("/ready").json() == {"ready": True, "redis": True, "kafka": True}


def test_openapi_is_served_and_describes_every_endpoint(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/users/{user_id}/recommendations", "/v1/users/{user_id}", "/v1/events",
                 "/v1/controls", "/v1/trending", "/v1/segments", "/v1/experiments",
                 "/v1/dead-letters", "/health", "/ready"):  # fmt: skip
        assert path in doc["paths"], path
    assert "delete" in doc["paths"]["/v1/users/{user_id}"]
    batch = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["oneOf"][1]["maxItems"] == MAX_BATCH


# --------------------------------------------------------------------------- lists
def test_recommendations_are_the_document_the_worker_wrote(api: Api) -> None:
    user = api.user_with_taste("Comedy")
    resp = api.http.get(f"/v1/users/{user}/recommendations")
    assert resp.status_code == 200
    assert resp.headers["x-recloop-source"] == "pipeline"
    assert resp.json() == api.recs(user)
    doc = Recommendation.model_validate(resp.json())
    assert doc.personalized and len(doc.items) == api.settings.list_size
    assert any(category_of(i.item_id) == "Comedy" for i in doc.items)
    short = api.http.get(f"/v1/users/{user}/recommendations", params={"n": 2}).json()
    assert [i["item_id"] for i in short["items"]] == [i.item_id for i in doc.items[:2]]


def test_unknown_user_gets_trending_for_their_context_not_personalized(api: Api) -> None:
    # make something trend in en-GB first (a user's first event counts before their context)
    seeder = f"seed-{uuid.uuid4().hex[:6]}"
    api.watch(seeder, item_id("Music", 4), context={"locale": "en-GB"})
    last = api.watch(seeder, item_id("Music", 5), context={"locale": "en-GB"})
    assert wait_for(lambda: api.reflects(seeder, last), timeout=30)
    assert wait_for(lambda: api.redis.exists(api.keys.trending("locale:en-GB")), timeout=30)
    user = f"new-{uuid.uuid4().hex[:6]}"
    resp = api.http.get(f"/v1/users/{user}/recommendations", params={"locale": "en-GB", "n": 3})
    assert resp.status_code == 200
    assert resp.headers["x-recloop-source"] == "trending"
    doc = Recommendation.model_validate(resp.json())
    assert doc.user_id == user and not doc.personalized and doc.model_version == "trending"
    assert 1 <= len(doc.items) <= 3
    assert all(i.reason == "trending in en-GB" for i in doc.items)
    plain = api.http.get(f"/v1/users/{user}/recommendations").json()
    assert plain["personalized"] is False
    assert api.recs(user) is None  # the API wrote nothing


def test_user_view_is_what_explain_shows(api: Api) -> None:
    user = api.user_with_taste("Drama", n=3)
    doc = api.http.get(f"/v1/users/{user}").json()
    assert doc["user_id"] == user
    assert doc["list"] == api.recs(user)
    assert doc["features"]["n_watch"] == "3"
    assert doc["segments"]["category"] == "Drama"
    assert doc["controls"]["personalization"] == "on"
    assert doc["experiment"]["name"] == "apitest"
    assert doc["experiment"]["variant"] in ("control", "treatment")
    assert [h["item_id"] for h in doc["history"]] == [item_id("Drama", k) for k in (2, 1, 0)]
    assert doc["items"][item_id("Drama", 0)]["categories"] == ["Drama"]
    assert api.http.get("/v1/users/nobody-at-all").status_code == 404


def test_active_users_trending_segments_items(api: Api) -> None:
    user = api.user_with_taste("Sports", n=2)
    users = api.http.get("/v1/users", params={"limit": 500}).json()["users"]
    assert user in [u["user_id"] for u in users]
    assert wait_for(lambda: api.http.get("/v1/trending").json()["items"] != [], timeout=30), (
        "no trending list"
    )
    trending = api.http.get("/v1/trending", params={"segment": "global", "n": 5}).json()
    assert trending["segment"] == "global" and "global" in trending["segments"]
    assert [t["rank"] for t in trending["items"]] == list(range(1, len(trending["items"]) + 1))
    assert all(t["categories"] for t in trending["items"])
    empty = api.http.get("/v1/trending", params={"segment": "locale:xx-NONE"}).json()
    assert empty["items"] == []
    segments = api.http.get("/v1/segments").json()["segments"]
    assert segments["category"].get("Sports", 0) >= 1
    assert segments["lifecycle"].get("new", 0) >= 1
    item = api.http.get(f"/v1/items/{item_id('Sports', 0)}").json()
    assert item["categories"] == ["Sports"] and item["title"] == "Sports #0"
    assert api.http.get("/v1/items/no-such-item").status_code == 404
    listing = api.http.get("/v1/items", params={"category": "Kids", "limit": 5}).json()
    assert len(listing["items"]) == 5 and all(i["categories"] == ["Kids"] for i in listing["items"])
    assert listing["categories"]["Kids"] == 12


def test_experiments_report(api: Api) -> None:
    api.user_with_taste("Kids", n=2)
    report = api.http.get("/v1/experiments").json()["experiments"]
    assert report[0]["experiment"] == "apitest" and report[0]["control"] == "control"
    variants = {v["variant"]: v for v in report[0]["variants"]}
    assert set(variants) == {"control", "treatment"}
    assert sum(v["exposures"] for v in variants.values()) >= 1
    assert "vs_control" in variants["treatment"]


def test_overview_reads_kafka_redis_and_worker_metrics(api: Api) -> None:
    api.user_with_taste("Music", n=2)

    def complete() -> bool:
        latest = api.http.get("/v1/overview").json()["latest"]
        return bool(latest and latest["workers_alive"] == 1 and latest["kafka_ok"]
                    and latest["events_per_s_by_type"] is not None)  # fmt: skip

    assert wait_for(complete, timeout=30, interval=0.5)
    body = api.http.get("/v1/overview").json()
    assert body["history"] and body["latest"]["workers_metrics_answering"] == 1
    assert 0 <= body["latest"]["event_loop_lag_ms"] < 60_000  # the worker's timer drift


# --------------------------------------------------------------------------- writes
def test_event_batch_is_accepted_after_acks_and_reaches_the_list(api: Api) -> None:
    user = f"b-{uuid.uuid4().hex[:6]}"
    batch = [event(user, item_id("Documentary", k)) for k in range(3)]
    batch.append({"type": "watch", "user_id": user, "item_id": item_id("Documentary", 3),
                  "watch_seconds": 600.0, "event_id": f"mine-{user}"})  # fmt: skip
    resp = api.http.post("/v1/events", json=batch)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["accepted"] == 4 and body["ids"][3] == f"mine-{user}"
    assert wait_for(lambda: api.reflects(user, f"mine-{user}"), timeout=30)


def test_batch_with_one_invalid_element_produces_nothing(api: Api) -> None:
    user = f"aon-{uuid.uuid4().hex[:6]}"
    batch: list[Any] = [event(user, item_id("Comedy", k), event_id=f"{user}-{k}") for k in range(4)]
    batch[2] = {"type": "watch", "user_id": user, "item_id": "x"}  # no watch_seconds
    batch.append("not an object")
    batch.append(event(user, "i", ts=int(time.time() * 1000) + 10 * 3_600_000))
    resp = api.http.post("/v1/events", json=batch)
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "invalid"
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (2, "missing_field"),
        (4, "not_object"),
        (5, "future_ts"),
    ]
    # a valid request afterwards: once it is on the topic, the refused one would be too
    sentinel = f"{user}-sentinel"
    assert api.http.post("/v1/events", json=event(user, "i", event_id=sentinel)).status_code == 202
    reader = TopicReader(api.settings, api.settings.topic_events)
    try:
        reader.until(lambda recs: any(sentinel.encode() in r.value for r in recs), timeout=30)
        mine = [v for v in reader.values() if v.get("user_id") == user]
    finally:
        reader.close()
    assert [v["event_id"] for v in mine] == [sentinel]


def test_too_large_and_malformed_bodies(api: Api) -> None:
    user = f"big-{uuid.uuid4().hex[:6]}"
    too_many = [event(user, f"i{k}") for k in range(MAX_BATCH + 1)]
    resp = api.http.post("/v1/events", json=too_many)
    assert resp.status_code == 413 and resp.json()["error"] == "too_large"
    limit = MAX_BATCH * api.settings.max_event_bytes + 65_536
    resp = api.http.post("/v1/events", content=b"[" + b" " * limit + b"]",
                         headers={"content-type": "application/json"})  # fmt: skip
    assert resp.status_code == 413
    one_big = event(user, "i", pad="x" * api.settings.max_event_bytes)
    resp = api.http.post("/v1/events", json=one_big)
    assert resp.status_code == 422 and resp.json()["errors"][0]["reason"] == "too_large"
    resp = api.http.post(
        "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422 and resp.json()["errors"][0]["reason"] == "not_json"
    assert api.http.post("/v1/events", json=[]).status_code == 422
    assert api.http.post("/v1/events", json=42).status_code == 422
    resp = api.http.get("/v1/users/u/recommendations", params={"n": 0})
    assert resp.status_code == 422 and resp.json()["errors"][0]["index"] is None


def test_controls_mute_a_category_then_unmute(api: Api) -> None:
    user = api.user_with_taste("Comedy")
    assert any(category_of(i) == "Comedy" for i in api.listed(user))
    resp = api.http.post(
        "/v1/controls", json={"type": "mute", "user_id": user, "category": "Comedy"}
    )
    assert resp.status_code == 202
    muted = resp.json()["ids"][0]
    assert wait_for(lambda: api.reflects(user, muted), timeout=30)
    assert not any(category_of(i) == "Comedy" for i in api.listed(user))
    view = api.http.get(f"/v1/users/{user}").json()
    assert view["controls"]["muted_categories"] == ["Comedy"]
    resp = api.http.post("/v1/controls", json=[
        {"type": "unmute", "user_id": user, "category": "Comedy"},
        {"type": "mute", "user_id": user},  # no target
    ])  # fmt: skip
    assert resp.status_code == 422
    assert [(e["index"], e["reason"]) for e in resp.json()["errors"]] == [(1, "missing_field")]
    resp = api.http.post(
        "/v1/controls", json={"type": "unmute", "user_id": user, "category": "Comedy"}
    )
    assert resp.status_code == 202
    unmuted = resp.json()["ids"][0]
    assert wait_for(lambda: api.reflects(user, unmuted), timeout=30)
    assert any(category_of(i) == "Comedy" for i in api.listed(user))


def test_forget_through_delete_returns_once_applied(api: Api) -> None:
    user = api.user_with_taste("Music", n=2)
    resp = api.http.delete(f"/v1/users/{user}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1 and resp.json()["applied"] is True
    # applied when the response came: the marker is there, no key left, 404 at once
    marker = api.keys.forgotten(api.partition(user))
    assert api.redis.zscore(marker, api.keys.forget_token(user)) is not None
    assert api.redis.exists(*api.keys.user_keys(user)) == 0
    assert api.http.get(f"/v1/users/{user}").status_code == 404
    resp = api.http.get(f"/v1/users/{user}/recommendations")
    assert resp.headers["x-recloop-source"] == "trending" and resp.json()["personalized"] is False


def test_forget_without_waiting_is_202_and_applied_later(api: Api) -> None:
    user = api.user_with_taste("Comedy", n=1)
    resp = api.http.delete(f"/v1/users/{user}", params={"wait": 0})
    assert resp.status_code == 202 and resp.json()["applied"] is False
    assert wait_for(lambda: api.http.get(f"/v1/users/{user}").status_code == 404, timeout=30)
    assert api.redis.exists(*api.keys.user_keys(user)) == 0


def test_dead_letters_show_recent_refusals_with_reasons(api: Api) -> None:
    marker = uuid.uuid4().hex
    with EventProducer(api.settings) as producer:
        producer.send_raw(api.settings.topic_events, "dl", f'{{"oops": "{marker}"'.encode())
        producer.flush()

    def found() -> list[dict[str, Any]]:
        docs = api.http.get("/v1/dead-letters", params={"limit": 20}).json()["dead_letters"]
        return [d for d in docs if marker in (d.get("original_text") or "")]

    assert wait_for(lambda: bool(found()), timeout=30)
    assert found()[0]["reason"] == "not_json"


# --------------------------------------------------------------------------- security
def test_keys_401_403_and_cors(api: Api, keyed: ServeProcess) -> None:
    user = api.user_with_taste("Kids", n=1)
    with httpx.Client(base_url=keyed.base_url, timeout=30) as http:
        recs = f"/v1/users/{user}/recommendations"
        assert http.get(recs).status_code == 401
        assert http.get(recs, headers={"X-API-Key": "wrong"}).status_code == 401
        assert http.get(recs, headers={"X-API-Key": "read-secret"}).status_code == 200
        assert http.get(recs, headers={"Authorization": "Bearer admin-secret"}).status_code == 200
        body = event(user, item_id("Kids", 9))
        resp = http.post("/v1/events", json=body, headers={"X-API-Key": "read-secret"})
        assert resp.status_code == 403 and resp.json()["error"] == "forbidden"
        assert (
            http.delete(f"/v1/users/{user}", headers={"X-API-Key": "read-secret"}).status_code
            == 403
        )
        assert http.get("/v1/dead-letters", headers={"X-API-Key": "read-secret"}).status_code == 403
        assert http.post("/v1/events", json=body).status_code == 401
        resp = http.post("/v1/events", json=body, headers={"X-API-Key": "admin-secret"})
        assert resp.status_code == 202
        assert http.get("/health").status_code == 200  # probes need no key
        preflight = {"Origin": "https://console.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "x-api-key"}  # fmt: skip
        resp = http.options("/v1/events", headers=preflight)
        assert resp.headers["access-control-allow-origin"] == "https://console.example"
        resp = http.get(
            recs, headers={"Origin": "https://evil.example", "X-API-Key": "read-secret"}
        )
        assert "access-control-allow-origin" not in resp.headers
    assert user not in keyed.tail(200)  # no user ids in logs above debug


def test_without_a_key_the_server_binds_loopback_and_says_so(api: Api, tmp_path: Path) -> None:
    settings = api.settings.model_copy(update={"api_port": free_port(), "api_host": "0.0.0.0"})
    serve = ServeProcess(settings, log_path=tmp_path / "serve.log", log_level="info")
    try:
        serve.settings = settings.model_copy(update={"api_host": "127.0.0.1"})
        serve.wait_healthy(30)
        assert "binding 127.0.0.1 instead of 0.0.0.0" in serve.tail()
    finally:
        serve.stop()


def test_unavailable_dependencies_are_503(
    api_settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    dead = api_settings_factory(
        api_port=free_port(),
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    serve = ServeProcess(dead, log_path=tmp_path / "serve.log").wait_healthy(30)
    try:
        with httpx.Client(base_url=serve.base_url, timeout=60) as http:
            resp = http.get("/ready")
            assert resp.status_code == 503
            assert resp.json() == {"ready": False, "redis": False, "kafka": False}
            resp = http.get("/v1/users/u/recommendations")
            assert resp.status_code == 503 and resp.json()["error"] == "unavailable"
            resp = http.post("/v1/events", json=event("u", "i"))
            assert resp.status_code == 503
    finally:
        serve.stop()
