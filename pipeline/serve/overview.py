"""The console's live overview: a sample of the whole pipeline every few seconds.

Sources, each optional (a missing one leaves its fields ``null``, the rest still works):

- Kafka: the workers' consumer group (members = workers alive, lag on events and
  controls) and the end offsets of every topic (events/s, dead letters/s, lists/s);
- the workers' Prometheus pages (``RECLOOP_API_WORKER_METRICS_URLS``): events/s by type,
  dead letters by reason, event-to-list latency p50/p99 (from histogram bucket deltas);
- Redis: users active in the last minute.

A bounded ring of points (``HISTORY_POINTS``, 10 minutes at the default interval) feeds the
charts; ``/v1/overview`` returns it and ``/v1/overview/stream`` pushes each new point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import Settings
from pipeline.serve.kafka_view import GroupStatus, KafkaView
from pipeline.stores.client import RedisClient
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.reads import active_count

log = logging.getLogger(__name__)

HISTORY_POINTS = 300
LATENCY_WINDOW_POINTS = 15  # latency quantiles over the last ~30 s
KAFKA_BACKOFF_SECONDS = 15.0


@dataclass(slots=True)
class Raw:
    """Cumulative values read at one instant (counters, histogram buckets)."""

    t: float
    group: GroupStatus | None = None
    events: dict[str, float] | None = None
    dead_letters: dict[str, float] | None = None
    buckets: dict[float, float] | None = None
    worker_lag: float | None = None
    loop_lag_max: float | None = None
    workers_answering: int | None = None
    active_users: int | None = None


@dataclass(slots=True)
class Metrics:
    """Sums over the workers' Prometheus pages."""

    events: dict[str, float] = field(default_factory=dict)
    dead_letters: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    lag: float = 0.0
    loop_lag_max: float | None = None  # the slowest worker's, over its last 10 s


