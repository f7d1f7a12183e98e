"""Prometheus metrics of a worker, declared once, labels with few values (never a user id).

Each ``WorkerMetrics`` owns a registry, so several processors in one test process do not
collide; the worker serves it at ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        self.batch_size = Histogram(
            "recloop_batch_size",
            "Messages per batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.event_to_list = Histogram(
            "recloop_event_to_list_seconds",
            "Event ts to its user's list published (wall clock).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lists = Counter(
            "recloop_lists_published_total",
            "Recommendation lists published, by trigger (event, deferred, background).",
            ["trigger"],
            registry=r,
        )
        self.model_records = Counter(
            "recloop_model_records_total",
            "Learn records applied to the shared models, by source (own, peer).",
            ["source"],
            registry=r,
        )
        self.model_version = Gauge(
            "recloop_model_version",
            "Version of the last model snapshot loaded or written.",
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
            "Messages behind the partition's end after the last batch, by topic and partition.",
            ["topic", "partition"],
            registry=r,
        )
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

    # --- sensor hooks (``pipeline.publish.ports.PublishSensor``) ---------------------------
    def on_lists(self, kind: str, count: int) -> None:
        """``count`` lists of a refresh kind were published."""
        self.lists.labels(kind).inc(count)

    def on_event_to_list(self, seconds: float) -> None:
        """A list reflecting an event was published ``seconds`` after the event."""
        self.event_to_list.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
