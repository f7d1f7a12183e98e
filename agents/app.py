"""The Faust app: topics, agents and timers as thin wiring around ``pipeline.worker``.

Nothing here decides anything: agents take raw batches and hand them to the worker's batch
processor, timers call its periodic steps, web pages expose its metrics and health.
``create_app`` builds a fresh app per call (no global app), so tests and several workers per
host do not share one. Its Faust settings come from ``agents.faust_config.faust_settings``,
which the benchmark's ceiling app uses too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from faust.web import Request, Response, View

from agents.batches import event_batches
from agents.faust_config import faust_settings
from agents.transport import new_app
from pipeline.config import Settings
from pipeline.events.ingest import RawMessage
from pipeline.kafka.lag import LAG_EXPORT_SECONDS, KafkaAdmin
from pipeline.publish.ports import Record
from pipeline.stores.client import open_redis
from pipeline.worker.gc_policy import freeze_survivors, watch_gc
from pipeline.worker.loop_lag import watch_loop_lag
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.processor import BatchProcessor
from pipeline.worker.retry import retry_forever
from pipeline.worker.runtime import Worker, start_worker

log = logging.getLogger(__name__)


class FaustSender:
    """A record sender on Faust's producer: send all, then await all acks."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        """Send every record (a ``None`` value is a tombstone), then await every ack."""
        producer = self.app.producer
        futures = [
            await producer.send(topic, key, value, None, None, None) for key, value in records
        ]
        await asyncio.gather(*futures)


