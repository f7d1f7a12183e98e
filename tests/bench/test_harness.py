"""The harness's pure parts: metrics parsing and windows, run statistics, tables, results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import prom, results
from harness.processes import steady_rate
from harness.runs import figures_table, summarise
from harness.stats import figures, median_run, percentile, ratio, spread

from pipeline.worker.metrics import WorkerMetrics


def _worker_text(events: int, lists: int, lag: float, commit_s: float, backlog: float) -> str:
    """A real worker's /metrics text (the series the freshness bench reads)."""
    m = WorkerMetrics()
    m.events.labels(type="click", outcome="applied").inc(events)
    m.lists.labels(trigger="event").inc(lists)
    m.batch_seconds.observe(0.05)
    m.batch_size.observe(events)
    m.stage_seconds.labels(stage="prepare").observe(0.01)
    m.stage_seconds.labels(stage="commit").observe(commit_s)
    m.loop_lag.observe(lag)
    m.loop_lag_max.set(lag)
    m.backlog_seconds.set(backlog)
    return m.render().decode()


def test_figures_read_the_workers_own_series() -> None:
    """Renaming a series the benches read fails here, not after a 10-minute run."""
    f = prom.figures(
        [_worker_text(300, 120, 0.2, 0.04, 1.5), _worker_text(100, 30, 0.6, 0.02, 0.5)]
    )
    assert f["events"] == 400 and f["lists"] == 150
    assert f["batches"] == 2 and f["batch_events"] == 400
    assert f["loop_lag_max"] == pytest.approx(0.6)  # gauges: the largest over workers
    assert f["backlog_seconds"] == pytest.approx(1.5)
    assert f["stage_commit_seconds"] == pytest.approx(0.06)
    assert f["stage_commit_count"] == 2 and f["stage_prepare_count"] == 2
    assert f["loop_lag_count"] == 2


def test_prom_sum_filters_by_labels() -> None:
    text = _worker_text(10, 4, 0.1, 0.01, 0.0)
    assert prom.prom_sum(text, "recloop_events_total", outcome="applied") == 10
    assert prom.prom_sum(text, "recloop_events_total", outcome="duplicate") == 0
    assert prom.prom_sum(text, "recloop_lists_published_total", trigger="event") == 4


def _scrape(t: float, events: float, lists: float, lag: float, commit: float, cpu: float) -> Any:
    return (
        t,
        {
            "events": events,
            "lists": lists,
            "loop_lag_max": lag,
            "stage_commit_seconds": commit,
            "stage_commit_count": events / 100,
            "cpu_seconds": cpu,
        },
    )


def test_windows_show_a_stall() -> None:
    """A window where the loop stalls: fewer events, a large loop lag, a busy commit stage."""
    scrapes = [_scrape(0, 0, 0, 0.01, 0, 0)]
    for t in range(1, 31):
        stalled = 10 < t <= 20
        prev = scrapes[-1][1]
        scrapes.append(
            _scrape(
                t,
                prev["events"] + (200 if stalled else 1000),
                prev["lists"] + (20 if stalled else 500),
                2.5 if stalled else 0.02,
                prev["stage_commit_seconds"] + (0.8 if stalled else 0.1),
                prev["cpu_seconds"] + 0.5,
            )
        )
    w = prom.windows(scrapes, 0, 30, 10)
    assert [x["from_s"] for x in w] == [0, 10, 20]
    assert [x["events_per_s"] for x in w] == [1000, 200, 1000]
    assert w[1]["loop_lag_max_ms"] == 2500 and w[0]["loop_lag_max_ms"] == 20
    assert w[1]["lists_per_event"] == pytest.approx(0.1) and w[0]["lists_per_event"] == 0.5
    assert w[1]["stage_commit_busy_share"] == pytest.approx(0.8)
    assert w[1]["stage_commit_mean_ms"] == pytest.approx(400)
    assert w[0]["worker_cpu_percent"] == pytest.approx(50)
    assert w[1]["worker_cpu_ms_per_event"] == pytest.approx(2.5)


def test_windows_skip_gaps_without_scrapes() -> None:
    scrapes = [_scrape(0, 0, 0, 0, 0, 0), _scrape(25, 100, 10, 0, 0, 1)]
    assert [x["from_s"] for x in prom.windows(scrapes, 0, 30, 10)] == [20]


def test_spread_and_figures_over_runs() -> None:
    runs = [{"w": {"rate": 900.0}}, {"w": {"rate": 1100.0}}, {"w": {"rate": None}}, {"w": {}}]
    s = figures(runs, ["w.rate", "missing"])
    assert s["w.rate"] == {"median": 1000.0, "min": 900.0, "max": 1100.0, "n": 2,
                           "runs": [900.0, 1100.0, None, None]}  # fmt: skip
    assert s["missing"]["n"] == 0 and s["missing"]["median"] is None
    assert spread([math.nan, 2, True])["n"] == 1  # NaN and booleans are not figures


def test_median_run_is_the_middle_one() -> None:
    runs = [{"p99": 900.0}, {"p99": 200.0}, {"p99": 500.0}, {"p99": None}]
    assert median_run(runs, "p99") == 2
    assert median_run([{"p99": 1.0}, {"p99": 3.0}], "p99") == 0  # even: the lower


def test_percentile_and_ratio() -> None:
    assert percentile(list(range(101)), 99) == 99
    assert math.isnan(percentile([], 50))
    assert ratio(1, 0) is None and ratio(3, 4) == 0.75


