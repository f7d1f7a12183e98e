"""A worker's ``/metrics`` as benchmark data: parsed, scraped over a run, cut into windows.

A stall shows up in the worker's own series before it shows in a latency percentile: the
event loop busy for seconds (``recloop_event_loop_lag_max_seconds``), a batch stage taking
longer (``recloop_batch_stage_seconds{stage}``), the backlog in seconds of work
(``recloop_backlog_seconds``), more or fewer lists per event (coalescing under load).
:class:`MetricsSampler` scrapes every worker once a second with the workers' CPU time;
:func:`windows` turns the scrapes into per-window figures (pure, tested).
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .machine import cpu_seconds

Sample = tuple[str, dict[str, str], float]

# figure -> (series, labels): counters, summed over workers and read as deltas
COUNTERS: dict[str, tuple[str, dict[str, str]]] = {
    "events": ("recloop_events_total", {}),
    "lists": ("recloop_lists_published_total", {}),
    "batches": ("recloop_batch_seconds_count", {}),
    "batch_seconds": ("recloop_batch_seconds_sum", {}),
    "batch_events": ("recloop_batch_size_sum", {}),
    "loop_lag_count": ("recloop_event_loop_lag_seconds_count", {}),
    "loop_lag_seconds": ("recloop_event_loop_lag_seconds_sum", {}),
    "event_to_list_count": ("recloop_event_to_list_seconds_count", {}),
    "event_to_list_seconds": ("recloop_event_to_list_seconds_sum", {}),
    "list_builds": ("recloop_list_build_seconds_count", {}),
    "list_build_seconds": ("recloop_list_build_seconds_sum", {}),
    "event_wait_count": ("recloop_event_wait_seconds_count", {}),
    "event_wait_seconds": ("recloop_event_wait_seconds_sum", {}),
}
# figure -> series: gauges, the largest over workers and over a window
GAUGES: dict[str, str] = {
    "loop_lag_max": "recloop_event_loop_lag_max_seconds",
    "backlog_seconds": "recloop_backlog_seconds",
    "in_flight": "recloop_batches_in_flight",
}
STAGE = "recloop_batch_stage_seconds"


def parse(text: str) -> list[Sample]:
    """``(name, labels, value)`` of every sample of a Prometheus text exposition.

    >>> parse('# HELP x\\nx_total{a="1",b="two"} 3.0\\ny 4')
    [('x_total', {'a': '1', 'b': 'two'}, 3.0), ('y', {}, 4.0)]
    """
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = {}
        for part in rest.rstrip("}").split(","):
            if "=" in part:
                key, _, val = part.partition("=")
                labels[key.strip()] = val.strip().strip('"')
        with contextlib.suppress(ValueError):
            out.append((name, labels, float(value)))
    return out


def prom_sum(text: str | Sequence[Sample], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``.

    >>> prom_sum('e_total{outcome="applied"} 3\\ne_total{outcome="duplicate"} 1', "e_total")
    4.0
    >>> prom_sum('e_total{outcome="applied"} 3', "e_total", outcome="duplicate")
    0.0
    """
    samples = parse(text) if isinstance(text, str) else text
    chosen = (v for n, have, v in samples if n == name and labels.items() <= have.items())
    return float(sum(chosen))


