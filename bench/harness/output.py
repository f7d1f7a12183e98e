"""What a benchmark prints: progress on stderr, plain-text tables and verdicts on stdout."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any


def log(message: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: thousands separators for numbers, ``-`` for missing.

    >>> fmt(1234.567), fmt(1234), fmt(None), fmt(float("nan")), fmt(True), fmt(0.1234, 3)
    ('1,234.6', '1,234', '-', '-', 'yes', '0.123')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned.

    >>> print(table(["what", "n"], [["a", 1], ["bb", 1000]]))
    what      n
    ----  -----
    a         1
    bb    1,000
    """
    cells = [[str(h) for h in headers]] + [
        [c if isinstance(c, str) else fmt(c) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [title, ""] if title else []
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def verdict(ok: bool | None) -> str:
    """``PASS``, ``MISS`` or ``?`` (not measured)."""
    return "?" if ok is None else "PASS" if ok else "MISS"
