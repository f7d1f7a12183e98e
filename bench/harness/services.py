"""Kafka and Redis for a benchmark run, and the settings that keep runs apart.

A benchmark starts its own Kafka and Redis (:class:`pipeline.tooling.stack.LocalStack` on free
ports in a temporary directory, jars from the repository's ``.recloop/kafka`` cache), unless
``RECLOOP_KAFKA_BOOTSTRAP`` / ``RECLOOP_REDIS_URL`` point at running ones; each service is
chosen on its own, as in ``tests/conftest.py``. Every run gets its own topics, consumer group
and Redis namespace (:func:`bench_settings`), so runs never see each other's data and nothing
is ever flushed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.tooling.probes import free_port, free_ports
from pipeline.tooling.stack import LocalStack

from .machine import MachineLoad, wait_for_quiet
from .output import log
from .results import REPO_ROOT


@dataclass
class Services:
    """A Kafka bootstrap and a Redis URL, plus the stack (if any) we started for them."""

    kafka_bootstrap: str
    redis_url: str
    stack: LocalStack | None
    workdir: Path
    started: list[str] = field(default_factory=list)
    load: MachineLoad | None = None
    quiet: dict[str, Any] = field(default_factory=dict)

    def contention(self, start: float, end: float | None = None) -> dict[str, Any]:
        """Other processes' CPU use between two ``time.monotonic()`` values."""
        return self.load.window(start, end) if self.load else {}

    def pids(self) -> dict[str, int]:
        """PIDs of the broker and Redis when this run started them (for CPU accounting)."""
        if self.stack is None:
            return {}
        status = self.stack.status()
        out = {}
        if status.kafka.pid is not None:
            out["kafka"] = status.kafka.pid
        if status.redis.pid is not None:
            out["redis"] = status.redis.pid
        return out


@contextlib.contextmanager
def services(name: str, *, keep: bool = False, wait_quiet: float = 0.0) -> Iterator[Services]:
    """Kafka and Redis for one benchmark; whatever was started here is stopped on exit.

    First waits up to ``wait_quiet`` seconds for the rest of the machine to be idle, then
    samples other processes' CPU use for the whole run (``Services.contention``). SIGTERM is
    turned into ``KeyboardInterrupt`` so a killed benchmark still stops the broker, Redis and
    its workers (every ``finally`` runs).
    """
    _sigterm_as_interrupt()
    quiet = wait_for_quiet(wait_quiet) if wait_quiet > 0 else {}
    load = MachineLoad()
    load.start()
    workdir = Path(tempfile.mkdtemp(prefix=f"recloop-bench-{name}-"))
    kafka = os.environ.get("RECLOOP_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("RECLOOP_REDIS_URL")
    stack = None
    ok = False
    try:
        if not kafka or not redis_url:
            kafka_port, controller_port, redis_port = free_ports(3)
            stack = LocalStack(
                workdir / "stack",
                kafka_port=kafka_port,
                controller_port=controller_port,
                redis_port=redis_port,
                jar_cache=REPO_ROOT / ".recloop" / "kafka",
                cluster_id=_cluster_id(),
            )
        started = []
        t0 = time.monotonic()
        if not redis_url:
            assert stack is not None
            stack.start_redis()
            redis_url = stack.redis_url
            started.append("redis")
        if not kafka:
            assert stack is not None
            stack.start_kafka()
            kafka = stack.kafka_bootstrap
            started.append("kafka")
        if started:
            log(f"started {'+'.join(started)} in {time.monotonic() - t0:.1f} s ({workdir})")
        yield Services(kafka, redis_url, stack, workdir, started, load, quiet)
        ok = True
    finally:
        load.stop()
        if stack is not None:
            stack.stop()
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")


def _cluster_id() -> str:
    """A KRaft cluster id that cannot start with "-".

    ``kafka-storage format -t <id>`` parses an id starting with "-" as an option and fails;
    a URL-safe base64 id starts with "-" once in 64 (Kafka's own ``Uuid.randomUuid`` redraws
    those).
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every benchmark on the live stack takes."""
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="wait up to this many seconds for other processes to leave the CPU idle (default 60)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temp dir with worker and stack logs"
    )


def bench_settings(svc: Services, name: str, **overrides: Any) -> Settings:
    """Settings with this run's own topics, consumer group, Redis namespace and web port.

    Every ``RECLOOP_*`` variable the bench does not set itself comes from the environment
    (framework knobs, batch sizes, ...), so a bench measures exactly what a worker started
    with the same environment would run.
    """
    uid = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka_bootstrap": svc.kafka_bootstrap,
        "redis_url": svc.redis_url,
        "app_id": f"recloop-bench-{name}-{uid}",
        "topic_events": f"bench-{name}-{uid}.events",
        "topic_items": f"bench-{name}-{uid}.items",
        "topic_dlq": f"bench-{name}-{uid}.events.dlq",
        "topic_recommendations": f"bench-{name}-{uid}.recommendations",
        "topic_controls": f"bench-{name}-{uid}.controls",
        "redis_namespace": f"bench-{name}-{uid}",
        "web_port": free_port(),
        "data_dir": svc.workdir / "data",  # removed with the run's temp dir
    }
    values.update(overrides)
    return Settings(**values)


def fresh_consumer(settings: Settings, label: str) -> Settings:
    """The same topics with a new consumer group, Redis namespace and web port.

    Another pass over the same pre-loaded events starts from scratch: nothing committed,
    no user state, no model.
    """
    uid = uuid.uuid4().hex[:6]
    return settings.model_copy(
        update={
            "app_id": f"{settings.app_id}-{label}-{uid}",
            "redis_namespace": f"{settings.redis_namespace}-{label}-{uid}",
            "web_port": free_port(),
        }
    )


def with_new_port(settings: Settings) -> Settings:
    """The same settings with another free web port (one per worker process)."""
    return settings.model_copy(update={"web_port": free_port()})


KNOBS = (
    "batch_size",
    "batch_within_seconds",
    "batch_gather_seconds",
    "batches_in_flight",
    "refresh_interval_ms",
    "worker_uvloop",
    "gc_gen0_threshold",
    "gc_freeze",
    "faust_cython_optimizations",
    "faust_monitor",
    "faust_stream_buffer_maxsize",
    "broker_max_poll_records",
    "consumer_fetch_max_wait_ms",
    "producer_linger_seconds",
)
"""Settings that change what a message costs the worker (and the ceiling app): every result
records them, so two results can be compared knowing what differed."""


def worker_knobs(settings: Settings) -> dict[str, Any]:
    """The :data:`KNOBS` of ``settings`` (from the environment unless the bench set them)."""
    return {k: getattr(settings, k) for k in KNOBS}
