"""One set of limits, live: the API, the worker and every path refuse the same ids.

An id one character over ``MAX_ID_LENGTH`` is refused as ``invalid_value`` by ``POST
/v1/events``, by the worker (dead letter) and by ``GET``/``DELETE`` paths alike; an id at
the limit is written, read and forgotten through the API.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from pipeline.kafka.producer import EventProducer
from pipeline.tooling.processes import TopicReader, wait_for
from schemas.limits import MAX_CATEGORY_LENGTH, MAX_CONTEXT_LENGTH, MAX_ID_LENGTH
from tests.api.conftest import Api, item_id

pytestmark = pytest.mark.integration


def long_id(length: int) -> str:
    prefix = uuid.uuid4().hex[:8]
    return prefix + "x" * (length - len(prefix))


def invalid_value(resp: Any) -> str:
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert error["reason"] == "invalid_value"
    return str(error["detail"])


def test_an_id_over_the_limit_is_refused_everywhere_alike(api: Api) -> None:
    user = long_id(MAX_ID_LENGTH + 1)
    click = {"type": "click", "user_id": user, "item_id": item_id("Kids", 1)}
    detail = invalid_value(api.http.post("/v1/events", json=click))
    assert detail == f"user_id: String should have at most {MAX_ID_LENGTH} characters"
    control = {"type": "mute", "user_id": user, "category": "Kids"}
    assert str(MAX_ID_LENGTH) in invalid_value(api.http.post("/v1/controls", json=control))
    for method, path in (("GET", f"/v1/users/{user}"), ("DELETE", f"/v1/users/{user}"),
                         ("GET", f"/v1/users/{user}/recommendations"),  # past the fast path
                         ("GET", f"/v1/items/{user}")):  # fmt: skip
        assert str(MAX_ID_LENGTH) in invalid_value(api.http.request(method, path)), path
    # a producer that skips the API: the worker dead-letters it with the same reason
    marker = uuid.uuid4().hex
    raw = {"event_id": marker, **click, "ts": 1_700_000_000_000}
    reader = TopicReader(api.settings, api.settings.topic_dlq)
    try:
        with EventProducer(api.settings) as producer:
            producer.send_raw(api.settings.topic_events, user[:MAX_ID_LENGTH], orjson.dumps(raw))
            producer.flush()
        reader.until(lambda rs: any(marker.encode() in r.value for r in rs), timeout=30)
        (letter,) = [v for v in reader.values() if marker in (v["original_text"] or "")]
    finally:
        reader.close()
    assert (letter["reason"], letter["detail"]) == ("invalid_value", detail)
    assert not api.redis.exists(api.keys.features(user))


def test_a_user_at_the_limit_is_written_read_and_forgotten(api: Api) -> None:
    user = long_id(MAX_ID_LENGTH)
    last = api.watch(user, item_id("Documentary", 1))
    assert wait_for(lambda: api.reflects(user, last), timeout=30), api.worker.tail()
    resp = api.http.get(f"/v1/users/{user}/recommendations")
    assert resp.status_code == 200 and resp.json()["user_id"] == user
    assert resp.headers["x-recloop-source"] == "pipeline"
    view = api.http.get(f"/v1/users/{user}")
    assert view.status_code == 200 and view.json()["features"]["n_watch"] == "1"
    assert api.http.delete(f"/v1/users/{user}").status_code == 200  # applied
    # every key gone, the API knows nothing more about the user
    assert not api.redis.exists(*api.keys.user_keys(user))
    assert api.http.get(f"/v1/users/{user}").status_code == 404


def test_query_limits_match_the_contracts(api: Api) -> None:
    user = "q-user"
    ok = api.http.get(f"/v1/users/{user}/recommendations",
                      params={"locale": "x" * MAX_CONTEXT_LENGTH})  # fmt: skip
    assert ok.status_code == 200
    over = api.http.get(f"/v1/users/{user}/recommendations",
                        params={"locale": "x" * (MAX_CONTEXT_LENGTH + 1)})  # fmt: skip
    invalid_value(over)
    items = api.http.get("/v1/items", params={"category": "c" * MAX_CATEGORY_LENGTH})
    assert items.status_code == 200
    invalid_value(api.http.get("/v1/items", params={"category": "c" * (MAX_CATEGORY_LENGTH + 1)}))
