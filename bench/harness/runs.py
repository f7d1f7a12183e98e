"""Repeat a measurement and report each figure as the median of the runs with its range.

On a shared 2-core machine one run says little: timings drift 10-25 % from run to run. A
bench runs ``--runs N`` times (3 by default), keeps every run's full result, and reports each
headline figure as median and min-max; figures that only make sense within a run (a ratio
to a ceiling measured in the same run) are computed per run first, then summarised.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .output import fmt, log, table
from .stats import figures

T = TypeVar("T")

Figure = tuple[str, str, int]
"""(label in the table, dotted path in a run's result, digits shown)."""


def add_runs_arg(parser: argparse.ArgumentParser, default: int = 3) -> None:
    """``--runs N``: how many times to measure (the median is reported)."""

    def positive(text: str) -> int:
        n = int(text)
        if n < 1:
            raise argparse.ArgumentTypeError(f"--runs must be >= 1, got {n}")
        return n

    parser.add_argument(
        "--runs",
        type=positive,
        default=default,
        help=f"measure this many times and report medians with min-max (default {default}; "
        "1 for a quick check)",
    )


def repeat(runs: int, measure: Callable[[int], T], what: str = "run") -> list[T]:
    """``[measure(0), ..., measure(runs - 1)]``, logging each run's start."""
    out = []
    for i in range(runs):
        if runs > 1:
            log(f"{what} {i + 1} of {runs}")
        out.append(measure(i))
    return out


def summarise(runs: Sequence[dict[str, Any]], specs: Sequence[Figure]) -> dict[str, Any]:
    """``{path: {median, min, max, n, runs}}`` for every figure of ``specs``."""
    return figures(runs, [path for _, path, _ in specs])


def figures_table(
    summary: dict[str, dict[str, Any]], specs: Sequence[Figure], title: str | None = None
) -> str:
    """One row per figure: median, min-max and each run's value.

    >>> s = summarise([{"r": 1.0}, {"r": 3.0}, {"r": 2.0}], [("rate", "r", 1)])
    >>> print(figures_table(s, [("rate", "r", 1)]))
    figure  median      range           runs
    ------  ------  ---------  -------------
    rate       2.0  1.0 - 3.0  1.0, 3.0, 2.0
    """
    rows = []
    for label, path, digits in specs:
        s = summary[path]
        span = "-" if s["min"] is None else f"{fmt(s['min'], digits)} - {fmt(s['max'], digits)}"
        values = ", ".join(fmt(v, digits) for v in s["runs"])
        rows.append([label, fmt(s["median"], digits), span, values])
    return table(["figure", "median", "range", "runs"], rows, title=title)
