"""A run's figures and the printed reports, from synthetic observations (no services)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from freshness_figures import FIGURES, Observed, analyse, report
from harness.machine import CpuMeter
from harness.runs import summarise

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _observed(latency_ms: int, lag_growth: int, rate: float = 1000.0) -> Observed:
    start = 1_000_000
    pairs = [(start + t + latency_ms, start + t) for t in range(0, 60_000, 10)]
    meter = CpuMeter({"worker-0": 1, "bench": 2})
    meter.start_time, meter.stop_time = 0.0, 60.0
    meter.result = {"worker-0": 50.0, "bench": 10.0}
    scrapes = [(float(t), {"events": rate * t, "lists": 0.4 * rate * t, "cpu_seconds": 0.5 * t})
               for t in range(-1, 62)]  # fmt: skip
    return Observed(
        rate=rate,
        duration=60.0,
        phases={
            "measure": {
                "sent": 60_000,
                "seconds": 60.0,
                "start_ms": start,
                "end_ms": start + 60_000,
            }
        },  # fmt: skip
        listener=SimpleNamespace(
            samples=pairs, newest={"u1": start + 59_990}, received=len(pairs), untriggered=0
        ),  # fmt: skip
        sampler=SimpleNamespace(latencies=[latency_ms] * 50, timed_out=0, pending=0),
        lag=SimpleNamespace(samples=[(float(t), 100 + lag_growth * t) for t in range(60)]),
        scrapes=SimpleNamespace(samples=scrapes, failures=0),
        meter=meter,
        handled=(0.0, 60_000.0),
        last_sent={"u1": start + 59_990, "u2": start + 59_995},
        final_metrics=['recloop_lists_published_total{trigger="event"} 24000'],
        drain_s=0.5,
        load={"others_mean": 10.0, "others_max": 30.0},
    )  # type: ignore[arg-type]


def test_a_quick_steady_run_meets_the_goal() -> None:
    r = analyse(_observed(latency_ms=300, lag_growth=0))
    assert r["topic_latency_ms"]["p99"] == 300
    assert r["backlog"]["growing"] is False and r["goal"]["met"] is True
    assert r["worker_throughput"]["worker_cpu_ms_per_event"] == pytest.approx(0.5)
    assert r["worker_metrics"]["lists_per_event"] == pytest.approx(0.4)
    assert [w["from_s"] for w in r["latency_by_window"]] == [0, 10, 20, 30, 40, 50]
    assert r["latency_by_window"][0]["events_per_s"] == pytest.approx(1000)
    assert r["censoring"]["users_last_event_without_list"] == 1  # u2's last event: no list


def test_a_growing_backlog_misses_the_goal() -> None:
    r = analyse(_observed(latency_ms=300, lag_growth=100))
    assert r["backlog"]["growing"] is True and r["goal"]["met"] is False


def _freshness_doc(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "benchmark": "freshness",
        "config": {"workers": 1, "rate": 1000.0, "duration": 60.0, "users": 5000, "items": 2000},
        "summary": summarise(runs, FIGURES),
        "goal": {"p99_ms_below": 1000.0, "runs_met": 2, "met": True},
        "runs": runs,
    }


def test_freshness_report_and_plot(tmp_path: Path) -> None:
    runs = [analyse(_observed(ms, 0)) for ms in (300, 900, 500)]
    doc = _freshness_doc(runs)
    text = report(doc)
    assert "median of 3 run(s)" in text and "run 3 (the median p99)" in text
    assert "PASS (2 of 3 runs)" in text
    path = tmp_path / "freshness_2000.json"
    path.write_bytes(orjson.dumps(doc))
    plot = importlib.import_module("plot")
    assert plot.plot(path).stat().st_size > 5_000


def _pass(rate: float, cpu_ms: float) -> dict[str, Any]:
    return {
        "rate": rate,
        "steady_rate": rate,
        "capped": False,
        "cpu_ms_per_event": cpu_ms,
        "cpu_percent": {"worker": 90.0, "ceiling": 95.0, "kafka": 20.0, "redis": 5.0},
        "machine_load_percent": {"others_mean": 12.0, "others_max": 40.0},
        "rss_mib": 200.0,
        "series": [[t, rate * t] for t in range(10)],
    }


def test_throughput_report_and_plot(tmp_path: Path) -> None:
    throughput = importlib.import_module("throughput")
    runs = [
        {"order": ["worker", "ceiling"], "worker": _pass(w, 0.8), "ceiling": _pass(c, 0.25),
         "ratio": w / c, "cpu_ratio": 0.25 / 0.8}
        for w, c in ((1000.0, 4000.0), (1200.0, 4100.0), (1100.0, 3900.0))
    ]  # fmt: skip
    config = {"runs": 3, "events": 200_000, "items": 2000, "partitions": 8}
    config |= {k: 0 for k in throughput.KNOBS}
    doc = {
        "benchmark": "throughput",
        "config": config,
        "preload": {"distinct_users": 20_000},
        "summary": summarise(runs, throughput.FIGURES),
        "runs": runs,
        "machine_load_percent": {"others_mean": 12.0, "others_max": 40.0},
        "goal": {"rate": 5000.0, "share_of_ceiling": 0.5, "rate_met": False, "share_met": False},
    }
    text = throughput.report(doc)
    assert "worker / ceiling (events/s)" in text and "MISS" in text
    assert doc["summary"]["worker.rate"]["median"] == 1100
    path = tmp_path / "throughput.json"
    path.write_bytes(orjson.dumps(doc))
    plot = importlib.import_module("plot")
    assert plot.plot(path).stat().st_size > 5_000
