"""The experiment report's response body (``GET /v1/experiments``) as pydantic models.

The report is built by ``pipeline.lists.experiment_report`` (the CLI prints the same
document); these models document it in ``/openapi.json``, and the example is a report of
that function, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pipeline.lists.experiment_report import ArmTotals, report
from pipeline.lists.experiments import parse_experiments
from pipeline.serve.models import example


def _example() -> dict[str, Any]:
    declared = parse_experiments({"experiments": [{
        "name": "ranker", "attribution_seconds": 1800, "variants": [
            {"name": "control", "share": 0.5, "changes": {"personalized": False}},
            {"name": "treatment", "share": 0.5, "changes": {}}]}]})  # fmt: skip

    def arm(users: int, actions: int, hits: int, returned: int) -> ArmTotals:
        counters = {
            "exposures": 3 * users, "actions": actions, "hits": hits, "clicks": hits // 2,
            "watches": hits // 2, "completions": hits // 3, "skips": hits // 6,
            "events": actions + users, "sq:actions": 40 * actions, "sq:hits": 30 * hits,
            "sq:watches": 12 * hits, "sq:completions": 8 * hits, "sq:skips": hits,
            "sq:events": 50 * actions, "xy:hits:actions": 34 * hits,
            "xy:completions:watches": 9 * hits, "xy:skips:hits": 4 * hits,
            "returned:86400": returned,
        }  # fmt: skip
        return ArmTotals(counters, users, {86400: users - 10})

    arms = {("ranker", "control"): arm(300, 6000, 3000, 90),
            ("ranker", "treatment"): arm(310, 6300, 3600, 120)}  # fmt: skip
    return {"experiments": report(declared, arms, windows=(86400,))}


_EXAMPLE = _example()
_REPORT = _EXAMPLE["experiments"][0]
_TREATMENT = _REPORT["variants"][1]


class Comparison(BaseModel):
    """A variant against control on one metric: 95 % intervals and a p-value (user-level)."""

    model_config = example(_TREATMENT["comparisons"]["completion_rate"])

    control: float | None
    treatment: float | None
    diff: float | None = Field(description="treatment - control")
    diff_low: float | None
    diff_high: float | None
    lift: float | None = Field(description="treatment / control - 1")
    lift_low: float | None
    lift_high: float | None
    p_value: float | None = Field(description="two-sided, difference against zero")


class Metric(BaseModel):
    """A metric in one arm: sum of numerators over sum of denominators of its users."""

    model_config = example(_TREATMENT["metrics"]["completion_rate"])

    value: float | None
    se: float | None = Field(description="standard error (delta method over users)")
    users: int = Field(description="users it is computed over (eligible ones for a return)")
    numerator: float
    denominator: float


class SampleRatio(BaseModel):
    """Users per arm against the declared shares (chi-square test)."""

    model_config = example(_REPORT["srm"])

    chi2: float
    p_value: float
    mismatch: bool = Field(description="p_value < alpha: assignment or exposure is broken")
    alpha: float


class Variant(BaseModel):
    """One arm: users, counters, metrics and (other than control) comparisons."""

    model_config = example(_TREATMENT)

    variant: str
    share: float
    changes: dict[str, Any]
    users: int = Field(description="users shown a list in the arm (exact)")
    exposures: int = Field(description="lists shown")
    actions: int
    hits: int
    clicks: int
    watches: int
    completions: int
    skips: int
    events: int
    click_through: float | None
    completion_rate: float | None
    skip_rate: float | None
    metrics: dict[str, Metric]
    comparisons: dict[str, Comparison] | None = None
    vs_control: Comparison | None = Field(None, description="comparisons.click_through")
    completion_vs_control: Comparison | None = Field(
        None, description="comparisons.completion_rate"
    )
    skip_vs_control: Comparison | None = Field(None, description="comparisons.skip_rate")


class ExperimentReport(BaseModel):
    """One experiment's report."""

    model_config = example(_REPORT)

    experiment: str
    control: str
    attribution_seconds: float
    method: str
    return_windows_seconds: list[int]
    users: dict[str, int]
    srm: SampleRatio
    variants: list[Variant]


class Experiments(BaseModel):
    """The experiment report (``recloop experiments report``)."""

    model_config = example(_EXAMPLE)

    experiments: list[ExperimentReport]
