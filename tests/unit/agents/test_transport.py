"""The worker's Kafka consumer waits at most RECLOOP_CONSUMER_FETCH_MAX_WAIT_MS per fetch.

Faust fixes 1500 ms; a fetch naming only quiet topics' partitions then blocked the next fetch
of events for that long (``agents.transport``). The aiokafka consumer is built, never started:
no broker is needed to read what its fetcher will be given.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any, cast

import faust
import pytest

from agents.app import create_app
from agents.transport import FAUST_FETCH_MAX_WAIT_MS, ConsumerThread, Transport
from pipeline.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def _aiokafka_consumer(app: faust.App) -> Any:
    """The aiokafka consumer the app's consumer thread would start (built, not started)."""

    async def build() -> Any:
        thread = cast(Any, app.consumer)._thread
        assert isinstance(thread, ConsumerThread)
        consumer = thread._create_worker_consumer(app.transport)
        await consumer._client.close()  # nothing connected; release what it made
        return consumer

    return asyncio.run(build())


def _ceiling_app(settings: Settings) -> faust.App:
    spec = importlib.util.spec_from_file_location("ceiling_app", ROOT / "bench" / "ceiling_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: faust.App = module.create_app(settings, "sink")
    return app


@pytest.mark.parametrize(("wait_ms", "expected"), [(None, 500), (40, 40)])
def test_the_worker_consumer_fetches_with_the_setting_s_wait(
    tmp_path: Path, wait_ms: int | None, expected: int
) -> None:
    settings = Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1")
    if wait_ms is not None:
        settings = settings.model_copy(update={"consumer_fetch_max_wait_ms": wait_ms})
    for app in (create_app(settings), _ceiling_app(settings)):  # the same for the ratio
        assert isinstance(app.transport, Transport)
        consumer = _aiokafka_consumer(app)
        assert consumer._fetch_max_wait_ms == expected != FAUST_FETCH_MAX_WAIT_MS


def test_a_plain_faust_app_keeps_faust_s_wait(tmp_path: Path) -> None:
    """What the setting replaces: Faust's own driver, unchanged, waits 1500 ms."""
    app = faust.App("plain", broker="kafka://127.0.0.1:1", datadir=tmp_path / "plain")

    async def build() -> Any:
        thread: Any = cast(Any, app.consumer)._thread
        consumer = thread._create_worker_consumer(app.transport)
        await consumer._client.close()
        return consumer

    assert asyncio.run(build())._fetch_max_wait_ms == FAUST_FETCH_MAX_WAIT_MS
