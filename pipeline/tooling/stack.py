"""A local Kafka + Redis stack without Docker: the broker from Maven Central, Redis from the OS.

The demo, the integration tests and the benchmarks need a real broker and a real Redis, and
the machines this project runs on have a JVM, Maven and a package manager but no Docker
engine. So the stack is two plain processes that we start, watch and stop ourselves:

* Kafka: the ``kafka_2.13`` jars fetched once with ``mvn dependency:copy-dependencies`` into
  ``<stack_dir>/kafka/libs-<version>/``, run as a single KRaft node (broker + controller).
* Redis: ``redis-server`` from ``PATH``, with append-only persistence so that
  ``stack down`` / ``stack up`` keeps the demo's state.

The broker's first clean shutdown records an AppCDS archive of the classes it loaded next
to the jars; later starts map it and come up in about half the time.

Everything binds to 127.0.0.1. Each process gets a pid file; :meth:`LocalStack.stop` only
signals a pid from a pid file whose command line still looks like the process we started,
so a recycled pid never kills a stranger.

Examples
--------
Starting a stack takes seconds and real processes, so this is shown, not run here (the
integration tests start one the same way)::

    stack = LocalStack(Path("/tmp/demo-stack"), kafka_port=free_port())
    stack.start()
    assert stack.status().all_up
    stack.stop()
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pipeline.errors import StackError
from pipeline.tooling.probes import HOST, kafka_ready, port_open, redis_ping
from pipeline.tooling.stack_setup import (
    INSTALL_HINT,
    LOG4J2_CONFIG,
    find_java,
    find_redis_server,
    kafka_pom,
    new_cluster_id,
    server_properties,
)

if TYPE_CHECKING:
    from pipeline.config import Settings

__all__ = ["LocalStack", "ServiceStatus", "StackError", "StackStatus"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the stack: ``up`` means our process is alive *and* its port answers."""

    name: str
    endpoint: str
    pid: int | None
    up: bool


@dataclass(frozen=True)
class StackStatus:
    """Both services; ``all_up`` is what ``recloop stack status`` turns into its exit code."""

    kafka: ServiceStatus
    redis: ServiceStatus

    @property
    def all_up(self) -> bool:
        """Whether Kafka and Redis both answer."""
        return self.kafka.up and self.redis.up


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _pid_alive(pid: int, children: dict[int, subprocess.Popen[bytes]] | None = None) -> bool:
    child = (children or {}).get(pid)
    if child is not None:  # our own child: poll() also reaps it, so no zombie lingers
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return result.stdout