def parse_metrics(text: str, into: Metrics) -> None:
    r"""Add one worker's ``recloop_*`` series to ``into``.

    >>> m = Metrics()
    >>> parse_metrics("recloop_event_loop_lag_max_seconds 0.25\n", m)
    >>> parse_metrics("recloop_event_loop_lag_max_seconds 0.05\n", m)
    >>> m.loop_lag_max
    0.25
    """
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == "recloop_events_total" and labels.get("outcome") == "applied":
                kind = labels.get("type", "unknown")
                into.events[kind] = into.events.get(kind, 0.0) + value
            elif name == "recloop_dead_letters_total":
                reason = labels.get("reason", "unknown")
                into.dead_letters[reason] = into.dead_letters.get(reason, 0.0) + value
            elif name == "recloop_event_to_list_seconds_bucket":
                le = float(labels.get("le", "inf"))
                into.buckets[le] = into.buckets.get(le, 0.0) + value
            elif name == "recloop_consumer_lag":
                into.lag += value
            elif name == "recloop_event_loop_lag_max_seconds":
                # a worker's busiest moment delays all its lists: the max, not a sum
                into.loop_lag_max = max(value, into.loop_lag_max or 0.0)


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus-style quantile from cumulative bucket counts (linear within a bucket).

    >>> round(histogram_quantile(0.5, {0.1: 0.0, 0.2: 10.0, math.inf: 10.0}), 3)
    0.15
    """
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def _rates(new: dict[str, float] | None, old: dict[str, float] | None, dt: float) -> Any:
    if new is None or old is None or dt <= 0:
        return None
    return {k: max(0.0, (v - old.get(k, 0.0)) / dt) for k, v in sorted(new.items())}


class OverviewSampler:
    """Samples the pipeline every ``interval`` seconds while the serve process runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: RedisClient,
        partitions: Partitioning,
        kafka: KafkaView,
        interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.partitions = partitions
        self.kafka = kafka
        self.keys = RedisKeys(settings.redis_namespace)
        self.interval = interval
        self.urls = [u.strip() for u in settings.api_worker_metrics_urls.split(",") if u.strip()]
        self.raw: deque[Raw] = deque(maxlen=LATENCY_WINDOW_POINTS + 1)
        self.points: deque[dict[str, Any]] = deque(maxlen=HISTORY_POINTS)
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._kafka_retry_at = 0.0

    def start(self) -> None:
        """Start sampling in the background."""
        self._http = httpx.AsyncClient(timeout=1.5)
        self._task = asyncio.create_task(self._run(), name="overview-sampler")

    async def stop(self) -> None:
        """Stop sampling and close the HTTP client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.aclose()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sample()
            except Exception:  # a sampler bug must not stop the console
                log.exception("overview sample failed")
            await asyncio.sleep(max(0.1, self.interval - (time.monotonic() - started)))

    async def _metrics(self) -> tuple[Metrics | None, int | None]:
        if not self.urls or self._http is None:
            return None, None
        http = self._http

        async def fetch(url: str) -> str | None:
            try:
                resp = await http.get(url)
                resp.raise_for_status()
                return resp.text
            except httpx.HTTPError as exc:
                log.debug("worker metrics unavailable url=%s error=%r", url, exc)
                return None

        pages = await asyncio.gather(*(fetch(u) for u in self.urls))
        merged = Metrics()
        answering = 0
        for page in pages:
            if page is not None:
                answering += 1
                parse_metrics(page, merged)
        return merged, answering

    async def _group(self) -> GroupStatus | None:
        if time.monotonic() < self._kafka_retry_at:
            return None
        try:
            return await asyncio.to_thread(self.kafka.group_status)
        except Exception as exc:  # back off: the probes and dead-letter reads share the clients
            log.debug("kafka group status unavailable error=%r", exc)
            self._kafka_retry_at = time.monotonic() + KAFKA_BACKOFF_SECONDS
            return None

    async def _active(self) -> int | None:
        try:
            since = int(time.time() * 1000) - 60_000
            return await active_count(self.redis, self.keys, self.partitions, since)
        except Exception as exc:
            log.debug("redis unavailable error=%r", exc)
            return None

    async def sample(self) -> dict[str, Any]:
        """Take one sample, derive a point, store it and wake the streams."""
        (metrics, answering), group, active = await asyncio.gather(
            self._metrics(), self._group(), self._active()
        )
        raw = Raw(
            t=time.time(),
            group=group,
            events=metrics.events if metrics else None,
            dead_letters=metrics.dead_letters if metrics else None,
            buckets=metrics.buckets if metrics else None,
            worker_lag=metrics.lag if metrics else None,
            loop_lag_max=metrics.loop_lag_max if metrics else None,
            workers_answering=answering,
            active_users=active,
        )
        point = self._derive(raw)
        self.raw.append(raw)
        self.points.append(point)
        async with self.changed:
            self.changed.notify_all()
        return point

    def _derive(self, raw: Raw) -> dict[str, Any]:
        prev = self.raw[-1] if self.raw else None
        dt = raw.t - prev.t if prev else 0.0
        topics: dict[str, float] | None = None
        if raw.group is not None and prev is not None and prev.group is not None:
            topics = _rates(
                {k: float(v) for k, v in raw.group.end_offsets.items()},
                {k: float(v) for k, v in prev.group.end_offsets.items()},
                dt,
            )
        s = self.settings
        p50 = p99 = None
        oldest = self.raw[0] if self.raw else None
        if raw.buckets is not None and oldest is not None and oldest.buckets is not None:
            window = {le: c - oldest.buckets.get(le, 0.0) for le, c in raw.buckets.items()}
            p50, p99 = histogram_quantile(0.5, window), histogram_quantile(0.99, window)
        return {
            "ts": int(raw.t * 1000),
            "events_per_s": (topics or {}).get(s.topic_events) if topics else None,
            "events_per_s_by_type": _rates(raw.events, prev.events if prev else None, dt),
            "dead_letters_per_s": (topics or {}).get(s.topic_dlq) if topics else None,
            "dead_letters_by_reason": raw.dead_letters,
            "lists_per_s": (topics or {}).get(s.topic_recommendations) if topics else None,
            "event_to_list_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "event_to_list_p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "consumer_lag": raw.group.total_lag if raw.group else raw.worker_lag,
            "event_loop_lag_ms": None
            if raw.loop_lag_max is None
            else round(raw.loop_lag_max * 1000, 1),
            "workers_alive": raw.group.members if raw.group else raw.workers_answering,
            "group_state": raw.group.state if raw.group else None,
            "workers_metrics_answering": raw.workers_answering,
            "active_users_1m": raw.active_users,
            "kafka_ok": raw.group is not None,
        }

    def latest(self) -> dict[str, Any] | None:
        """The newest point, if any."""
        return self.points[-1] if self.points else None
