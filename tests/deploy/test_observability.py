"""Prometheus and Grafana files of the compose `observability` profile, checked by promtool.

``promtool`` (Debian's ``prometheus`` package, installed by ``make setup``) validates the
scrape config and the alert rules, runs the alerts' unit tests, and parses every dashboard
query (put into a rules file of recording rules). The dashboard must be exactly what
``deploy/grafana/build_dashboard.py`` makes of README's PromQL block, and every ``recloop_*``
series a query or alert names must be one the code declares.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pipeline.serve.metrics import ServeMetrics
from pipeline.worker.metrics import WorkerMetrics
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
README = (ROOT / "README.md").read_text()


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make setup` (apt-get install prometheus)"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _builder() -> ModuleType:
    return load_script(GRAFANA / "build_dashboard.py")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "recloop.json").read_text())


def test_scrape_config_is_valid_and_finds_every_worker_and_serve() -> None:
    done = _promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job, service, port in (
        ("recloop-worker", "worker", 6066),
        ("recloop-serve", "serve", 8000),
    ):
        (discovery,) = jobs[job]["dns_sd_configs"]  # every replica of the compose service
        assert discovery == {**discovery, "names": [service], "type": "A", "port": port}


def test_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    tests = (PROMETHEUS / "alerts.test.yml").read_text()
    for rule in alerts["groups"][0]["rules"]:  # every alert has a firing case
        assert f"alertname: {rule['alert']}" in tests, rule["alert"]


def test_dashboard_is_built_from_readme(dashboard: dict[str, Any]) -> None:
    builder = _builder()
    assert (GRAFANA / "dashboards" / "recloop.json").read_text() == builder.render(README), (
        "run `python deploy/grafana/build_dashboard.py`"
    )
    panels = builder.readme_panels(README)
    assert [p["targets"][0]["expr"] for p in dashboard["panels"]] == [e for _, e in panels]
    assert len(panels) >= 10


def test_every_dashboard_query_parses(dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"recloop:panel_{p['id']}", "expr": target["expr"]}
                    for p in dashboard["panels"]
                    for target in p["targets"]
                ],
            }
        ]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    done = _promtool("check", "rules", "panels.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in done.stdout


def test_dashboard_structure_and_datasource(dashboard: dict[str, Any]) -> None:
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "recloop.yml").read_text()
    )["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"  # compose's mount
    assert dashboard["uid"] == "recloop" and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            assert target["expr"].strip() and target["refId"]
        grid = panel["gridPos"]
        cell = (grid["x"], grid["y"])
        assert cell not in cells and grid["x"] + grid["w"] <= 24
        cells.add(cell)


def _declared_series() -> set[str]:
    registries = (WorkerMetrics().registry, ServeMetrics().registry)
    return {metric.name for registry in registries for metric in registry.collect()}


def test_queries_and_alerts_name_only_declared_series(dashboard: dict[str, Any]) -> None:
    texts = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    texts.append((PROMETHEUS / "alerts.yml").read_text())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for text in texts
        for name in re.findall(r"\brecloop_[a-z_]+", text)
    }
    declared = _declared_series()
    assert used <= declared, sorted(used - declared)