class LocalStack:
    """Start, check and stop the local Kafka broker and Redis server.

    Parameters
    ----------
    stack_dir
        Where data, logs and pid files live (``<stack_dir>/kafka``, ``<stack_dir>/redis-<port>``).
    kafka_port, controller_port, redis_port
        Ports on 127.0.0.1. Tests pass :func:`free_ports` so they never touch the demo's.
    kafka_version
        Apache Kafka release fetched from Maven Central.
    jar_cache
        Directory holding ``libs-<version>/`` and the pom; defaults to ``<stack_dir>/kafka``.
        Tests point it at the repository's cache so the 43 MB of jars download once.
    cluster_id
        KRaft cluster id used when formatting new storage; generated when omitted.
    """

    def __init__(
        self,
        stack_dir: Path,
        *,
        kafka_port: int = 9092,
        controller_port: int = 9093,
        redis_port: int = 6379,
        kafka_version: str = "4.1.0",
        jar_cache: Path | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self.stack_dir = Path(stack_dir).resolve()
        self.kafka_port = kafka_port
        self.controller_port = controller_port
        self.redis_port = redis_port
        self.kafka_version = kafka_version
        self.kafka_dir = self.stack_dir / "kafka"
        self.jar_cache = (jar_cache or self.kafka_dir).resolve()
        self.cluster_id = cluster_id
        self.redis_dir = self.stack_dir / f"redis-{redis_port}"
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        stack_dir: Path | None = None,
        kafka_port: int | None = None,
        controller_port: int | None = None,
        redis_port: int | None = None,
    ) -> LocalStack:
        """Build a stack from the ``RECLOOP_STACK_*`` settings; arguments given win."""
        return cls(
            stack_dir or settings.stack_dir,
            kafka_port=kafka_port or settings.stack_kafka_port,
            controller_port=controller_port or settings.stack_kafka_controller_port,
            redis_port=redis_port or settings.stack_redis_port,
            kafka_version=settings.kafka_version,
        )

    # --- paths and endpoints ------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers string for clients."""
        return f"{HOST}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        """``redis://`` URL of database 0."""
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def libs_dir(self) -> Path:
        """Directory of the broker's jars."""
        return self.jar_cache / f"libs-{self.kafka_version}"

    @property
    def broker_log(self) -> Path:
        """The broker's log4j log (what a start failure quotes)."""
        return self.kafka_dir / "broker.log"

    @property
    def redis_log(self) -> Path:
        """Redis' stdout/stderr, which is also its log."""
        return self.redis_dir / "redis.log"

    def _kafka_pid_file(self) -> Path:
        return self.kafka_dir / f"kafka-{self.kafka_port}.pid"

    def _kafka_props(self) -> Path:
        return self.kafka_dir / f"server-{self.kafka_port}.properties"

    def _redis_pid_file(self) -> Path:
        return self.redis_dir / "redis.pid"

    # --- jars -------------------------------------------------------------------------
    def ensure_kafka_jars(self) -> Path:
        """Fetch the broker jars once with Maven; return their directory.

        Idempotent and safe to run concurrently: a lock file serialises fetches, and a marker
        holding the pom is written only after Maven succeeded, so a half-finished download or
        a changed dependency list is fetched again.
        """
        self._write_log4j_config()
        pom_text = kafka_pom(self.kafka_version)
        marker = self.libs_dir / ".complete"
        if _read(marker) == pom_text:
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            msg = "Maven (`mvn`) is needed to fetch the Kafka jars; install Maven and Java 17+"
            raise StackError(msg)
        self.jar_cache.mkdir(parents=True, exist_ok=True)
        with self._lock(self.jar_cache / ".fetch.lock"):
            if _read(marker) == pom_text:
                return self.libs_dir
            pom = self.jar_cache / f"pom-{self.kafka_version}.xml"
            pom.write_text(pom_text)
            partial = self.jar_cache / f".libs-{self.kafka_version}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            logger.info("fetching kafka jars version=%s dir=%s", self.kafka_version, partial)
            cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies"]
            result = subprocess.run(
                [*cmd, f"-DoutputDirectory={partial}"],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if result.returncode != 0:
                out = (result.stdout + result.stderr)[-3000:]
                msg = f"mvn could not fetch Kafka {self.kafka_version} jars:\n{out}"
                raise StackError(msg)
            shutil.rmtree(self.libs_dir, ignore_errors=True)
            partial.rename(self.libs_dir)
            marker.write_text(pom_text)  # a changed pom (new pins) triggers a new fetch
        return self.libs_dir

    @staticmethod
    @contextlib.contextmanager
    def _lock(path: Path) -> Iterator[None]:
        with path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_log4j_config(self) -> Path:
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        path = self.kafka_dir / "log4j2.properties"
        path.write_text(LOG4J2_CONFIG.format(log=self.broker_log))
        return path

    # --- kafka ------------------------------------------------------------------------
    def start_kafka(self, timeout: float = 90.0) -> bool:
        """Start the broker unless it runs; return whether this call started it.

        Storage is formatted only on first use, so topics and offsets survive a restart.
        Returns once the broker answers a metadata request, or raises :class:`StackError`
        quoting the end of the broker log.
        """
        if self._kafka_pid() is not None:
            return False
        self._refuse_busy_port(self.kafka_port, "kafka", "RECLOOP_STACK_KAFKA_PORT")
        self._refuse_busy_port(
            self.controller_port, "kafka controller", "RECLOOP_STACK_KAFKA_CONTROLLER_PORT"
        )
        java, *jvm_args = self._java_command()
        data_dir = self.kafka_dir / f"data-{self.kafka_port}"
        props = self._kafka_props()
        props.write_text(server_properties(self.kafka_port, self.controller_port, data_dir))
        if not (data_dir / "meta.properties").exists():
            self._format_storage([java, *jvm_args], props, data_dir)
        archive = self._class_archive(java)
        cmd = [java, *self._class_sharing_flags(java), *jvm_args, "kafka.Kafka", str(props)]
        stdout_log = self.kafka_dir / "broker.out"
        pid = self._spawn(cmd, stdout_log, self._kafka_pid_file())
        logger.info("kafka starting pid=%d port=%d", pid, self.kafka_port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid, self._children):
                self._kafka_pid_file().unlink(missing_ok=True)
                if archive.exists():  # a damaged archive crashes the JVM: drop it, retry
                    logger.warning("kafka failed with class archive %s; retrying without", archive)
                    archive.unlink(missing_ok=True)
                    return self.start_kafka(timeout=max(deadline - time.monotonic(), 10.0))
                self._fail("kafka exited during start", self.broker_log, stdout_log)
            if port_open(self.kafka_port) and kafka_ready(self.kafka_bootstrap, timeout=5.0):
                return True
            time.sleep(0.2)
        self._terminate(pid, timeout=15.0)  # leave no half-started broker behind
        self._kafka_pid_file().unlink(missing_ok=True)
        self._fail(f"kafka did not answer within {timeout:.0f} s", self.broker_log, stdout_log)

    def _java_command(self) -> list[str]:
        """``java``, JVM options and class path shared by the broker and the storage tool."""
        libs = self.ensure_kafka_jars()
        log4j = self._write_log4j_config()
        return [
            find_java(),
            "-Xms256m",
            "-Xmx1g",
            f"-Dlog4j2.configurationFile={log4j}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{libs}/*",
        ]

    def _format_storage(self, java_command: list[str], props: Path, data_dir: Path) -> None:
        cluster_id = self.cluster_id or new_cluster_id()
        java, *jvm_args = java_command
        # a short-lived tool: C1-only JIT and serial GC start it ~0.5 s faster
        cmd = [java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", *jvm_args]
        cmd += ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id]
        result = subprocess.run(
            [*cmd, "-c", str(props)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            msg = f"formatting Kafka storage in {data_dir} failed:\n{result.stdout}"
            raise StackError(msg + result.stderr)

    # --- redis ------------------------------------------------------------------------
    def start_redis(self, timeout: float = 30.0) -> bool:
        """Start Redis unless it runs; return whether this call started it.

        Append-only persistence (fsync every second) keeps data across ``stack down``/``up``;
        RDB snapshots are off because they fork a copy of the dataset on a small machine.
        """
        if self._redis_pid() is not None:
            return False
        self._refuse_busy_port(self.redis_port, "redis", "RECLOOP_STACK_REDIS_PORT")
        server = find_redis_server()
        if server is None:
            msg = f"redis-server not found on PATH or in /usr/bin, /usr/sbin; {INSTALL_HINT}"
            raise StackError(msg)
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(server), "--bind", HOST, "--port", str(self.redis_port)]
        cmd += ["--dir", str(self.redis_dir), "--daemonize", "no", "--save", ""]
        cmd += ["--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"]
        pid = self._spawn(cmd, self.redis_log, self._redis_pid_file())
        logger.info("redis starting pid=%d port=%d", pid, self.redis_port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid, self._children):
                self._redis_pid_file().unlink(missing_ok=True)
                self._fail("redis-server exited during start", self.redis_log)
            if redis_ping(self.redis_port):
                return True
            time.sleep(0.05)
        self._terminate(pid, timeout=5.0)
        self._redis_pid_file().unlink(missing_ok=True)
        self._fail(f"redis did not answer PING within {timeout:.0f} s", self.redis_log)

    # --- both -------------------------------------------------------------------------
    def start(self) -> StackStatus:
        """Start Redis and Kafka (each only if not running) and return the status."""
        self.start_redis()
        self.start_kafka()
        return self.status()

    def status(self) -> StackStatus:
        """Which services run: our pid alive and the port answering (TCP / PING)."""
        kafka_pid = self._kafka_pid()
        redis_pid = self._redis_pid()
        return StackStatus(
            kafka=ServiceStatus(
                "kafka",
                self.kafka_bootstrap,
                kafka_pid,
                kafka_pid is not None and port_open(self.kafka_port),
            ),
            redis=ServiceStatus(
                "redis",
                self.redis_url,
                redis_pid,
                redis_pid is not None and redis_ping(self.redis_port),
            ),
        )

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop what we started (SIGTERM, then SIGKILL after ``timeout``); return their names.

        Kafka goes first so it can still flush to disk while Redis is being stopped;
        stale pid files (dead or recycled pids) are removed without signalling anyone.
        """
        stopped = []
        for name, pid_file, pid in (
            ("kafka", self._kafka_pid_file(), self._kafka_pid()),
            ("redis", self._redis_pid_file(), self._redis_pid()),
        ):
            if pid is not None:
                clean = self._terminate(pid, timeout)
                if name == "kafka" and clean:
                    self._promote_class_archive()
                stopped.append(name)
                logger.info("stopped %s pid=%d", name, pid)
            pid_file.unlink(missing_ok=True)
        return stopped

    # --- helpers ----------------------------------------------------------------------
    def _spawn(self, cmd: list[str], log: Path, pid_file: Path) -> int:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            # own session: Ctrl-C in the terminal that ran `stack up` must not stop the stack
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.stack_dir,
            )  # fmt: skip
        self._children[proc.pid] = proc
        pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def _terminate(self, pid: int, timeout: float) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; return whether SIGTERM sufficed."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid, self._children) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid, self._children):
            logger.warning("pid=%d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid, self._children):
                time.sleep(0.05)
            self._children.pop(pid, None)
            return False
        self._children.pop(pid, None)
        return True

    # --- class data sharing -----------------------------------------------------------
    # A JVM start spends most of its time loading the broker's ~10k classes; an AppCDS
    # archive of them (recorded at the end of the first run) cuts `stack up` by ~40 %.
    def _class_archive(self, java: str) -> Path:
        binary = Path(java).resolve()
        # keyed by JVM build (path + mtime) and version: an archive only fits its own JVM
        key = f"{binary}:{binary.stat().st_mtime_ns}:{self.kafka_version}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.jar_cache / f"classes-{self.kafka_version}-{digest}.jsa"

    def _class_sharing_flags(self, java: str) -> list[str]:
        archive = self._class_archive(java)
        if archive.exists():
            return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off"]
        # the first run records the classes it loads, for the next start
        partial = self._partial_archive(java)
        partial.unlink(missing_ok=True)  # left by a broker that did not exit cleanly
        return [f"-XX:ArchiveClassesAtExit={partial}", "-Xlog:cds=off"]

    def _partial_archive(self, java: str) -> Path:
        archive = self._class_archive(java)
        return archive.with_name(f"{archive.name}.{self.kafka_port}.partial")

    def _promote_class_archive(self) -> None:
        """Keep the archive a broker wrote at a clean exit (a killed one may be truncated)."""
        with contextlib.suppress(StackError):
            java = find_java()
            partial = self._partial_archive(java)
            if partial.exists() and partial.stat().st_size > 0:
                os.replace(partial, self._class_archive(java))

    def _kafka_pid(self) -> int | None:
        return self._running_pid(self._kafka_pid_file(), f"kafka.Kafka {self._kafka_props()}")

    def _redis_pid(self) -> int | None:
        # redis-server rewrites its title to "redis-server 127.0.0.1:<port>"
        return self._running_pid(self._redis_pid_file(), "redis-server", f":{self.redis_port}")

    def _running_pid(self, pid_file: Path, *needles: str) -> int | None:
        """The pid in ``pid_file`` if that process lives and its command line is ours."""
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _pid_alive(pid, self._children):
            cmdline = _cmdline(pid)
            if all(needle in cmdline for needle in needles):
                return pid
        return None

    @staticmethod
    def _refuse_busy_port(port: int, what: str, knob: str) -> None:
        if port_open(port):
            msg = (
                f"port {port} for {what} is already in use by a process this stack did not "
                f"start; stop it or choose another port ({knob})"
            )
            raise StackError(msg)

    @staticmethod
    def _fail(reason: str, *logs: Path) -> NoReturn:
        quoted = "\n".join(f"--- last lines of {log} ---\n{_tail(log)}" for log in logs)
        msg = f"{reason}\n{quoted}"
        raise StackError(msg)
