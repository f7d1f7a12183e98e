"""Consumer lag on /metrics follows the assignment; serve beside a worker logs nothing alarming.

* A worker exports ``recloop_consumer_lag{topic,partition}`` on a timer, from the broker's
  view, before it handled any batch; when a second worker joins, each shows only the
  partitions it owns, so ``sum by (topic)`` over both counts every partition once.
* ``recloop serve`` samples the workers' consumer group every 2 s. kafka-python's admin
  client logged a 2.9 KB WARNING (``Unable to decode member_metadata``) on every sample of a
  Faust group; a minute covers 30 samples, so a periodic warning cannot hide in the window.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.tooling.probes import free_port
from pipeline.tooling.processes import WorkerProcess, wait_for
from pipeline.tooling.serve_process import ServeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PARTITIONS = 4
SERIES = re.compile(r'^recloop_consumer_lag\{partition="(\d+)",topic="([^"]+)"\} (\S+)$', re.M)


def lag_series(worker: WorkerProcess) -> dict[tuple[str, int], float]:
    """``(topic, partition) -> lag`` as the worker's /metrics shows it."""
    try:
        text = worker.metrics()
    except OSError:
        return {}
    return {(t, int(p)): float(v) for p, t, v in SERIES.findall(text)}


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def test_lag_series_are_timed_and_follow_the_assignment(
    settings_factory: Callable[..., Settings], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    settings = settings_factory(topic_partitions=PARTITIONS)
    ensure_topics(settings)
    inputs = (settings.topic_events, settings.topic_items, settings.topic_controls)
    every = {(t, p) for t in inputs for p in range(PARTITIONS)}
    a = WorkerProcess(settings, log_path=tmp_path / "a.log").wait_ready(90)
    workers.append(a)
    # no event was ever produced: the series come from the timer, not from a batch
    assert wait_for(lambda: set(lag_series(a)) == every, timeout=60), lag_series(a)

    with EventProducer(settings) as producer:
        for n in range(200):
            producer.click(f"lag-{n}", "item-1")
    events = [(settings.topic_events, p) for p in range(PARTITIONS)]
    assert wait_for(lambda: sum(lag_series(a).get(tp, -1) for tp in events) == 0, timeout=60), (
        lag_series(a)
    )

    b_settings = settings.model_copy(update={"web_port": free_port()})
    b = WorkerProcess(b_settings, log_path=tmp_path / "b.log").wait_ready(90)
    workers.append(b)

    def split_once() -> bool:
        mine, theirs = set(lag_series(a)), set(lag_series(b))
        return bool(mine) and bool(theirs) and not (mine & theirs) and mine | theirs == every

    assert wait_for(split_once, timeout=90), (lag_series(a), lag_series(b))


def test_serve_beside_a_worker_logs_nothing_above_info(
    settings_factory: Callable[..., Settings], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    worker_port = free_port()
    settings = settings_factory(
        topic_partitions=PARTITIONS,
        web_port=worker_port,
        api_port=free_port(),
        api_worker_metrics_urls=f"http://127.0.0.1:{worker_port}/metrics",
    )
    ensure_topics(settings)
    worker = WorkerProcess(settings, log_path=tmp_path / "worker.log").wait_ready(90)
    workers.append(worker)
    log_path = tmp_path / "serve.log"
    serve = ServeProcess(settings, log_path=log_path, log_level="info").wait_healthy(30)
    try:
        with EventProducer(settings) as producer:
            producer.click(f"quiet-{uuid.uuid4().hex[:6]}", "item-1")
        with httpx.Client(base_url=serve.base_url, timeout=10) as http:

            def sampled_the_group() -> bool:
                latest = http.get("/v1/overview").json()["latest"]
                return bool(latest and latest["kafka_ok"] and latest["workers_alive"] == 1)

            assert wait_for(sampled_the_group, timeout=60), serve.tail()
            time.sleep(60)  # a minute: 30 more samples of the group, lag and end offsets
            latest = http.get("/v1/overview").json()["latest"]
            assert latest["kafka_ok"] and latest["group_state"] == "stable"
            assert http.get("/v1/dead-letters").status_code == 200
    finally:
        serve.stop()
    text = log_path.read_text(errors="replace")
    loud = [
        line
        for line in text.splitlines()
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line) or re.match(r"%[0-4]\|", line)
    ]
    assert not loud, "\n".join(loud[:5])
    assert "INFO" in text  # the log was written at INFO, so silence means no warning
