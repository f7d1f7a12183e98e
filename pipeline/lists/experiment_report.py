"""An experiment's report: per-arm outcome rates and their lift against control (pure).

The counters come from Redis (``pipeline.stores.experiments``); this turns them into the
report that ``recloop experiments report`` prints and ``GET /v1/experiments`` serves.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.lists.experiments import COUNTERS, Experiment


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def compare(hits_t: int, n_t: int, hits_c: int, n_c: int) -> dict[str, float | None]:
    """Lift of a proportion against control: 95 % CI of the difference and of the lift, p.

    Difference CI: unpooled normal approximation. Lift (``p_t / p_c - 1``) CI: delta method
    on the log ratio. p-value: two-sided pooled two-proportion z-test.
    """
    if not (n_t and n_c):
        return {"diff": None, "diff_low": None, "diff_high": None, "lift": None,
                "lift_low": None, "lift_high": None, "p_value": None}  # fmt: skip
    p_t, p_c = hits_t / n_t, hits_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    pooled = (hits_t + hits_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    z = diff / se0 if se0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    lift = lift_low = lift_high = None
    if hits_t and hits_c:
        log_ratio = math.log(p_t / p_c)
        se_log = math.sqrt((1 - p_t) / hits_t + (1 - p_c) / hits_c)
        lift = p_t / p_c - 1
        lift_low = math.exp(log_ratio - 1.96 * se_log) - 1
        lift_high = math.exp(log_ratio + 1.96 * se_log) - 1
    return {"diff": diff, "diff_low": diff - 1.96 * se, "diff_high": diff + 1.96 * se,
            "lift": lift, "lift_low": lift_low, "lift_high": lift_high,
            "p_value": p_value}  # fmt: skip


def report(
    experiments: tuple[Experiment, ...],
    counters: dict[tuple[str, str], dict[str, int]],
    users: dict[tuple[str, str], int],
) -> list[dict[str, Any]]:
    """Per experiment and variant: exposure, outcomes, click-through lift against control."""
    out = []
    for experiment in experiments:
        control = counters.get((experiment.name, experiment.control.name), {})
        rows = []
        for variant in experiment.variants:
            c = counters.get((experiment.name, variant.name), {})
            row: dict[str, Any] = {
                "variant": variant.name,
                "share": variant.share,
                "changes": variant.changes,
                "users": users.get((experiment.name, variant.name), 0),
                **{name: int(c.get(name, 0)) for name in COUNTERS},
            }
            row["click_through"] = _ratio(row["hits"], row["actions"])
            row["completion_rate"] = _ratio(row["completions"], row["watches"])
            row["skip_rate"] = _ratio(row["skips"], row["hits"])
            if variant is not experiment.control:
                c_get = {k: int(control.get(k, 0)) for k in COUNTERS}
                row["vs_control"] = compare(
                    row["hits"], row["actions"], c_get["hits"], c_get["actions"]
                )
                row["completion_vs_control"] = compare(
                    row["completions"], row["watches"], c_get["completions"], c_get["watches"]
                )
                row["skip_vs_control"] = compare(
                    row["skips"], row["hits"], c_get["skips"], c_get["hits"]
                )
            rows.append(row)
        out.append({"experiment": experiment.name, "control": experiment.control.name,
                    "attribution_seconds": experiment.attribution_seconds,
                    "variants": rows})  # fmt: skip
    return out


def format_report(rows: list[dict[str, Any]]) -> str:
    """The report as text tables."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:6.2f}%"

    lines: list[str] = []
    for exp in rows:
        lines.append(f"experiment {exp['experiment']} (control: {exp['control']})")
        lines.append(
            f"  {'variant':<18}{'users':>7}{'lists':>8}{'actions':>9}{'hits':>7}"
            f"{'CTR':>9}{'complete':>10}{'skip':>9}"
        )
        for r in exp["variants"]:
            lines.append(
                f"  {r['variant']:<18}{r['users']:>7}{r['exposures']:>8}{r['actions']:>9}"
                f"{r['hits']:>7}{pct(r['click_through']):>9}{pct(r['completion_rate']):>10}"
                f"{pct(r['skip_rate']):>9}"
            )
        for r in exp["variants"]:
            for label, key in (
                ("CTR", "vs_control"),
                ("completion", "completion_vs_control"),
                ("skip rate", "skip_vs_control"),
            ):
                vs = r.get(key)
                if vs is None or vs["lift"] is None:
                    continue
                lines.append(
                    f"  {r['variant']} vs {exp['control']}: {label} {100 * vs['lift']:+.1f}% "
                    f"[95% CI {100 * vs['lift_low']:+.1f}%, {100 * vs['lift_high']:+.1f}%], "
                    f"p={vs['p_value']:.2g}"
                )
    return "\n".join(lines) if lines else "no experiments declared"
