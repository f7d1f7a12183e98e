"""Helpers for tests, benchmarks and the demo: real worker processes and topic readers.

Shipped as library code (not hidden in ``tests/``) because the benchmarks and ``recloop demo``
need exactly the same thing: start ``recloop worker`` processes against given settings, wait
until they are ready, stop them by PID, and read what they published.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.kafka.reader import Record
from pipeline.kafka.reader import TopicReader as KafkaTopicReader

log = logging.getLogger(__name__)


class WorkerProcess:
    """One ``recloop worker`` subprocess, stopped by PID."""

    def __init__(
        self,
        settings: Settings,
        *,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        command: Sequence[str] = (sys.executable, "-m", "agents", "worker"),
        cwd: Path | None = None,
    ):
        """Start the worker.

        ``command`` and ``cwd`` can reproduce how an image runs it: ``recloop worker``
        (behind ``setpriv`` for another user) in a folder it cannot write.
        """
        self.settings = settings
        self.log_path = log_path
        env = {**os.environ, **settings.to_env(), **(extra_env or {})}
        env["PYTHONUNBUFFERED"] = "1"
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [*command, "--loglevel", "info"],
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """PID of the worker."""
        return self.proc.pid

    def url(self, path: str) -> str:
        """URL of one of the worker's web pages."""
        return f"http://{self.settings.web_host}:{self.settings.web_port}{path}"

    def ready(self) -> bool:
        """Whether ``/ready`` answers 200."""
        try:
            with urllib.request.urlopen(self.url("/ready"), timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        """Block until ready; raises with the log tail when the worker died or timed out.

        A worker that is not ready in time is stopped before raising: a caller that fails
        here (``WorkerProcess(...).wait_ready()``) holds no handle to stop it with.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"worker exited with {self.proc.returncode}:\n{self.tail()}"
                raise RuntimeError(msg)
            if self.ready():
                return self
            time.sleep(0.2)
        msg = f"worker not ready within {timeout} s:\n{self.tail()}"
        self.stop()
        raise RuntimeError(msg)

    def metrics(self) -> str:
        """The worker's Prometheus text."""
        with urllib.request.urlopen(self.url("/metrics"), timeout=2) as resp:  # noqa: S310
            return str(resp.read().decode())

    def tail(self, lines: int = 40) -> str:
        """The last lines of the worker's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL (a crash, for fault tests)."""
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def signal(self, sig: int) -> None:
        """Send a signal to the worker's process group (Faust may fork helpers)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass


class TopicReader:
    """Collects a topic from its beginning (no consumer group): for tests and benchmarks."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.reader = KafkaTopicReader(settings, topic, client_id="test-reader")
        self.records: list[Record] = []

    def poll(self, seconds: float = 1.0) -> list[Record]:
        """Read what arrived within ``seconds``; returns the new records."""
        new: list[Record] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            new.extend(self.reader.poll(min(0.2, max(0.01, deadline - time.monotonic()))))
        self.records.extend(new)
        return new

    def until(
        self, predicate: Callable[[list[Record]], bool], timeout: float = 30.0
    ) -> list[Record]:
        """Poll until ``predicate(all records)`` holds; returns all records."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.5)
            if predicate(self.records):
                return self.records
        return self.records

    def values(self) -> list[dict[str, Any]]:
        """Record values decoded as JSON objects (tombstones left out)."""
        return [orjson.loads(r.value) for r in self.records if r.value is not None]

    def close(self) -> None:
        """Close the consumer."""
        self.reader.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