def fetch_text(url: str, timeout: float = 2.0) -> str:
    """GET a page (a worker's ``/metrics``) as text."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback)
        return str(resp.read().decode())


def figures(texts: Iterable[str]) -> dict[str, float]:
    """Counters summed and gauges maxed over the workers' ``/metrics`` texts.

    Batch stage times become ``stage_<label>_seconds`` and ``stage_<label>_count``.

    >>> f = figures(['recloop_events_total{type="click"} 5\\nrecloop_backlog_seconds 0.5',
    ...              'recloop_events_total{type="click"} 7\\nrecloop_backlog_seconds 2.0'])
    >>> f["events"], f["backlog_seconds"]
    (12.0, 2.0)
    """
    out: dict[str, float] = {}
    for text in texts:
        samples = parse(text)
        for figure, (name, labels) in COUNTERS.items():
            out[figure] = out.get(figure, 0.0) + prom_sum(samples, name, **labels)
        for figure, name in GAUGES.items():
            values = [v for n, _, v in samples if n == name]
            if values:
                out[figure] = max(out.get(figure, 0.0), *values)
        for name, labels, value in samples:
            stage = labels.get("stage")
            if stage and name in (f"{STAGE}_sum", f"{STAGE}_count"):
                key = f"stage_{stage}_{'seconds' if name.endswith('_sum') else 'count'}"
                out[key] = out.get(key, 0.0) + value
    return out


class MetricsSampler(threading.Thread):
    """Every ``interval`` s: :func:`figures` of the workers, plus their CPU seconds."""

    def __init__(
        self, urls: Sequence[str], pids: Sequence[int], t0: float, interval: float = 1.0
    ) -> None:
        super().__init__(name="metrics-sampler", daemon=True)
        self.urls, self.pids, self.t0, self.interval = list(urls), list(pids), t0, interval
        self.samples: list[tuple[float, dict[str, float]]] = []  # (s since t0, figures)
        self.failures = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        try:
            texts = [fetch_text(url) for url in self.urls]
            cpu = sum(cpu_seconds(pid) for pid in self.pids)
        except OSError:  # a worker busy for > 2 s or gone: the gap is data too
            self.failures += 1
            return
        self.samples.append((time.monotonic() - self.t0, {**figures(texts), "cpu_seconds": cpu}))

    def run(self) -> None:
        self.sample()
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
        self.sample()


def _delta(a: Mapping[str, float], b: Mapping[str, float], key: str) -> float:
    return b.get(key, 0.0) - a.get(key, 0.0)


def _per(a: float, b: float, scale: float = 1.0) -> float | None:
    return scale * a / b if b else None


def window_figures(
    base: tuple[float, Mapping[str, float]],
    inside: Sequence[tuple[float, Mapping[str, float]]],
) -> dict[str, Any]:
    """Figures between the scrape ``base`` and the last of ``inside`` (scrapes after it)."""
    t0, a = base
    t1, b = inside[-1]
    seconds = t1 - t0
    events = _delta(a, b, "events")
    out: dict[str, Any] = {
        "events_per_s": _per(events, seconds),
        "lists_per_event": _per(_delta(a, b, "lists"), events),
        "lists_built_per_event": _per(_delta(a, b, "list_builds"), events),
        "list_build_mean_ms": _per(
            _delta(a, b, "list_build_seconds"), _delta(a, b, "list_builds"), 1000.0
        ),
        "worker_cpu_percent": _per(_delta(a, b, "cpu_seconds"), seconds, 100.0),
        "worker_cpu_ms_per_event": _per(_delta(a, b, "cpu_seconds"), events, 1000.0),
        "mean_batch_size": _per(_delta(a, b, "batch_events"), _delta(a, b, "batches")),
        "mean_batch_ms": _per(_delta(a, b, "batch_seconds"), _delta(a, b, "batches"), 1000.0),
        "loop_lag_mean_ms": _per(
            _delta(a, b, "loop_lag_seconds"), _delta(a, b, "loop_lag_count"), 1000.0
        ),
        "event_wait_mean_ms": _per(  # record stamped -> taken: before the worker had it
            _delta(a, b, "event_wait_seconds"), _delta(a, b, "event_wait_count"), 1000.0
        ),
        "worker_event_to_list_mean_ms": _per(
            _delta(a, b, "event_to_list_seconds"), _delta(a, b, "event_to_list_count"), 1000.0
        ),
    }
    for gauge in GAUGES:
        values = [f[gauge] for _, f in inside if gauge in f]
        out[f"{gauge}_max"] = max(values) if values else None
    out["loop_lag_max_ms"] = (
        1000 * out.pop("loop_lag_max_max") if out["loop_lag_max_max"] is not None else None
    )
    stages = sorted({k[6:-8] for k in b if k.startswith("stage_") and k.endswith("_seconds")})
    for stage in stages:
        took = _delta(a, b, f"stage_{stage}_seconds")
        out[f"stage_{stage}_mean_ms"] = _per(took, _delta(a, b, f"stage_{stage}_count"), 1000.0)
        out[f"stage_{stage}_busy_share"] = _per(took, seconds)  # seconds of stage per second
    return out


def windows(
    samples: Sequence[tuple[float, Mapping[str, float]]], start: float, end: float, step: float
) -> list[dict[str, Any]]:
    """:func:`window_figures` of each ``step``-second window of ``[start, end)``.

    >>> s = [(t, {"events": 100.0 * t, "lists": 50.0 * t}) for t in range(0, 21)]
    >>> [(w["from_s"], w["events_per_s"], w["lists_per_event"]) for w in windows(s, 0, 20, 10)]
    [(0, 100.0, 0.5), (10, 100.0, 0.5)]
    """
    out = []
    t = start
    while t < end:
        before = [s for s in samples if s[0] <= t]
        inside = [s for s in samples if t < s[0] <= t + step]
        if before and inside:
            out.append({"from_s": t - start, **window_figures(before[-1], inside)})
        t += step
    return out
