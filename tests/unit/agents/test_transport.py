"""The worker's Kafka consumer waits at most RECLOOP_CONSUMER_FETCH_MAX_WAIT_MS per fetch.

Faust fixes 1500 ms; a fetch naming only quiet topics' partitions then blocked the next fetch
of events for that long (``agents.transport``). The aiokafka consumer is built, never started:
no broker is needed to read what its fetcher will be given.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import faust
import pytest

from agents.app import create_app
from agents.transport import FAUST_FETCH_MAX_WAIT_MS, ConsumerThread, Transport
from pipeline.config import Settings
from tests.unit.agents.apps import ceiling_module


def _fetch_wait_ms(app: faust.App) -> int:
    """The fetch wait of the aiokafka consumer the app's consumer thread would start."""

    async def build() -> int:
        thread: Any = cast(Any, app.consumer)._thread
        consumer = thread._create_worker_consumer(app.transport)
        await consumer._client.close()  # nothing connected; release what it made
        return int(consumer._fetch_max_wait_ms)

    return asyncio.run(build())


@pytest.mark.parametrize(("wait_ms", "expected"), [(None, 500), (40, 40)])
def test_the_worker_consumer_fetches_with_the_setting_s_wait(
    tmp_path: Path, wait_ms: int | None, expected: int
) -> None:
    settings = Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1")
    if wait_ms is not None:
        settings = settings.model_copy(update={"consumer_fetch_max_wait_ms": wait_ms})
    worker, ceiling = create_app(settings), ceiling_module().create_app(settings, "sink")
    for app in (worker, ceiling):  # the same consumer, for the worker/ceiling ratio
        assert isinstance(app.transport, Transport)
        assert isinstance(cast(Any, app.consumer)._thread, ConsumerThread)
        assert _fetch_wait_ms(app) == expected != FAUST_FETCH_MAX_WAIT_MS


def test_a_plain_faust_app_keeps_faust_s_wait(tmp_path: Path) -> None:
    """What the setting replaces: Faust's own driver, unchanged, waits 1500 ms."""
    app = faust.App("plain", broker="kafka://127.0.0.1:1", datadir=tmp_path / "plain")
    assert _fetch_wait_ms(app) == FAUST_FETCH_MAX_WAIT_MS
