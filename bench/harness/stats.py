"""Percentiles, summaries, and the median and range of a figure over repeated runs.

A shared 2-core machine drifts 10-25 % between runs, so a figure is reported as the median
of several runs with its min-max, never as one run's value (:func:`spread`, :func:`figures`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation; NaN for no values.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    >>> percentile([], 99)
    nan
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo))


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p95, p99, max and mean of ``values``.

    >>> summary([1.0, 2.0, 3.0])["p50"]
    2.0
    """
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def spread(values: Iterable[Any]) -> dict[str, float | int | None]:
    """Median, min, max and count of the numbers among ``values`` (``None``/NaN skipped).

    >>> spread([3.0, 1.0, None, 2.0])
    {'median': 2.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    >>> spread([None])
    {'median': None, 'min': None, 'max': None, 'n': 0}
    """
    numbers = [n for n in (_number(v) for v in values) if n is not None]
    if not numbers:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": statistics.median(numbers),
        "min": min(numbers),
        "max": max(numbers),
        "n": len(numbers),
    }


def dig(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of nested dicts, ``None`` when a step is missing.

    >>> dig({"a": {"b": 2}}, "a.b"), dig({"a": {}}, "a.b.c")
    (2, None)
    """
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def figures(runs: Sequence[Mapping[str, Any]], paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{path: spread of that figure over the runs, plus the runs' values}``.

    >>> figures([{"rate": 10}, {"rate": 30}, {"rate": 20}], ["rate"])["rate"]["median"]
    20.0
    """
    out = {}
    for path in paths:
        values = [dig(run, path) for run in runs]
        out[path] = {**spread(values), "runs": values}
    return out


def median_run(runs: Sequence[Mapping[str, Any]], path: str) -> int:
    """Index of the run whose figure at ``path`` is the median (the lower one for an even
    count): the run whose details (windows, series) stand for all of them.

    >>> median_run([{"p99": 900}, {"p99": 300}, {"p99": 500}], "p99")
    2
    """
    ranked = sorted(
        (i for i in range(len(runs)) if _number(dig(runs[i], path)) is not None),
        key=lambda i: float(dig(runs[i], path)),
    )
    if not ranked:
        return 0
    return ranked[(len(ranked) - 1) // 2]


def ratio(numerator: Any, denominator: Any) -> float | None:
    """``numerator / denominator``, ``None`` when either is missing or the denominator is 0.

    >>> ratio(1, 4), ratio(1, 0), ratio(None, 2)
    (0.25, None, None)
    """
    a, b = _number(numerator), _number(denominator)
    return a / b if a is not None and b else None
