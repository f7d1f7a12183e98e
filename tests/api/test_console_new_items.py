"""The console's user view labels the new-item slot's entries (real Chromium, real stack).

A worker with ``RECLOOP_NEW_ITEM_SHARE`` 0.5 (its own topics and keys: the shared API stack
keeps the slot off, so its lists stay as other tests expect). Every item of the catalogue
is less than a day old, so a user who watched a creator's items gets "new from a creator
you watch" entries; the page shows them with the ``slot`` label, other reasons plain.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.lists.new_items import LIVE_NOW, NEW_FROM_CREATOR
from pipeline.tooling.probes import free_port
from tests.api.conftest import ARTIFACTS, Api, start_api
from tests.api.test_console_browser import browser, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


def _slot(reason: str) -> bool:
    return reason in (NEW_FROM_CREATOR, LIVE_NOW) or reason.startswith("new ")


@pytest.fixture(scope="module")
def api(
    api_settings_factory: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    tag = f"n{uuid.uuid4().hex[:6]}"
    base = api_settings_factory()
    web_port = free_port()
    settings = api_settings_factory(
        redis_namespace=f"{base.redis_namespace}{tag}", app_id=f"{base.app_id}-{tag}",
        topic_events=f"{base.topic_events}.{tag}", topic_items=f"{base.topic_items}.{tag}",
        topic_dlq=f"{base.topic_dlq}.{tag}",
        topic_recommendations=f"{base.topic_recommendations}.{tag}",
        topic_controls=f"{base.topic_controls}.{tag}", web_port=web_port, api_port=free_port(),
        api_worker_metrics_urls=f"http://127.0.0.1:{web_port}/metrics", new_item_share=0.5,
        experiments_file=None,
    )  # fmt: skip
    client = start_api(settings, tmp_path_factory.mktemp("api-logs-new-items"))
    try:
        yield client
    finally:
        client.close()
        client.serve.stop()
        client.worker.stop()


def test_the_user_view_labels_new_item_reasons(page: Any, api: Api) -> None:  # noqa: F811
    user = api.user_with_taste("Comedy", n=3)
    reasons = [e["reason"] for e in (api.recs(user) or {})["items"]]
    assert NEW_FROM_CREATOR in reasons, reasons
    page.goto(api.serve.url("/#user"))
    page.fill("#user-id", user)
    page.click("#user-form button[type=submit]")
    page.wait_for_selector("#user-list tr.rec", timeout=15_000)
    labelled = page.eval_on_selector_all(
        "#user-list tr.rec span.slot", "spans => spans.map(s => s.textContent)"
    )
    assert NEW_FROM_CREATOR in labelled
    assert labelled == [r for r in reasons if _slot(r)]
    assert len(labelled) < len(reasons), "every entry is labelled: the label says nothing"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-user-new-items.png"), full_page=True)
