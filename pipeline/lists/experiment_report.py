"""An experiment's report: user-level metrics per arm and their comparison with control (pure).

Users are what is randomised, so users are what is analysed: every metric is a ratio of
sums over the arm's exposed users (``pipeline.lists.experiment_stats``), with a delta-method
interval for the difference and for the relative lift, and a p-value. The arms' user counts
are checked against the declared shares (sample ratio mismatch, chi-square): a mismatch
means assignment or exposure is broken and no metric of the experiment can be trusted.

The sums come from Redis (``pipeline.stores.experiments``, kept by the worker through
``pipeline.lists.experiment_outcomes``); this turns them into what ``recloop experiments
report`` prints and ``GET /v1/experiments`` serves.

>>> window_label(86_400), window_label(90), window_label(7_200)
('1d', '90s', '2h')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.lists.experiment_outcomes import (
    EXPOSURES,
    MEANS,
    RATIOS,
    VALUES,
    returned_field,
    sq_field,
    xy_field,
)
from pipeline.lists.experiment_stats import Sums, compare, ratio_se, sample_ratio_mismatch
from pipeline.lists.experiments import Experiment

SRM_ALPHA = 0.001
"""A sample-ratio p-value below this flags the experiment (a false alarm in 1,000)."""
METHOD = "user-level: delta method over per-user sums, 95 % intervals"
LEGACY = {"click_through": "vs_control", "completion_rate": "completion_vs_control",
          "skip_rate": "skip_vs_control"}  # fmt: skip
"""Comparison fields of report v1, kept (now user-level) for readers of the first format."""


@dataclass(frozen=True, slots=True)
class ArmTotals:
    """What Redis holds about one arm, summed over partitions."""

    counters: Mapping[str, int]  # the arm hash's fields (values, sq:, xy:, returned:)
    users: int  # users exposed in the arm
    eligible: Mapping[int, int]  # return window (s) -> users first exposed that long ago


def window_label(seconds: int) -> str:
    """A return window as people say it: ``1d``, ``12h``, ``5m``, ``90s``."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def metric_names(windows: Sequence[int]) -> list[str]:
    """Every metric of the report, in the order it is shown."""
    return [*RATIOS, *MEANS, *(f"return_{window_label(w)}" for w in windows)]


def metric_sums(totals: ArmTotals, windows: Sequence[int]) -> dict[str, Sums]:
    """Each metric's sufficient statistics in one arm.

    Exposed users without any action count as ``(0, 0)``: they were randomised too. A
    return rate counts only users first exposed at least its window ago (the others could
    not have come back yet); each is a 0/1 outcome with ``y_u = 1``.
    """
    c, n = totals.counters, float(totals.users)
    out: dict[str, Sums] = {}
    for name, (x, y) in RATIOS.items():
        out[name] = Sums(
            n, c.get(x, 0), c.get(y, 0), c.get(sq_field(x), 0), c.get(sq_field(y), 0),
            c.get(xy_field(x, y), 0),
        )  # fmt: skip
    for name, x in MEANS.items():
        out[name] = Sums(n, c.get(x, 0), n, c.get(sq_field(x), 0), n, c.get(x, 0))
    for w in windows:
        e = float(totals.eligible.get(w, 0))
        r = min(float(c.get(returned_field(w), 0)), e)
        out[f"return_{window_label(w)}"] = Sums(e, r, e, r, e, r)
    return out


def _metric(s: Sums) -> dict[str, Any]:
    se = ratio_se(s)
    return {"value": s.ratio, "se": None if se != se else se, "users": int(s.n),
            "numerator": s.sx, "denominator": s.sy}  # fmt: skip


