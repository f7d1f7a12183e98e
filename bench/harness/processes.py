"""Consumers under test as processes: recloop workers, the Faust ceiling app, and draining.

Workers are ``pipeline.tooling.processes.WorkerProcess`` (``recloop worker`` with the run's
settings in ``RECLOOP_*``); the ceiling app (``bench/ceiling_app.py``) is started the same way,
from the same ``Settings``, so it runs on exactly the worker's Faust settings and event loop.
:func:`drain` measures how fast a consumer works through a pre-loaded backlog.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaException

from pipeline.config import Settings
from pipeline.tooling.processes import WorkerProcess

from .kafka import admin_client, create_topic, topic_size
from .machine import CpuMeter
from .output import log
from .prom import fetch_text, prom_sum
from .results import BENCH_DIR


def worker_progress(worker: WorkerProcess) -> Callable[[], int | None]:
    """Events the worker handled so far (all outcomes), ``None`` while /metrics is down."""

    def progress() -> int | None:
        try:
            return int(prom_sum(fetch_text(worker.url("/metrics")), "recloop_events_total"))
        except OSError:
            return None

    return progress


def worker_facts(text: str) -> dict[str, Any]:
    """Outcomes, lists, batches and errors from a worker's ``/metrics`` text."""
    n = prom_sum(text, "recloop_batch_seconds_count")
    return {
        "applied": prom_sum(text, "recloop_events_total", outcome="applied"),
        "duplicate": prom_sum(text, "recloop_events_total", outcome="duplicate"),
        "dead_letter": prom_sum(text, "recloop_events_total", outcome="dead_letter"),
        "lists": int(prom_sum(text, "recloop_lists_published_total")),
        "batches": n,
        "mean_batch_size": prom_sum(text, "recloop_batch_size_sum") / n if n else None,
        "mean_batch_ms": 1000 * prom_sum(text, "recloop_batch_seconds_sum") / n if n else None,
        "redis_errors": prom_sum(text, "recloop_redis_errors_total"),
        "kafka_errors": prom_sum(text, "recloop_kafka_errors_total"),
        # the garbage collector's pauses over the whole process (start included)
        "gc_pause_seconds": prom_sum(text, "recloop_gc_pause_seconds_sum"),
        "gc_full_pause_seconds": prom_sum(text, "recloop_gc_pause_seconds_sum", generation="2"),
        "gc_passes": prom_sum(text, "recloop_gc_pause_seconds_count"),
    }


