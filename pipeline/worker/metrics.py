"""Prometheus metrics of a worker, declared once, labels with few values (never a user id).

Each ``WorkerMetrics`` owns a registry, so several processors in one test process do not
collide; the worker serves it at ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from pipeline.model.models import SharedModels as ModelSizes

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EVENT_TIME_LAG_CAP_SECONDS = 7 * 86_400.0
"""Event-time lags are clamped into [0, this]: a decades-old event must not swamp the sum."""
_LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3_600.0, 21_600.0, 86_400.0,
                EVENT_TIME_LAG_CAP_SECONDS)  # fmt: skip


def clamp_lag(seconds: float) -> float:
    """An event-time lag clamped into the histogram's finite range.

    A negative lag (the producer's clock ahead, within ``max_future_ms``) counts as 0, a lag
    beyond a week (an old device's backlog, a wrong clock) as a week, so the histogram's sum
    and top buckets stay meaningful.

    >>> clamp_lag(-3.0), clamp_lag(2.5), clamp_lag(40 * 365 * 86_400.0)
    (0.0, 2.5, 604800.0)
    """
    return min(max(seconds, 0.0), EVENT_TIME_LAG_CAP_SECONDS)


class WorkerMetrics:
    """All ``recloop_*`` series of one worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "recloop_events_total",
            "Events handled, by type and outcome (applied, duplicate, dead_letter, forgotten).",
            ["type", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "recloop_dead_letters_total",
            "Messages dead-lettered, by reason.",
            ["reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "recloop_batch_seconds",
            "Time to handle one batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "recloop_batch_stage_seconds",
            "Time of a batch's stages: prepare (CPU: parse, load, learn, rank) and commit "
            "(I/O: Redis write, lists, dead letters).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "recloop_event_loop_lag_seconds",
            "How late a 100 ms timer fires: time the event loop was busy with other work.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.loop_lag_max = Gauge(
            "recloop_event_loop_lag_max_seconds",
            "Largest event-loop lag over the last 10 s.",
            registry=r,
        )
        self.gc_pause = Histogram(
            "recloop_gc_pause_seconds",
            "Pauses of Python's cyclic garbage collector, by generation (the loop held).",
            ["generation"],
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.backlog_seconds = Gauge(
            "recloop_backlog_seconds",
            "Consumer lag of the events topic in seconds of work at the recent rate.",
            registry=r,
        )
        self.in_flight = Gauge(
            "recloop_batches_in_flight",
            "Batches prepared whose I/O is not done yet (at most RECLOOP_BATCHES_IN_FLIGHT).",
            registry=r,
        )
        self.batch_size = Histogram(
            "recloop_batch_size",
            "Messages per batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.event_to_list = Histogram(
            "recloop_event_to_list_seconds",
            "A worker receiving an event (or control) to its user's list published.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_time_lag = Histogram(
            "recloop_event_time_lag_seconds",
            "Event ts to its user's list published, clamped to [0, 7 days].",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.event_wait = Histogram(
            "recloop_event_wait_seconds",
            "An event's Kafka record timestamp to this worker taking it into a batch (time in "
            "the topic, the consumer's fetch and Faust's buffer), clamped to [0, 7 days].",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.list_build = Histogram(
            "recloop_list_build_seconds",
            "Building one list (candidates, scoring, category cap, reasons), built or not sent.",
            buckets=(0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.05),
            registry=r,
        )
        self.lists = Counter(
            "recloop_lists_published_total",
            "Recommendation lists published, by trigger (event, deferred, withdrawn, ...).",
            ["trigger"],
            registry=r,
        )
        self.model_records = Counter(
            "recloop_model_records_total",
            "Learn records applied to the shared models, by source (own, peer).",
            ["source"],
            registry=r,
        )
        self.availability_changes = Counter(
            "recloop_availability_changes_total",
            "Item availability changes applied, by source (own: consumed here; peer: from "
            "the availability log).",
            ["source"],
            registry=r,
        )
        self.withdraw_seconds = Histogram(
            "recloop_withdraw_sweep_seconds",
            "Time to republish the lists holding newly unavailable items (one sweep).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "recloop_model_version",
            "Version of the last model snapshot loaded or written.",
            registry=r,
        )
        self.snapshot_seconds = Histogram(
            "recloop_model_snapshot_seconds",
            "Time of a model snapshot's steps: copy (on the event loop) and write (built "
            "from the copy in a thread, then stored; the loop keeps running).",
            ["step"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.snapshot_bytes = Gauge(
            "recloop_model_snapshot_bytes",
            "Stored bytes of the last model snapshot this worker wrote (header and parts).",
            registry=r,
        )
        self.redis_errors = Counter(
            "recloop_redis_errors_total", "Redis operations that failed (then retried).", registry=r
        )
        self.kafka_errors = Counter(
            "recloop_kafka_errors_total", "Kafka sends that failed (then retried).", registry=r
        )
        self.processing_errors = Counter(
            "recloop_processing_errors_total",
            "Unexpected errors while handling a batch.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "recloop_consumer_lag",
            "Records of an assigned partition the group has not committed yet (broker's view,"
            " refreshed on a timer), by topic and partition.",
            ["topic", "partition"],
            registry=r,
        )
        self._lag_series: set[tuple[str, str]] = set()
        self.controls = Counter(
            "recloop_controls_total", "User controls applied, by type.", ["type"], registry=r
        )
        self.forgotten = Counter(
            "recloop_users_forgotten_total", "Users whose state was deleted on request.", registry=r
        )
        self.repartitioned = Counter(
            "recloop_repartitioned_total",
            "Records that landed on another partition than Kafka's default partitioner gives "
            "their key, re-produced to the right one, by topic.",
            ["topic"],
            registry=r,
        )
        self.write_conflicts = Counter(
            "recloop_write_conflicts_total",
            "User writes refused because another worker wrote the user since it was loaded "
            "(the user is reloaded and the events re-applied).",
            registry=r,
        )
        self.cached_users = Gauge(
            "recloop_cached_users", "User states held in the worker's cache.", registry=r
        )
        self.model_bytes = Gauge(
            "recloop_model_bytes",
            "Resident bytes of the worker's model arrays, by part (neighbors: the "
            "co-occurrence rows, bounded by RECLOOP_MODEL_NEIGHBOR_MEMORY_MB; items: "
            "catalogue and item statistics). Python strings and the user-kNN come on top.",
            ["part"],
            registry=r,
        )
        self.neighbor_budget_passes = Gauge(
            "recloop_model_neighbor_budget_passes",
            "Passes that dropped the lightest co-occurrence entries to stay within "
            "RECLOOP_MODEL_NEIGHBOR_MEMORY_MB, since the worker started.",
            registry=r,
        )

    def watch_model(self, models: ModelSizes) -> None:
        """Read the model's sizes at each scrape (a few array sizes: cheap on the loop).

        The user-kNN is left out: measuring it walks one object per user and per item.
        """
        self.model_bytes.labels("neighbors").set_function(models.cooc.nbytes)
        self.model_bytes.labels("items").set_function(
            lambda: models.catalog.nbytes() + models.stats.nbytes()
        )
        self.neighbor_budget_passes.set_function(lambda: models.cooc.table.budget_passes)

    # --- sensor hooks (``pipeline.publish.ports.PublishSensor``) ---------------------------
    def on_lists(self, kind: str, count: int) -> None:
        """``count`` lists of a refresh kind were published."""
        self.lists.labels(kind).inc(count)

    def on_list_built(self, seconds: float) -> None:
        """One list took ``seconds`` to build."""
        self.list_build.observe(seconds)

    def on_event_to_list(self, seconds: float) -> None:
        """A list reflecting an event was published ``seconds`` after a worker received it."""
        self.event_to_list.observe(seconds)

    def on_taken(self, record_seconds: Iterable[float | None], now: float) -> None:
        """Events were taken into a batch at ``now`` (epoch seconds), their records stamped so.

        Splits an event's latency at the worker's door: how long it waited in the topic, the
        consumer's fetch and Faust's buffer (this histogram) against what the worker took after
        (``recloop_event_to_list_seconds``). A list late by a second with a small wait here
        is the worker's doing; a large wait is fetching or a backlog. Records without a
        timestamp are left out; a producer clock ahead counts 0 (``clamp_lag``).
        """
        observe = self.event_wait.observe
        for stamped in record_seconds:
            if stamped is not None:
                observe(clamp_lag(now - stamped))

    def on_event_time_lag(self, seconds: float) -> None:
        """A list reflecting an event was published ``seconds`` after the event's ``ts``."""
        self.event_time_lag.observe(clamp_lag(seconds))

    def export_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Show exactly these partitions' lag: set their series, remove every other one.

        Series of partitions this worker no longer owns must go, or ``sum by (topic)`` over
        the workers would count a partition twice after a rebalance.
        """
        wanted = {(topic, str(partition)): lag for (topic, partition), lag in lags.items()}
        for labels in self._lag_series - wanted.keys():
            self.consumer_lag.remove(*labels)
        for labels, lag in wanted.items():
            self.consumer_lag.labels(*labels).set(lag)
        self._lag_series = set(wanted)

    def forget_lag(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Remove the lag series of ``partitions`` (revoked from this worker)."""
        for topic, partition in partitions:
            labels = (topic, str(partition))
            if labels in self._lag_series:
                self.consumer_lag.remove(*labels)
                self._lag_series.discard(labels)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
