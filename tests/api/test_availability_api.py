"""Item availability through the HTTP API: withdraw, never served, restore (issue #17).

On the shared API stack (real Kafka, Redis single and cluster, a worker, ``recloop serve``);
each test restores what it withdrew, so later tests see the catalogue as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.tooling.processes import wait_for
from tests.api.conftest import Api

pytestmark = pytest.mark.integration


def _item(api: Api, item: str) -> dict[str, Any]:
    resp = api.http.get(f"/v1/items/{item}")
    assert resp.status_code == 200
    return resp.json()  # type: ignore[no-any-return]


def _availability(api: Api, item: str, **body: Any) -> None:
    resp = api.http.put(f"/v1/items/{item}/availability", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 1, "ids": [item]}


def test_a_withdrawn_item_is_never_served_and_comes_back(api: Api) -> None:
    user = api.user_with_taste("Drama", n=3)
    item = api.listed(user)[0]
    before = _item(api, item)
    assert before["available"] is True and before["available_until_ts"] is None
    _availability(api, item, available=False)

    def served(user_id: str) -> list[str]:
        doc = api.http.get(f"/v1/users/{user_id}/recommendations").json()
        return [e["item_id"] for e in doc["items"]]

    assert wait_for(lambda: _item(api, item)["available"] is False, timeout=15)
    # from the moment Redis knows, the API filters it, whatever the stored list holds
    assert item not in served(user)
    assert wait_for(lambda: item not in api.listed(user), timeout=15)
    trending = api.http.get("/v1/trending", params={"n": 100}).json()["items"]
    assert item not in [t["item_id"] for t in trending]
    after = _item(api, item)
    assert (after["title"], after["categories"]) == (before["title"], before["categories"])
    _availability(api, item, available=True)
    assert wait_for(lambda: _item(api, item)["available"] is True, timeout=15)


def test_a_scheduled_end_is_shown_and_unknown_items_are_404(api: Api) -> None:
    user = api.user_with_taste("Music", n=2)
    item = api.listed(user)[-1]
    until = 4_000_000_000_000
    _availability(api, item, available_until_ts=until)
    assert wait_for(lambda: _item(api, item)["available_until_ts"] == until, timeout=15)
    assert _item(api, item)["available"] is True
    _availability(api, item)  # back to no window
    assert wait_for(lambda: _item(api, item)["available_until_ts"] is None, timeout=15)
    missing = api.http.put("/v1/items/no-such-item/availability", json={"available": False})
    assert missing.status_code == 404
    bad = api.http.put(f"/v1/items/{item}/availability", json={"available": "no"})
    assert bad.status_code == 422
    backwards = api.http.put(
        f"/v1/items/{item}/availability",
        json={"available_from_ts": 10, "available_until_ts": 5},
    )
    assert backwards.status_code == 422
