"""Figures of the newer benchmarks (scale, experiment, A/A, withdraw, new items, snapshot).

Each takes a result document and returns a matplotlib figure; ``plot.py`` picks one by the
result's ``benchmark`` and writes the PNG. Kept apart so each file stays short.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def scale(doc: dict[str, Any]) -> Figure:
    panels = [
        ("model RSS (MiB)", lambda c: c["rss_mib"]),
        ("learn step p50 (us CPU)", lambda c: c["learn_cpu_us"]["p50"]),
        ("build_list p99 (ms CPU)", lambda c: c["list_cpu_ms"]["p99"]),
        ("index refresh p50 (ms CPU)", lambda c: c["refresh_cpu_ms"]["p50"]),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 4), constrained_layout=True)
    variants: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for key, run in doc["runs"].items():
        last = max(run["checkpoints"], key=lambda c: c["events"])
        variants.setdefault(key.split("/")[0], []).append((run["items"], last))
    for ax, (title, value) in zip(axes, panels, strict=True):
        for name, points in sorted(variants.items()):
            points.sort(key=lambda p: p[0])
            ax.plot([p[0] for p in points], [value(c) for _, c in points], marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel="items in the catalogue", title=title)
    events = max(c["events"] for run in doc["runs"].values() for c in run["checkpoints"])
    axes[0].legend()
    fig.suptitle(f"scale: model state and costs after {events:,} learned events")
    return fig


def experiment(doc: dict[str, Any]) -> Figure:
    exp = doc["report"][0]
    comparisons = exp["variants"][1]["comparisons"]
    naive = doc.get("action_level", {})
    names = [m for m, c in comparisons.items() if c["lift_low"] is not None]
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.55 * len(names)), constrained_layout=True)
    for y, name in enumerate(names):
        c = comparisons[name]
        lo, hi = 100 * c["lift_low"], 100 * c["lift_high"]
        ax.plot([lo, hi], [y, y], color="C0", linewidth=6, solid_capstyle="butt")
        ax.plot([100 * c["lift"]], [y], "k|", markersize=14)
        if name in naive and naive[name].get("lift_low") is not None:
            a = naive[name]
            ax.plot([100 * a["lift_low"], 100 * a["lift_high"]], [y - 0.25, y - 0.25],
                    color="C1", linewidth=3)  # fmt: skip
    ax.axvline(0, color="gray", linewidth=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("lift of the treatment against control, % (95 % interval)")
    users = ", ".join(f"{k} {v}" for k, v in exp["users"].items())
    ax.set_title(f"{exp['experiment']} ({users} users)\nuser-level intervals (blue); what the "
                 "action-level formula would give (orange)")  # fmt: skip
    return fig


def experiment_aa(doc: dict[str, Any]) -> Figure:
    user, naive = doc["coverage"]["user_level"], doc["coverage"]["action_level"]
    names = list(user)
    fig, ax = plt.subplots(figsize=(10, 4.5), constrained_layout=True)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [100 * user[n]["coverage"] for n in names], 0.4,
           label="user-level (delta method)")  # fmt: skip
    ax.bar([x + 0.2 for x in xs], [100 * naive[n]["coverage"] if n in naive else 0 for n in names],
           0.4, label="action-level")  # fmt: skip
    ax.axhline(95, color="gray", linestyle=":", label="95 % (what a 95 % interval should do)")
    ax.set_xticks(list(xs), names, rotation=20)
    ax.set(ylabel="replicates whose interval covers 0 (%)", ylim=(50, 100))
    n = user[names[-1]]["n"]
    ax.set_title(f"A/A: {len(doc['replicates'])} replicates ({n} intervals in all metrics)")
    ax.legend(loc="lower right")
    return fig


def withdraw(doc: dict[str, Any]) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    runs = doc["runs"]
    xs = range(1, len(runs) + 1)
    for k, q in enumerate(("p50", "p95", "p99")):
        ax.bar([x + (k - 1) * 0.25 for x in xs], [r["seconds"][q] for r in runs], 0.25, label=q)
    ax.axhline(doc["goal_p99_seconds"], color="red", linestyle=":", label="goal (p99)")
    ax.set(xlabel="run", ylabel="seconds until gone from the list", xticks=list(xs))
    ax.set_title(
        f"withdrawn item leaves {doc['users']:,} lists ({doc['workers']} worker(s)): "
        f"median p99 {doc['median_p99_seconds']:.2f} s"
    )
    ax.legend()
    return fig


def new_items(doc: dict[str, Any]) -> Figure:
    """Per ground-truth metric, each seed's lift of the slot with its 95 % interval."""
    runs = doc["runs"]
    names = list(runs[0]["ground_truth"]["metrics"])
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.7 * len(names)), constrained_layout=True)
    for k, run in enumerate(runs):
        offset = (k - (len(runs) - 1) / 2) * 0.2
        for y, name in enumerate(names):
            c = run["ground_truth"]["metrics"][name]
            if c["lift"] is None:
                continue
            lo, hi = 100 * c["lift_low"], 100 * c["lift_high"]
            ax.plot([lo, hi], [y + offset] * 2, color=f"C{k}", linewidth=4,
                    label=f"seed {run['seed']}" if y == 0 else None)  # fmt: skip
            ax.plot([100 * c["lift"]], [y + offset], "k|", markersize=10)
    ax.axvline(0, color="gray", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=20)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("lift of the new-item slot against control, % (user-level 95 % interval)")
    share = doc["config"]["share"]
    ax.set_title(f"new-item slot (share {share}) vs none, closed loop, {len(runs)} seeds")
    ax.legend(loc="lower right")
    return fig


def snapshot(doc: dict[str, Any]) -> Figure:
    panels = [
        ("event loop blocked (s, worst)", ("loop_late_max_s", "warm_loop_late_max_s")),
        ("CPU off the loop (s)", ("build_cpu_s", "warm_build_cpu_s")),
        ("stored (MiB)", ("stored_mib", "stored_mib")),
        ("restore (s)", ("restore_s", "restore_s")),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 4), constrained_layout=True)
    names = list(doc["runs"])
    for ax, (title, (cold, warm)) in zip(axes, panels, strict=True):
        xs = range(len(names))
        shift = 0.2 if cold != warm else 0.0
        ax.bar([x - shift for x in xs], [doc["runs"][n][cold] for n in names], 0.4, label="first")
        if shift:
            ax.bar([x + 0.2 for x in xs], [doc["runs"][n][warm] for n in names], 0.4, label="next")
        ax.set(xticks=list(xs), xticklabels=names, title=title)
    axes[0].set_yscale("log")
    axes[0].legend()
    run = next(iter(doc["runs"].values()))
    fig.suptitle(
        f"model snapshot at {run['items']:,} items after {run['events']:,} events "
        f"({run['pairs']:,} pairs)"
    )
    return fig
