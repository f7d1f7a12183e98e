"""The ``cluster`` profile of docker-compose.yml: the pipeline on a 3-master Redis Cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NODES = ("redis-node-1", "redis-node-2", "redis-node-3")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def cluster(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    return {n: s for n, s in services.items() if "cluster" in s.get("profiles", [])}


def test_the_profile_has_three_nodes_an_init_job_workers_and_a_simulator(
    cluster: dict[str, dict[str, Any]],
) -> None:
    assert set(cluster) == {*NODES, "redis-cluster-init", "worker-cluster", "simulator-cluster"}


def test_nodes_run_in_cluster_mode_with_their_own_data(
    compose: dict[str, Any], cluster: dict[str, dict[str, Any]]
) -> None:
    volumes = set()
    for name in NODES:
        node = cluster[name]
        command = node["command"]
        assert node["image"] == "redis:7" and "ports" not in node
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--appendonly") + 1] == "yes"
        (volume,) = node["volumes"]
        volumes.add(volume.split(":")[0])
        assert node["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert volumes == set(NODES) and volumes <= set(compose["volumes"])


def test_init_job_creates_three_masters_once(cluster: dict[str, dict[str, Any]]) -> None:
    init = cluster["redis-cluster-init"]
    script = " ".join(init["command"])
    assert "cluster_state:ok ||" in script  # skipped when the cluster already exists
    assert "--cluster create" in script and "--cluster-replicas 0 --cluster-yes" in script
    assert all(f"getent hosts {n}" in script for n in NODES)
    assert all(init["depends_on"][n]["condition"] == "service_healthy" for n in NODES)


def test_workers_use_a_cluster_client_after_the_cluster_is_created(
    cluster: dict[str, dict[str, Any]],
) -> None:
    for name in ("worker-cluster", "simulator-cluster"):
        service = cluster[name]
        env = service["environment"]
        assert env["RECLOOP_REDIS_URL"] == "redis://redis-node-1:6379/0"
        assert env["RECLOOP_REDIS_CLUSTER"] == "on"
        assert env["RECLOOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
        init = service["depends_on"]["redis-cluster-init"]
        assert init["condition"] == "service_completed_successfully"
        assert "ports" not in service and "container_name" not in service
    assert cluster["worker-cluster"]["command"] == ["recloop", "worker"]