def create_app(settings: Settings, *, worker_id: str | None = None) -> faust.App:
    """A Faust app wired to a ``pipeline.worker.runtime.Worker`` built when it starts."""
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    app = new_app(settings.app_id, settings.consumer_fetch_max_wait_ms, **faust_settings(settings))
    metrics = WorkerMetrics()
    ready = asyncio.Event()
    holder: dict[str, Worker] = {}
    unwatch_gc: list[Callable[[], None]] = []

    def topic(name: str) -> Any:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )

    async def started() -> Worker:
        await ready.wait()
        return holder["w"]

    @app.task  # type: ignore[untyped-decorator]
    async def start() -> None:
        client = await retry_forever(
            lambda: open_redis(settings, socket_timeout=5, socket_connect_timeout=5),
            what="redis connect",
            on_error=lambda _: metrics.redis_errors.inc(),
        )
        holder["w"] = await start_worker(
            settings, redis=client, sender=FaustSender(app), worker_id=worker_id, metrics=metrics
        )
        unwatch_gc.append(watch_gc(metrics))
        frozen = freeze_survivors(settings)  # libraries and loaded models: out of later passes
        ready.set()
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]  # uvloop or asyncio
        log.info("worker ready worker_id=%s loop=%s gc_frozen=%d", worker_id, loop, frozen)

    inputs = {settings.topic_events, settings.topic_items, settings.topic_controls}
    lag_admin = KafkaAdmin(settings, client_id=f"{settings.app_id}-lag")

    def assigned() -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in inputs}

    @app.timer(interval=LAG_EXPORT_SECONDS, name="recloop.consumer_lag")  # type: ignore[untyped-decorator]
    async def export_lag() -> None:
        # on a timer, from the broker: a stalled agent's lag keeps growing on /metrics
        try:
            mine = sorted(assigned())
            lags = await asyncio.to_thread(lag_admin.lag, settings.app_id, mine) if mine else {}
        except Exception as exc:  # lag is advisory: keep the last values, try next tick
            log.debug("consumer lag unavailable error=%r", exc)
            return
        now = assigned()  # a rebalance may have happened while we asked
        metrics.export_lag({tp: lag for tp, lag in lags.items() if tp in now})

    def batch_agent(
        name: str, handler: Callable[[BatchProcessor, list[RawMessage]], Awaitable[None]]
    ) -> None:
        """An agent handing raw batches of ``name`` to ``handler`` (acked after it returns)."""

        async def agent(stream: Any) -> None:
            worker = await started()
            processor = worker.processor
            async for events in stream.take_events(
                settings.batch_size, within=settings.batch_within_seconds
            ):
                raws = [_raw(e) for e in events]

                async def handle(raws: list[RawMessage] = raws) -> None:
                    await handler(processor, raws)

                # not interleaved with event batches: controls (a forget above all) apply
                # after every earlier event batch is written
                await worker.events.exclusive(handle)

        agent.__name__ = f"agent_{name.replace('.', '_').replace('-', '_')}"
        app.agent(topic(name), name=f"recloop.{name}")(agent)

    async def events_agent(stream: Any) -> None:
        """Events: batches gathered under a backlog, pipelined, acknowledged once durable."""
        worker = await started()
        async for events, behind in event_batches(app, stream, settings):
            metrics.on_taken([e.message.timestamp for e in events], time.time())
            await worker.events.submit([_raw(e) for e in events], _acker(events))
            worker.note_backlog(behind, len(events))

    app.agent(topic(settings.topic_events), name=f"recloop.{settings.topic_events}")(events_agent)
    batch_agent(settings.topic_items, BatchProcessor.handle_items)
    batch_agent(settings.topic_controls, BatchProcessor.handle_controls)

    @app.task  # type: ignore[untyped-decorator]
    async def loop_lag() -> None:
        await watch_loop_lag(metrics)

    def every(seconds: float, step: Callable[[Worker], Awaitable[None]], name: str) -> None:
        async def tick() -> None:
            if not ready.is_set():
                return
            try:
                await step(holder["w"])
            except Exception:  # a timer must survive anything: log and try next tick
                log.exception("timer failed timer=%s", name)

        tick.__name__ = f"timer_{name}"
        app.timer(interval=seconds, name=f"recloop.{name}")(tick)

    every(0.05, Worker.flush_pending, "deferred_refresh")
    every(settings.availability_sync_ms / 1000, Worker.sync_availability, "availability")
    every(settings.model_sync_seconds, Worker.sync_model, "model_sync")
    every(settings.trending_sync_seconds, Worker.refresh_trending, "trending")
    every(settings.model_snapshot_seconds, Worker.snapshot_model, "snapshot")
    every(min(30.0, settings.stale_list_seconds / 4), Worker.refresh_stale, "stale_refresh")
    every(60.0, Worker.sweep_segments, "segment_sweep")
    every(2.0, Worker.rescue_owed, "owed_rescue")

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        metrics.forget_lag((tp.topic, tp.partition) for tp in revoked)
        # agents are idle here and the users are still ours: hand over deferred refreshes
        if ready.is_set():
            await holder["w"].hand_over()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(sender: Any, **_: Any) -> None:
        while unwatch_gc:  # the callback is process-wide: an app stopped in a test leaves none
            unwatch_gc.pop()()
        if ready.is_set():
            await holder["w"].hand_over()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        if ready.is_set():
            events = settings.topic_events
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == events}
            holder["w"].on_partitions_changed(owned)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.render(), content_type="text/plain; version=0.0.4")

    @app.page("/health")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "worker_id": worker_id})

    @app.page("/ready")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            if not ready.is_set():
                return self.json({"ready": False, "why": "starting"}, status=503)
            try:
                await holder["w"].redis.ping()
            except Exception as exc:  # readiness reports, never raises
                return self.json(
                    {"ready": False, "why": f"redis: {type(exc).__name__}"}, status=503
                )
            return self.json({"ready": True, "worker_id": worker_id})

    return app


def _acker(events: Sequence[Any]) -> Callable[[], None]:
    """Acknowledge a batch's events (Faust then commits their offsets)."""

    def ack() -> None:
        for event in events:
            event.ack()

    return ack


def _raw(event: Any) -> RawMessage:
    message = event.message
    value = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
    key = message.key if isinstance(message.key, bytes) else None
    return RawMessage(
        value=value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key,
        tombstone=message.value is None,
    )