class CeilingProcess:
    """``bench/ceiling_app.py`` on ``settings`` (the worker's), forwarding to its own topic."""

    def __init__(self, settings: Settings, *, log_path: Path, forward: bool = True) -> None:
        self.settings = settings
        self.forward = forward
        self.sink = f"{settings.topic_events}.ceiling-{uuid.uuid4().hex[:8]}"
        if forward:
            create_topic(settings, self.sink)
        env = {
            **os.environ,
            **settings.to_env(),
            "PYTHONUNBUFFERED": "1",
            "CEILING_SINK": self.sink,
            "CEILING_FORWARD": "1" if forward else "0",
        }
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "ceiling_app.py")],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._admin = admin_client(settings)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def progress(self) -> int | None:
        """Events forwarded and acknowledged (the sink's size), or decoded (``/count``)."""
        if self.proc.poll() is not None:
            msg = f"ceiling app exited with {self.proc.returncode}; see {self.log_path}"
            raise RuntimeError(msg)
        if self.forward:
            try:
                return topic_size(self._admin, self.sink, self.settings.topic_partitions)
            except KafkaException:  # a leader still being elected: no reading this time
                return None
        url = f"http://127.0.0.1:{self.settings.web_port}/count"
        try:
            return int(orjson.loads(fetch_text(url))["forwarded"])
        except OSError:
            return None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to its process group, SIGKILL after ``timeout``."""
        self._admin.close()
        stop_group(self.proc, timeout)
        self._log.close()


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a process started with ``start_new_session=True`` and its children, by PID."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def drain(
    progress: Callable[[], int | None],
    total: int,
    *,
    cap_seconds: float,
    meter: CpuMeter,
    consumer: str,
    start_timeout: float = 120.0,
    poll: float = 0.5,
) -> dict[str, Any]:
    """Poll ``progress()`` until it reaches ``total``; the rate from first to last event.

    The clock starts at the first processed event (start-up is not throughput). If the
    backlog is not drained within ``cap_seconds`` the rate over that window is reported and
    the result is marked ``capped`` (the backlog never ran dry, so it is still the sustained
    rate). ``meter`` runs over the same window; ``consumer`` names its process whose CPU per
    event is reported.
    """
    deadline = time.monotonic() + start_timeout
    first_t, first_c = None, 0
    while time.monotonic() < deadline:
        c = progress()
        if c:
            first_t, first_c = time.monotonic(), c
            break
        time.sleep(0.05)
    if first_t is None:
        raise RuntimeError(f"nothing processed within {start_timeout:.0f} s")
    meter.start()
    last_t, last_c = first_t, first_c
    series = [(0.0, first_c)]
    capped = False
    while last_c < total:
        time.sleep(poll)
        c = progress()
        t = time.monotonic()
        if c is None:
            continue
        if c != last_c:
            last_t, last_c = t, c
        series.append((round(t - first_t, 2), c))
        if t - first_t >= cap_seconds:
            capped, last_t = last_c < total, t
            break
    cpu = meter.stop()
    seconds = max(last_t - first_t, 1e-9)
    handled = last_c - first_c
    consumer_cpu = meter.cpu_seconds(consumer)
    return {
        "processed": last_c,
        "counted_from": first_c,
        "seconds": seconds,
        "rate": handled / seconds,
        "steady_rate": steady_rate(series),
        "capped": capped,
        "cpu_percent": cpu,
        "cpu_ms_per_event": 1000 * consumer_cpu / handled if consumer_cpu and handled else None,
        "series": series[:: max(1, len(series) // 200)],
        "window_mono": (first_t, last_t),
    }


def steady_rate(series: list[tuple[float, int]]) -> float | None:
    """The rate after the first 20 % of a drain (start-up transients excluded).

    >>> steady_rate([(float(t), 100 * t * t) for t in range(12)])
    1400.0
    """
    if len(series) <= 10:
        return None
    t20 = series[-1][0] * 0.2
    s0 = next(s for s in series if s[0] >= t20)
    s1 = series[-1]
    return (s1[1] - s0[1]) / (s1[0] - s0[0]) if s1[0] > s0[0] else None


def handled_and_lists(worker: WorkerProcess) -> tuple[int, int]:
    """(events handled, lists published) from the worker's ``/metrics``."""
    text = fetch_text(worker.url("/metrics"))
    events = prom_sum(text, "recloop_events_total")
    return int(events), int(prom_sum(text, "recloop_lists_published_total"))


def wait_handled(worker: WorkerProcess, total: int, timeout: float) -> int:
    """Wait until the worker handled ``total`` events, then until its published-list count
    stops moving for 2 s (the deferred refreshes of the last events); the lists published.
    """
    deadline = time.monotonic() + timeout
    done, lists = handled_and_lists(worker)
    last_report = time.monotonic()
    while done < total and time.monotonic() < deadline:
        time.sleep(0.5)
        done, lists = handled_and_lists(worker)
        if time.monotonic() - last_report > 15:
            log(f"  {done:,}/{total:,} events handled")
            last_report = time.monotonic()
    if done < total:
        msg = f"worker handled {done:,}/{total:,} events in {timeout:.0f} s; see {worker.log_path}"
        raise RuntimeError(msg)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < 2.0:
        time.sleep(0.5)
        _, now_lists = handled_and_lists(worker)
        if now_lists != lists:
            lists, stable_since = now_lists, time.monotonic()
    return lists
