"""bench/plot.py draws each kind of result; committed results README cites have their PNG."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
PLOT = load_script(ROOT / "bench" / "plot.py", "bench_plot")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _metrics(hit: float) -> dict[str, float]:
    return {"hit_rate": hit, "ndcg": hit / 2, "coverage": 0.5}


SAMPLES: dict[str, dict[str, Any]] = {
    "freshness": {
        "benchmark": "freshness",
        "config": {"rate": 300, "workers": 1},
        "latency_by_window": [
            {"from_s": 10.0 * i, "lists": 100, "p50": 80.0 + i, "p99": 600.0 + 10 * i, "max": 900}
            for i in range(6)
        ],
        "backlog": {"samples": [[0.5 * i, 10 * (i % 4)] for i in range(120)]},
    },
    "throughput": {
        "benchmark": "throughput",
        "worker": {"rate": 1100.0, "series": [[t, 1100 * t] for t in range(0, 60, 2)]},
        "ceiling": {"rate": 4000.0, "series": [[t, 4000 * t] for t in range(0, 20, 2)]},
        "ceiling_decode_only": None,
        "goal": {"rate": 5000},
    },
    "quality": {
        "benchmark": "quality",
        "k": 10,
        "events": 127145,
        "positives": 55375,
        "model": _metrics(0.209),
        "most_popular": _metrics(0.0899),
        "recent_popular": _metrics(0.0658),
        "sweep": [
            {"variant": "default", **_metrics(0.209)},
            {"variant": "no diversity cap", **_metrics(0.2126)},
        ],
    },
    "declared": {
        "benchmark": "declared",
        "users": 3000,
        "hit_rate": {"matching": 0.327, "none": 0.285, "wrong": 0.206},
        "per_event": {
            "matching": [0.48, 0.45, 0.34, 0.31, 0.31],
            "none": [0.35, 0.31, 0.30, 0.26, 0.29],
            "wrong": [0.01, 0.04, 0.25, 0.24, 0.28],
        },
        "recovered_at_event": 4,
    },
    "memory": {
        "benchmark": "memory",
        "machine": {"cores": 2},
        "users": 100000,
        "worker": {"rss_mib": 484.2, "per_user_kb": 3.3},
        "ok": True,
    },
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kind_of_result_becomes_a_png(kind: str, tmp_path: Path) -> None:
    source = tmp_path / f"{kind}.json"
    source.write_bytes(orjson.dumps(SAMPLES[kind]))
    out = PLOT.plot(source)
    assert out == tmp_path / f"{kind}.png"
    width, height = _png_size(out)
    assert width >= 600 and height >= 150
    assert out.stat().st_size > 5_000  # something was drawn


def test_headline_lists_numbers_not_machine_facts() -> None:
    rows = dict(PLOT.headline(SAMPLES["memory"]))
    assert rows == {"users": "100,000", "worker.rss_mib": "484.2", "worker.per_user_kb": "3.3"}


def _cited() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return sorted(set(re.findall(r"bench/results/([a-z0-9_]+)\.json", readme)))


def test_results_readme_cites_are_committed_with_their_plot() -> None:
    cited = _cited()
    assert cited, "README cites no result file"
    for name in cited:
        assert (RESULTS / f"{name}.json").is_file(), f"README cites bench/results/{name}.json"
        assert (RESULTS / f"{name}.png").is_file(), f"run `python bench/plot.py` for {name}"
        doc = orjson.loads((RESULTS / f"{name}.json").read_bytes())
        assert name.startswith(doc["benchmark"]), (name, doc["benchmark"])


def test_a_named_run_is_drawn_with_its_benchmarks_figure() -> None:
    """``scale_1m_quiet`` is a run of ``scale``: the scale figure, not the generic table."""
    assert PLOT._figure("scale_1m_quiet") is PLOT.PLOTS["scale"]
    assert PLOT._figure("freshness_2000") is PLOT.PLOTS["freshness"]
    assert PLOT._figure("scale") is PLOT.PLOTS["scale"]
    assert PLOT._figure("scaled") is PLOT._generic  # a prefix must end at an underscore
