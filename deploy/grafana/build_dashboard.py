"""Build ``dashboards/recloop.json`` from README's PromQL block: one panel per line.

README "Metrics and health" lists the queries an operator needs, each with a short comment;
that block is the single source of the dashboard, so the two cannot drift apart
(``tests/deploy/test_observability.py`` rebuilds the dashboard and compares, and has promtool
parse every expression). Run ``python deploy/grafana/build_dashboard.py`` after editing the
block.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = Path(__file__).resolve().parent / "dashboards" / "recloop.json"
DATASOURCE = {"type": "prometheus", "uid": "recloop-prometheus"}
_BLOCK = re.compile(r"```promql\n(.*?)```", re.DOTALL)


def readme_panels(readme: str) -> list[tuple[str, str]]:
    """``(title, expression)`` for each line of the first PromQL block of ``readme``."""
    found = _BLOCK.search(readme)
    if found is None:
        msg = "README has no ```promql block"
        raise ValueError(msg)
    panels = []
    for line in found.group(1).splitlines():
        expr, _, title = line.partition("#")
        if expr.strip():
            panels.append((title.strip() or expr.strip(), expr.strip()))
    return panels


def _unit(title: str, expr: str) -> str:
    if expr.startswith("histogram_quantile"):
        return "s"
    if "rate(" in expr:
        return "reqps" if "requests" in expr else "ops"
    return "short"


def _legend(expr: str) -> str:
    """``{{label}}`` per label of the outermost ``by (...)``, for readable series names."""
    by = re.search(r"by \(([^)]*)\)", expr)
    labels = [name.strip() for name in by.group(1).split(",") if name.strip() != "le"] if by else []
    return " ".join(f"{{{{{name}}}}}" for name in labels) or "__auto"


def panel(number: int, title: str, expr: str) -> dict[str, Any]:
    """One Grafana panel: a stat for a single number, a time series otherwise."""
    kind = "stat" if expr.startswith("count(") else "timeseries"
    return {
        "id": number + 1,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": (number % 2) * 12, "y": (number // 2) * 8},
        "fieldConfig": {"defaults": {"unit": _unit(title, expr)}, "overrides": []},
        "targets": [
            {"refId": "A", "datasource": DATASOURCE, "expr": expr, "legendFormat": _legend(expr)}
        ],
    }


def dashboard(readme: str) -> dict[str, Any]:
    """The whole dashboard document (Grafana's JSON model, provisioned from a file)."""
    return {
        "uid": "recloop",
        "title": "recloop",
        "tags": ["recloop"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "panels": [panel(n, title, expr) for n, (title, expr) in enumerate(readme_panels(readme))],
    }


def render(readme: str) -> str:
    """The file's text: stable key order and indentation, so a rebuild diffs cleanly."""
    return json.dumps(dashboard(readme), indent=2) + "\n"


if __name__ == "__main__":
    DASHBOARD.write_text(render((ROOT / "README.md").read_text()))
    sys.stdout.write(f"wrote {DASHBOARD.relative_to(ROOT)}\n")
