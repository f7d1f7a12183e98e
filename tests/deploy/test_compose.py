"""Structure of docker-compose.yml and the Dockerfile (no Docker engine needed).

The project's machines have no Docker engine, so the compose file is never run in CI; these
checks catch the mistakes that would only show up for a user running it: wrong images or
commands, broken env wiring, a worker that cannot be scaled, KRaft settings that disagree.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _host_ports(service: dict[str, Any]) -> list[str]:
    """Host side (ip:port) of each published port, with ${VAR:-default} resolved."""
    published = []
    for spec in service.get("ports", []):
        spec = re.sub(r"\$\{[A-Z_]+:-(\d+)\}", r"\1", str(spec))
        parts = spec.split(":")
        assert len(parts) == 3, f"publish on an explicit host ip: {spec}"
        published.append(f"{parts[0]}:{parts[1]}")
    return published


def test_services_and_images(services: dict[str, dict[str, Any]]) -> None:
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == {"kafka", "redis", "worker", "simulator"}
    assert services["kafka"]["image"] == "apache/kafka:4.1.0"
    assert services["redis"]["image"] == "redis:7"
    for name in ("worker", "simulator"):
        assert services[name]["build"] == "."


def test_commands(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["worker"]) == ["recloop", "worker"]
    simulate = _command(services["simulator"])
    assert simulate[:2] == ["recloop", "simulate"]
    args = dict(zip(simulate[2::2], simulate[3::2], strict=True))
    assert args == {"--users": "200", "--items": "500", "--rate": "50"}


def test_app_env_points_at_compose_services(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker", "simulator"):
        env = _env(services[name])
        assert env["RECLOOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["RECLOOP_REDIS_URL"] == "redis://redis:6379/0"
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_dependencies_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "redis"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        assert check["retries"] >= 10
    assert "kafka:9092" in " ".join(services["kafka"]["healthcheck"]["test"])


def test_worker_is_scalable(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker", "simulator"):
        service = services[name]
        assert "container_name" not in service
        assert "ports" not in service
        assert "hostname" not in service


def test_no_host_port_conflicts(services: dict[str, dict[str, Any]]) -> None:
    published = [port for s in services.values() for port in _host_ports(s)]
    assert len(published) == len(set(published))
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_kafka_is_a_consistent_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = _env(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node_id = env["KAFKA_NODE_ID"]
    voter_id, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert voter_id == node_id
    # name -> ":port" / name -> protocol
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    protocol_map = env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    protocols = dict(item.split(":") for item in protocol_map.split(","))
    assert set(listeners) == set(protocols)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert voter_address.endswith(listeners[controller])
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert controller not in advertised
    assert set(advertised) <= set(listeners)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # the address the app services use is advertised for in-network clients
    assert "kafka:9092" in advertised.values()
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1"


def test_dockerfile_installs_the_package_and_runs_a_worker() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"pip install \.(\s|$)", text)
    assert 'CMD ["recloop", "worker"]' in text
    for package in ("pipeline", "agents", "schemas"):
        assert f"COPY {package} " in text
