"""What a web page in the user's browser could make it send: refused, and without effect.

Against the real serve processes of ``conftest`` (no key, and keys with a CORS allow-list),
a real worker, Kafka and Redis. "No effect" is checked where an effect would show: the
victim's keys stay in Redis, and nothing for the victim reaches the controls topic (a valid
control sent afterwards is the sentinel: once it is on the topic, a refused one would be too).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest

from pipeline.tooling.processes import TopicReader
from pipeline.tooling.serve_process import ServeProcess
from tests.api.conftest import ADMIN_KEY, Api

pytestmark = pytest.mark.integration

EVIL = "http://evil.example"


def forget_body(user: str) -> bytes:
    return orjson.dumps({"type": "forget", "user_id": user})


def assert_refused(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["error"] == code and body["detail"]  # the documented ErrorBody


def assert_nothing_produced_for(api: Api, victim: str) -> None:
    """The victim is intact in Redis and no control for them reached the topic."""
    sentinel = f"sentinel-{uuid.uuid4().hex[:8]}"
    resp = api.http.post("/v1/controls", json={"type": "personalization_on", "user_id": sentinel})
    assert resp.status_code == 202, resp.text
    reader = TopicReader(api.settings, api.settings.topic_controls)
    try:
        reader.until(lambda recs: any(sentinel.encode() in r.value for r in recs), timeout=30)
        values = reader.values()
    finally:
        reader.close()
    assert any(v["user_id"] == sentinel for v in values)
    assert [v for v in values if v["user_id"] == victim] == []
    assert api.redis.exists(api.keys.features(victim), api.keys.history(victim)) == 2
    assert (api.recs(victim) or {}).get("personalized") is True


def test_cross_site_writes_are_refused_and_forget_nobody(api: Api) -> None:
    victim = api.user_with_taste("Drama", n=2)
    body = forget_body(victim)
    # a <form enctype="text/plain"> or fetch(..., {mode: "no-cors"}) on a foreign page
    resp = api.http.post(
        "/v1/controls", content=body, headers={"content-type": "text/plain", "origin": EVIL}
    )
    assert_refused(resp, 403, "origin_not_allowed")
    for form in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        resp = api.http.post(
            "/v1/controls", content=body, headers={"content-type": form, "origin": EVIL}
        )
        assert_refused(resp, 403, "origin_not_allowed")
    resp = api.http.post(
        "/v1/controls", content=body, headers={"content-type": "application/json", "origin": "null"}
    )
    assert_refused(resp, 403, "origin_not_allowed")
    # an old browser that sends no Origin still cannot send JSON without a preflight
    resp = api.http.post("/v1/controls", content=body, headers={"content-type": "text/plain"})
    assert_refused(resp, 415, "unsupported_media_type")
    resp = api.http.request("DELETE", f"/v1/users/{victim}", headers={"origin": EVIL})
    assert_refused(resp, 403, "origin_not_allowed")
    resp = api.http.request(
        "DELETE",
        f"/v1/users/{victim}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_refused(resp, 415, "unsupported_media_type")
    events = orjson.dumps({"type": "click", "user_id": victim, "item_id": "drama-9"})
    resp = api.http.post(
        "/v1/events", content=events, headers={"content-type": "text/plain", "origin": EVIL}
    )
    assert_refused(resp, 403, "origin_not_allowed")
    assert_nothing_produced_for(api, victim)


def test_dns_rebinding_host_is_refused_on_every_path(api: Api) -> None:
    victim = api.user_with_taste("Sports", n=1)
    for host in ("evil.example", "evil.example:8000", f"evil.example:{api.settings.api_port}"):
        headers = {"host": host}
        for path in (
            "/v1/dead-letters",
            f"/v1/users/{victim}",
            "/v1/users",
            "/",
            f"/v1/users/{victim}/recommendations",  # the fast path
            "/openapi.json",
            "/static/console.js",
        ):
            assert_refused(api.http.get(path, headers=headers), 400, "host_not_allowed")
        resp = api.http.delete(f"/v1/users/{victim}", headers=headers)
        assert_refused(resp, 400, "host_not_allowed")
        resp = api.http.post(
            "/v1/controls",
            content=forget_body(victim),
            headers={**headers, "content-type": "application/json", "origin": f"http://{host}"},
        )
        assert_refused(resp, 400, "host_not_allowed")
    # probes answer whatever the Host (load balancers call them by address)
    assert api.http.get("/health", headers={"host": "10.1.2.3:8000"}).status_code == 200
    assert_nothing_produced_for(api, victim)


def test_loopback_names_and_same_origin_json_still_work(api: Api) -> None:
    port = api.settings.api_port
    user = f"ok-{uuid.uuid4().hex[:6]}"
    for host in ("localhost", f"localhost:{port}", "127.0.0.1", f"[::1]:{port}"):
        resp = api.http.get(f"/v1/users/{user}/recommendations", headers={"host": host})
        assert resp.status_code == 200, (host, resp.text)
    same = api.serve.base_url  # what the console's fetch sends
    resp = api.http.post(
        "/v1/events",
        json={"type": "click", "user_id": user, "item_id": "kids-1"},
        headers={"origin": same, "content-type": "application/json; charset=utf-8"},
    )
    assert resp.status_code == 202, resp.text
    resp = api.http.request("DELETE", f"/v1/users/{user}", headers={"origin": same})
    assert resp.status_code == 200, resp.text


def test_with_keys_the_same_rules_hold_and_listed_origins_may_write(
    api: Api, keyed: ServeProcess
) -> None:
    victim = api.user_with_taste("Music", n=1)
    admin = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=keyed.base_url, timeout=30) as http:
        resp = http.post(
            "/v1/controls",
            content=forget_body(victim),
            headers={**admin, "content-type": "text/plain"},
        )
        assert_refused(resp, 415, "unsupported_media_type")
        resp = http.post(
            "/v1/controls",
            content=forget_body(victim),
            headers={**admin, "content-type": "application/json", "origin": EVIL},
        )
        assert_refused(resp, 403, "origin_not_allowed")
        resp = http.get("/v1/dead-letters", headers={**admin, "host": "evil.example"})
        assert_refused(resp, 400, "host_not_allowed")
        assert_nothing_produced_for(api, victim)
        listed: dict[str, Any] = {**admin, "origin": "https://console.example"}
        resp = http.post(
            "/v1/events",
            headers=listed,
            json={"type": "click", "user_id": victim, "item_id": "music-9"},
        )
        assert resp.status_code == 202, resp.text
        assert resp.headers["access-control-allow-origin"] == "https://console.example"
