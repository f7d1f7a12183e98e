"""Plot benchmark results: one PNG beside each JSON in bench/results/.

    .venv/bin/python bench/plot.py                 # every bench/results/*.json
    .venv/bin/python bench/plot.py bench/results/freshness.json

What each picture shows (the JSON stays the record; the picture is for reading it):

* **freshness**: p50 and p99 event-to-list latency per 10 s window against the 1 s goal,
  and the consumer backlog over time (a rising line is a worker falling behind);
* **throughput**: events/s of the recloop worker, the bare-Faust ceiling (and decode-only)
  against the goal, and each pass's processed count over time (the slope is the rate);
* **quality**: HR@10, NDCG@10, coverage of the model and the baselines (and the sweep's
  variants) as a table;
* **declared**: HR@10 by event index of a new user, per declaration group;
* **experiment**: each metric's lift of the treatment with its user-level 95 % interval,
  and the interval the action-level formula would give;
* **experiment_aa**: per metric, the share of A/A replicates whose 95 % interval covers
  zero, user-level and action-level, against the 95 % they should reach;
* **scale**: model memory, learn step, list p99 and index refresh against catalogue size,
  per variant (before/after), at the largest checkpoint (log scale: the gaps are 10-200x);
* **withdraw**: per run, p50 / p95 / p99 seconds until a withdrawn item left every list,
  against the 2 s goal;
* **new_items**: per ground-truth metric, each seed's lift of the new-item slot with its
  user-level 95 % interval (symlog axis: exposure lifts are several hundred per cent);
* anything else: its headline numbers as a table.

matplotlib is a dev dependency (``pip install -e '.[dev]'``); the Agg backend needs no display.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import orjson  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `harness` beside this file
from harness import figures  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_P99_MS = 1000.0


def _runs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a result (one for results written before benches repeated runs)."""
    return list(doc.get("runs") or [doc])


def _freshness(doc: dict[str, Any]) -> Figure:
    fig, (lat, worker, backlog) = plt.subplots(3, 1, figsize=(9, 10), constrained_layout=True)
    runs = _runs(doc)
    goal = (doc.get("goal") or {}).get("p99_ms_below", GOAL_P99_MS)
    for i, run in enumerate(runs):
        windows = [w for w in run["latency_by_window"] if "p99" in w]
        starts = [w["from_s"] for w in windows]
        label = f"run {i + 1}: " if len(runs) > 1 else ""
        lat.plot(
            starts, [w["p99"] for w in windows], marker="o", color=f"C{i}", label=f"{label}p99"
        )
        lat.plot(starts, [w["p50"] for w in windows], ls="--", color=f"C{i}", label=f"{label}p50")
        lags = [(w["from_s"], w.get("loop_lag_max_ms")) for w in run["latency_by_window"]]
        lags = [(t, v) for t, v in lags if v is not None]
        if lags:
            worker.plot(
                *zip(*lags, strict=True), marker=".", color=f"C{i}", label=f"{label}loop lag max"
            )
        commits = [(w["from_s"], w.get("stage_commit_mean_ms")) for w in run["latency_by_window"]]
        commits = [(t, v) for t, v in commits if v is not None]
        if commits:
            worker.plot(
                *zip(*commits, strict=True), ls=":", color=f"C{i}", label=f"{label}commit stage"
            )
        samples = run.get("backlog", {}).get("samples") or []
        backlog.plot([t for t, _ in samples], [v for _, v in samples], color=f"C{i}")
    lat.axhline(goal, color="red", linestyle="--", label=f"goal: p99 < {goal / 1000:g} s")
    lat.set(xlabel="window start (s)", ylabel="event to list (ms)", yscale="log")
    config = doc["config"]
    lat.set_title(f"freshness at {config['rate']:,} events/s, {config['workers']} worker(s)")
    lat.legend(fontsize=7, ncol=2)
    worker.set(xlabel="window start (s)", ylabel="ms", yscale="log")
    worker.set_title("worker: event-loop lag (max) and batch commit stage (mean) per window")
    if worker.lines:
        worker.legend(fontsize=7, ncol=2)
    backlog.set(xlabel="time (s)", ylabel="consumer backlog (events)", title="committed lag")
    return fig


def _throughput(doc: dict[str, Any]) -> Figure:
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    runs = _runs(doc)
    kinds = {
        "recloop worker": "worker",
        "Faust ceiling": "ceiling",
        "Faust decode only": "decode_only",
    }

    def passes(run: dict[str, Any], key: str) -> dict[str, Any]:
        old = "ceiling_decode_only" if key == "decode_only" else key  # single-run results
        return run.get(key) or run.get(old) or {}

    rates = {}
    for name, key in kinds.items():
        values = [passes(r, key)["rate"] for r in runs if passes(r, key)]
        if values:
            rates[name] = values
    names = list(rates)
    medians = [statistics.median(v) for v in rates.values()]
    low = [m - min(v) for m, v in zip(medians, rates.values(), strict=True)]
    high = [max(v) - m for m, v in zip(medians, rates.values(), strict=True)]
    bars.bar(names, medians, yerr=[low, high], capsize=6, color=["C0", "C1", "C2"][: len(names)])
    bars.axhline(doc["goal"]["rate"], color="red", linestyle="--", label="goal")
    bars.set(ylabel="events/s (one process)", title=f"median of {len(runs)} run(s), min-max")
    bars.legend()
    for i, run in enumerate(runs):
        for k, (name, key) in enumerate(kinds.items()):
            series = passes(run, key).get("series") or []
            if series:
                t0, c0 = series[0][0], series[0][1]
                lines.plot(
                    [s[0] - t0 for s in series],
                    [s[1] - c0 for s in series],
                    color=f"C{k}",
                    alpha=1.0 if i == 0 else 0.5,
                    label=name if i == 0 else None,
                )
    lines.set(xlabel="seconds", ylabel="events processed", title="drain of the backlog")
    lines.legend()
    return fig