def report(
    experiments: tuple[Experiment, ...],
    arms: Mapping[tuple[str, str], ArmTotals],
    *,
    windows: Sequence[int],
) -> list[dict[str, Any]]:
    """Per experiment: users per arm and the SRM check; per arm: metrics and comparisons."""
    out = []
    for experiment in experiments:
        totals = {v.name: arms.get((experiment.name, v.name), ArmTotals({}, 0, {}))
                  for v in experiment.variants}  # fmt: skip
        sums = {name: metric_sums(t, windows) for name, t in totals.items()}
        users = {name: t.users for name, t in totals.items()}
        stat, p = sample_ratio_mismatch(
            {k: float(n) for k, n in users.items()}, {v.name: v.share for v in experiment.variants}
        )
        control = experiment.control.name
        rows = []
        for variant in experiment.variants:
            t = totals[variant.name]
            row: dict[str, Any] = {
                "variant": variant.name,
                "share": variant.share,
                "changes": variant.changes,
                "users": t.users,
                EXPOSURES: int(t.counters.get(EXPOSURES, 0)),
                **{name: int(t.counters.get(name, 0)) for name in VALUES},
                "metrics": {m: _metric(s) for m, s in sums[variant.name].items()},
            }
            for m in RATIOS:
                row[m] = row["metrics"][m]["value"]
            if variant.name != control:
                row["comparisons"] = {
                    m: dataclasses.asdict(compare(s, sums[control][m]))
                    for m, s in sums[variant.name].items()
                }
                for m, legacy in LEGACY.items():
                    row[legacy] = row["comparisons"][m]
            rows.append(row)
        out.append({
            "experiment": experiment.name,
            "control": control,
            "attribution_seconds": experiment.attribution_seconds,
            "method": METHOD,
            "return_windows_seconds": list(windows),
            "users": users,
            "srm": {"chi2": stat, "p_value": p, "mismatch": p < SRM_ALPHA, "alpha": SRM_ALPHA},
            "variants": rows,
        })  # fmt: skip
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _value(metric: str, x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if metric in MEANS else _pct(x)


def _ci(low: float | None, high: float | None, *, percent: bool) -> str:
    if low is None or high is None:
        return "[-]"
    if percent:
        return f"[{100 * low:+.1f}%, {100 * high:+.1f}%]"
    return f"[{low:+.4g}, {high:+.4g}]"


def format_report(rows: list[dict[str, Any]]) -> str:
    """The report as text: users and the SRM check, arm values, then each comparison."""
    lines: list[str] = []
    for exp in rows:
        names = list(exp["variants"][0]["metrics"]) if exp["variants"] else []
        srm = exp["srm"]
        lines.append(f"experiment {exp['experiment']} (control: {exp['control']}; {METHOD})")
        shares = ", ".join(f"{v['variant']} {v['users']} ({100 * v['share']:.0f} %)"
                           for v in exp["variants"])  # fmt: skip
        verdict = "SAMPLE RATIO MISMATCH: do not trust this experiment" if srm["mismatch"] else "ok"
        lines.append(
            f"  users per arm: {shares}; chi2 {srm['chi2']:.2f}, p={srm['p_value']:.3g}: {verdict}"
        )
        head = f"  {'variant':<18}{'users':>7}{'lists':>8}{'actions':>9}"
        lines.append(head + "".join(f"{n:>17}" for n in names))
        for r in exp["variants"]:
            cells = "".join(f"{_value(n, r['metrics'][n]['value']):>17}" for n in names)
            lines.append(
                f"  {r['variant']:<18}{r['users']:>7}{r[EXPOSURES]:>8}{r['actions']:>9}{cells}"
            )
        for r in exp["variants"]:
            for name, c in r.get("comparisons", {}).items():
                p = "-" if c["p_value"] is None else f"{c['p_value']:.2g}"
                diff = "-" if c["diff"] is None else f"{c['diff']:+.4g}"
                lift = "-" if c["lift"] is None else f"{100 * c['lift']:+.1f}%"
                lines.append(
                    f"  {r['variant']} vs {exp['control']} {name}: "
                    f"{_value(name, c['treatment'])} vs {_value(name, c['control'])}; "
                    f"diff {diff} {_ci(c['diff_low'], c['diff_high'], percent=False)}, "
                    f"lift {lift} {_ci(c['lift_low'], c['lift_high'], percent=True)}, p={p}"
                )
    return "\n".join(lines) if lines else "no experiments declared"
