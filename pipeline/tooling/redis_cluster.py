"""A local Redis Cluster without Docker: three masters on loopback, started and stopped here.

The test suite runs the worker, the API and the fault tests against a real cluster (a
cross-slot command, a missing hash tag or a script that was never loaded fails there, not in
production). Like ``LocalStack``'s Redis, each node is a plain ``redis-server`` process:

* ``redis-server --cluster-enabled yes`` on its own port and cluster-bus port (both chosen
  by the caller, so tests use free ports), append-only persistence in its own directory;
* ``redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`` once, which splits
  the 16,384 slots between the masters;
* ``stop_node`` / ``start_node`` restart one master on the same port and data (its
  ``nodes.conf`` and append-only file), which is the "master restarted" fault: it comes back
  with its data but an empty script cache.

Every process is stopped by the PID this object started, never by name.

Examples
--------
Shown, not run (it starts processes)::

    cluster = LocalRedisCluster(Path("/tmp/rc"), ports=free_ports(3), bus_ports=free_ports(3))
    cluster.start()
    client = redis.RedisCluster.from_url(cluster.url)
    cluster.stop()
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import StackError
from pipeline.tooling.probes import HOST, port_open, redis_ping
from pipeline.tooling.stack_setup import INSTALL_HINT, find_redis_server

log = logging.getLogger(__name__)

NODE_TIMEOUT_MS = 3_000
"""How long a silent master takes to be considered failed (and the cluster down)."""


class LocalRedisCluster:
    """Masters on ``ports`` (cluster bus on ``bus_ports``), data under ``directory``."""

    def __init__(self, directory: Path, *, ports: Sequence[int], bus_ports: Sequence[int]):
        if len(ports) != len(bus_ports) or len(ports) < 3:
            msg = "a Redis Cluster needs at least 3 masters, each with a port and a bus port"
            raise ValueError(msg)
        self.directory = Path(directory).resolve()
        self.ports = list(ports)
        self.bus_ports = list(bus_ports)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one node: a cluster client discovers the others."""
        return f"redis://{HOST}:{self.ports[0]}/0"

    def node_dir(self, port: int) -> Path:
        """Data directory of the node on ``port``."""
        return self.directory / f"node-{port}"

    def pid(self, port: int) -> int | None:
        """PID of the running node on ``port`` (None when it is not running)."""
        proc = self._procs.get(port)
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, timeout: float = 60.0) -> LocalRedisCluster:
        """Start every node, create the cluster on first use, wait for ``cluster_state:ok``."""
        for port in self.ports:
            self.start_node(port, wait=False)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait_ping(port, deadline)
        if not (self.node_dir(self.ports[0]) / ".created").exists():
            self._create(deadline)
        self.wait_ok(max(1.0, deadline - time.monotonic()))
        return self

    def start_node(self, port: int, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Start the node on ``port`` (same data as before, if any)."""
        if self.pid(port) is not None:
            return
        if port_open(port):
            msg = f"port {port} is already in use by a process this cluster did not start"
            raise StackError(msg)
        server = find_redis_server()
        if server is None:
            msg = f"redis-server not found on PATH or in /usr/bin, /usr/sbin; {INSTALL_HINT}"
            raise StackError(msg)
        data = self.node_dir(port)
        data.mkdir(parents=True, exist_ok=True)
        bus = self.bus_ports[self.ports.index(port)]
        cmd = [str(server), "--bind", HOST, "--port", str(port), "--dir", str(data)]
        cmd += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        cmd += ["--cluster-port", str(bus), "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
        cmd += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        cmd += ["--daemonize", "no", "--protected-mode", "yes"]
        with (data / "redis.log").open("ab") as out:
            self._procs[port] = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=data,
            )  # fmt: skip
        log.info("redis cluster node starting pid=%d port=%d", self._procs[port].pid, port)
        if wait:
            self._wait_ping(port, time.monotonic() + timeout)

    def stop_node(self, port: int, timeout: float = 10.0) -> None:
        """Stop the node on ``port`` (SIGTERM, then SIGKILL after ``timeout``)."""
        proc = self._procs.pop(port, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.info("redis cluster node stopped pid=%d port=%d", proc.pid, port)

    def stop(self) -> None:
        """Stop every node this object started."""
        for port in list(self._procs):
            self.stop_node(port)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every node reports ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._state_ok(port) for port in self.ports):
                return
            time.sleep(0.2)
        msg = f"redis cluster on ports {self.ports} did not reach cluster_state:ok"
        raise StackError(msg)

    def _state_ok(self, port: int) -> bool:
        cli = self._cli()
        result = subprocess.run(
            [cli, "-h", HOST, "-p", str(port), "cluster", "info"],
            capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
        return "cluster_state:ok" in result.stdout

    def _create(self, deadline: float) -> None:
        cmd = [self._cli(), "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports)]
        result = subprocess.run(
            [*cmd, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            timeout=max(5.0, deadline - time.monotonic()),
        )  # fmt: skip
        if result.returncode != 0:
            msg = f"redis-cli --cluster create failed:\n{result.stdout[-2000:]}{result.stderr}"
            raise StackError(msg)
        (self.node_dir(self.ports[0]) / ".created").write_text("ok\n")

    def _wait_ping(self, port: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            proc = self._procs.get(port)
            if proc is not None and proc.poll() is not None:
                tail = (self.node_dir(port) / "redis.log").read_text(errors="replace")[-2000:]
                msg = f"redis cluster node on port {port} exited during start:\n{tail}"
                raise StackError(msg)
            if redis_ping(port):
                return
            time.sleep(0.05)
        msg = f"redis cluster node on port {port} did not answer PING"
        raise StackError(msg)

    @staticmethod
    def _cli() -> str:
        found = shutil.which("redis-cli")
        if found is None:
            server = find_redis_server()
            candidate = server.parent / "redis-cli" if server is not None else None
            if candidate is not None and os.access(candidate, os.X_OK):
                return str(candidate)
            msg = f"redis-cli not found (it ships with redis-server); {INSTALL_HINT}"
            raise StackError(msg)
        return found

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