def _declared(doc: dict[str, Any]) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    for group, rates in doc["per_event"].items():
        overall = doc["hit_rate"][group]
        ax.plot(range(1, len(rates) + 1), rates, marker="o", label=f"{group} ({overall:.3f})")
    ax.axvline(doc["recovered_at_event"], color="gray", linestyle=":", label="wrong recovers")
    ax.set(xlabel="event index of a new user", ylabel="HR@10 of that choice", ylim=(0, None))
    ax.set_title(f"declared interests: {doc['users']:,} new users, each in all three groups")
    ax.legend()
    return fig


def _table(title: str, header: list[str], rows: list[list[str]]) -> Figure:
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.28 * (len(rows) + 1)), constrained_layout=True)
    ax.axis("off")
    ax.set_title(title)
    cells = ax.table(cellText=rows, colLabels=header, loc="center", cellLoc="left")
    cells.auto_set_font_size(False)
    cells.set_fontsize(9)
    cells.auto_set_column_width(list(range(len(header))))
    return fig


def _quality(doc: dict[str, Any]) -> Figure:
    k = doc["k"]
    base = doc["most_popular"]["hit_rate"] or 1.0
    entries = [(name, doc[name]) for name in ("model", "most_popular", "recent_popular")]
    entries += [(row["variant"], row.get("model", row)) for row in doc.get("sweep", [])[1:]]
    rows = [
        [name, f"{m['hit_rate']:.4f}", f"{m['ndcg']:.4f}", f"{m['coverage']:.3f}",
         f"{m['hit_rate'] / base:.2f}"]
        for name, m in entries
    ]  # fmt: skip
    header = ["model", f"HR@{k}", f"NDCG@{k}", "coverage", "x most-popular"]
    return _table(
        f"quality: {doc['events']:,} events, {doc['positives']:,} positives", header, rows
    )


def headline(doc: dict[str, Any], prefix: str = "", depth: int = 2) -> list[list[str]]:
    """``[name, value]`` for every number up to ``depth`` levels deep (machine facts aside)."""
    rows = []
    for key, value in doc.items():
        if key in {"machine", "benchmark"} or key.startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            rows.append([name, f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"])
        elif isinstance(value, dict) and depth > 1:
            rows.extend(headline(value, f"{name}.", depth - 1))
    return rows


def _rank_cost(doc: dict[str, Any]) -> Figure:
    header = [
        "catalogue",
        "items",
        "list us median",
        "list us p99",
        "learn us median",
        "p99",
        "LTR step us median",
    ]
    rows = [
        [r["catalogue"], f"{r['items']:,}", f"{r['list_us_median']:,.0f}",
         f"{r['list_us_p99']:,.0f}", f"{r['learn_us_median']:,.0f}", f"{r['learn_us_p99']:,.0f}",
         f"{r.get('rerank_learn_us_median', 0):,.0f}"]
        for r in doc["results"]
    ]  # fmt: skip
    return _table("ranking cost (bench/rank_cost.py)", header, rows)


def _generic(doc: dict[str, Any]) -> Figure:
    return _table(doc.get("benchmark", "result"), ["value", ""], headline(doc)[:40])


PLOTS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "freshness": _freshness,
    "throughput": _throughput,
    "quality": _quality,
    "declared": _declared,
    "scale": figures.scale,
    "experiment": figures.experiment,
    "experiment_aa": figures.experiment_aa,
    "withdraw": figures.withdraw,
    "new_items": figures.new_items,
    "snapshot": figures.snapshot,
    "rank_cost": _rank_cost,
}


def plot(path: Path) -> Path:
    """Write ``<result>.png`` beside ``path`` and return its path."""
    doc = orjson.loads(path.read_bytes())
    fig = _figure(str(doc.get("benchmark", "")))(doc)
    fig.text(0.99, 0.005, f"{path.name} · {_when(doc)}", ha="right", fontsize=7, color="gray")
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _figure(benchmark: str) -> Callable[[dict[str, Any]], Figure]:
    """The figure of ``benchmark`` or of the one it is a named run of (``scale_1m``: scale)."""
    if benchmark in PLOTS:
        return PLOTS[benchmark]
    runs_of = [name for name in PLOTS if benchmark.startswith(f"{name}_")]
    return PLOTS[max(runs_of, key=len)] if runs_of else _generic


def _when(doc: dict[str, Any]) -> str:
    machine = doc.get("machine") or {}
    when = machine.get("timestamp") or doc.get("timestamp") or ""
    if isinstance(when, int | float):  # some benches record epoch seconds
        when = dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")
    return str(when)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="*", type=Path, help="JSON files (default: all)")
    paths = parser.parse_args(argv).results or sorted(RESULTS.glob("*.json"))
    for path in paths:
        print(f"wrote {plot(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