def test_figures_table_shows_median_range_and_runs() -> None:
    specs = [("events/s", "rate", 0), ("absent", "nope", 1)]
    text = figures_table(
        summarise([{"rate": 1000.0}, {"rate": 1200.0}, {"rate": 900.0}], specs), specs
    )
    lines = text.splitlines()
    assert lines[2].split() == ["events/s", "1,000", "900", "-", "1,200", "1,000,", "1,200,", "900"]
    assert lines[3].split() == ["absent", "-", "-", "-,", "-,", "-"]


def test_steady_rate_skips_the_start() -> None:
    series = [(0.0, 0)] + [(float(t), 500 + 1000 * t) for t in range(1, 21)]
    assert steady_rate(series) == 1000
    assert steady_rate(series[:5]) is None


def test_results_carry_the_machine(tmp_path: Path) -> None:
    path = results.write_json(tmp_path / "x.json", {"benchmark": "x", "value": math.pi})
    doc = orjson.loads(path.read_bytes())
    assert list(doc)[:2] == ["benchmark", "machine"]
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["python"]
    assert "faust-streaming" in doc["machine"]["packages"]
    assert len(doc["machine"]["load_average"]) == 3


def test_profile_stages_charge_the_innermost_named_frame(tmp_path: Path) -> None:
    """A batch runs inside Faust's ``Agent._execute_actor``: its own frames, named or not, are
    recloop's time, never Faust's; Faust is charged only where its frames are the deepest."""
    from harness import pyspy

    r = pyspy.REPO_ROOT  # recloop's frames are told by their path under the checkout
    root = "Worker.execute_from_commandline (/v/site-packages/mode/worker.py:1)"
    actor = f"{root};Agent._execute_actor (/v/site-packages/faust/agents/agent.py:2)"
    agent = f"{actor};create_app.<locals>.events_agent ({r}/agents/app.py:3)"
    prepare = f"{agent};BatchProcessor.prepare ({r}/pipeline/worker/processor.py:4)"
    lines = [
        # our code that no stage names: the old fallback charged it to Faust
        f"{prepare};SharedModels.is_new ({r}/pipeline/model/models.py:5) 7",
        # a named stage, with a library below it
        f"{prepare};learn_batch ({r}/pipeline/model/learn.py:6);"
        "unique (/v/site-packages/numpy/lib/x.py:7) 5",
        f"{prepare};SharedModels.apply_all ({r}/pipeline/model/models.py:8) 3",
        # the agent's own wiring, outside any stage
        f"{agent};_raw ({r}/agents/app.py:11) 4",
        # Faust's own per-message work
        f"{agent};Stream.noack_take (/v/site-packages/faust/streams.py:9) 11",
        f"{actor};wait_first (/v/site-packages/mode/utils/futures.py:10) 2",
        # the loop's own C code, and Faust's consumer thread
        f"{root} 6",
        "Thread._bootstrap (/usr/lib/python3.11/threading.py:1);"
        "ServiceThread._start_thread (/v/site-packages/mode/threads.py:2) 1",
    ]
    raw = tmp_path / "p.raw"
    raw.write_text("\n".join(lines) + "\n")
    stages = {name: count for name, count, _ in pyspy.analyze(raw)["by_stage"]}
    assert stages == {
        "Faust stream/agent machinery": 13,
        "other batch logic": 7,
        "learn: features + ranker examples": 5,
        "learn: shared model apply": 3,
        "other recloop code": 4,
        pyspy.EVENT_LOOP: 6,
        pyspy.CONSUMER_THREAD: 1,
    }


def test_worker_facts_carry_the_collectors_pauses() -> None:
    from harness.processes import worker_facts

    m = WorkerMetrics()
    m.gc_pause.labels(generation="0").observe(0.01)
    m.gc_pause.labels(generation="2").observe(0.2)
    m.gc_pause.labels(generation="2").observe(0.1)
    facts = worker_facts(m.render().decode())
    assert facts["gc_pause_seconds"] == pytest.approx(0.31)
    assert facts["gc_full_pause_seconds"] == pytest.approx(0.3)
    assert facts["gc_passes"] == 3


def test_window_figures_time_the_lists_built() -> None:
    """Lists built per event and their mean build time, beside the lists published."""
    zero = {"events": 0.0, "lists": 0.0, "list_builds": 0.0, "list_build_seconds": 0.0}
    ten = {"events": 1000.0, "lists": 150.0, "list_builds": 200.0, "list_build_seconds": 0.3}
    base, end = (0.0, zero), (10.0, ten)
    f = prom.window_figures(base, [end])
    assert f["lists_per_event"] == pytest.approx(0.15)
    assert f["lists_built_per_event"] == pytest.approx(0.2)
    assert f["list_build_mean_ms"] == pytest.approx(1.5)


def test_window_figures_split_latency_at_the_workers_door() -> None:
    """The mean wait before the worker took an event, apart from its time to the list."""
    zero = {"event_wait_count": 0.0, "event_wait_seconds": 0.0, "event_to_list_count": 0.0}
    ten = {"event_wait_count": 400.0, "event_wait_seconds": 100.0, "event_to_list_count": 50.0}
    ten["event_to_list_seconds"] = 15.0
    f = prom.window_figures((0.0, zero), [(10.0, ten)])
    assert f["event_wait_mean_ms"] == pytest.approx(250.0)
    assert f["worker_event_to_list_mean_ms"] == pytest.approx(300.0)
    assert prom.window_figures((0.0, zero), [(10.0, zero)])["event_wait_mean_ms"] is None
