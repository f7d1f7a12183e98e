"""What a local stack needs on the machine and on disk: redis-server, java, config files.

Discovery and installation of the two programs, and the texts the broker is started with
(Maven pom, ``server.properties``, log4j2 config). ``pipeline.tooling.stack`` runs the processes.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from pipeline.errors import StackError
from pipeline.tooling.probes import HOST

logger = logging.getLogger(__name__)

LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"  # pinned: Maven's nearest-wins picks 1.7, which ignores log4j2
_REDIS_DIRS = (Path("/usr/bin"), Path("/usr/sbin"), Path("/usr/local/bin"))
INSTALL_HINT = "run `make setup` (as root) or `apt-get install redis-server`"


def find_redis_server() -> Path | None:
    """Locate ``redis-server`` on ``PATH`` or in the usual system directories."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    for directory in _REDIS_DIRS:
        candidate = directory / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_redis_server() -> Path:
    """Return ``redis-server``, installing it with apt-get when missing and we are root.

    ``make setup`` calls this so a fresh machine (or CI) needs nothing installed by hand.
    ``apt-get update`` runs only when apt knows no candidate for the package.
    """
    found = find_redis_server()
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        msg = (
            "redis-server is not installed and cannot be installed automatically "
            "(needs root and apt-get). Install it, e.g. `sudo apt-get install redis-server` "
            "or `brew install redis`, then run `make setup` again."
        )
        raise StackError(msg)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = subprocess.run(
        ["apt-cache", "policy", "redis-server"], capture_output=True, text=True, check=False
    )
    steps = [[apt, "install", "-y", "-q", "--no-install-recommends", "redis-server"]]
    if "Candidate:" not in policy.stdout or "Candidate: (none)" in policy.stdout:
        steps.insert(0, [apt, "update", "-q"])  # package lists missing or stale
    for step in steps:
        logger.info("running %s", " ".join(step))
        if subprocess.run(step, env=env, stdin=subprocess.DEVNULL, check=False).returncode:
            msg = f"`{' '.join(step)}` failed (output above); {INSTALL_HINT}"
            raise StackError(msg)
    found = find_redis_server()
    if found is None:
        msg = f"apt-get installed redis-server but it is not on PATH; {INSTALL_HINT}"
        raise StackError(msg)
    return found


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on ``PATH`` (17 or newer runs the broker)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        msg = "java (17 or newer) is needed to run the Kafka broker; install a JDK/JRE"
        raise StackError(msg)
    return found


def new_cluster_id() -> str:
    """Kafka's Uuid.toString(): 16 random bytes, URL-safe base64 without padding.

    Redrawn when it starts with "-" (1 in 64), as Kafka's own generator does: the storage
    tool would read such an id as an option and fail.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(port: int, controller_port: int, data_dir: Path) -> str:
    """``server.properties`` of a single KRaft node (broker + controller) on loopback."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "8",
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "log.retention.hours": "24",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def kafka_pom(kafka_version: str) -> str:
    """A pom whose dependencies are the broker's jars plus a log4j2 SLF4J binding."""
    deps = [
        ("org.apache.kafka", "kafka_2.13", kafka_version),
        ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ("org.slf4j", "slf4j-api", SLF4J_VERSION),
    ]
    xml = "".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>\n"
        for g, a, v in deps
    )
    return _POM.format(version=kafka_version, dependencies=xml)


_POM = """<?xml version="1.0" encoding="UTF-8"?>
<!-- written by recloop's pipeline/tooling/stack_setup.py: the jars of a local Kafka broker -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.recloop</groupId>
  <artifactId>local-kafka</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}  </dependencies>
</project>
"""

LOG4J2_CONFIG = """# written by recloop (pipeline/tooling/stack_setup.py): broker logs to a file
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.controller.name = kafka.controller
logger.controller.level = WARN
logger.stateChange.name = state.change.logger
logger.stateChange.level = WARN
"""
