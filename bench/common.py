"""What every benchmark shares: services, settings, Kafka/Redis probes, tables, percentiles, JSON.

A benchmark starts its own Kafka and Redis (:class:`pipeline.tooling.stack.LocalStack` on free
ports in a temporary directory, jars from the repository's ``.recloop/kafka`` cache), unless
``RECLOOP_KAFKA_BOOTSTRAP`` / ``RECLOOP_REDIS_URL`` point at running ones; each service is
chosen on its own, as in ``tests/conftest.py``. Every run gets its own topics, consumer group
and Redis namespace, so runs never see each other's data and nothing is ever flushed.

Results go to ``bench/results/<name>.json`` together with the facts of the machine they were
measured on (cores, CPU model, Python and library versions, commit, UTC timestamp).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.tooling.probes import free_port, free_ports
from pipeline.tooling.stack import LocalStack

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- services
@dataclass
class Services:
    """A Kafka bootstrap and a Redis URL, plus the stack (if any) we started for them."""

    kafka_bootstrap: str
    redis_url: str
    stack: LocalStack | None
    workdir: Path
    started: list[str] = field(default_factory=list)
    load: MachineLoad | None = None
    quiet: dict[str, Any] = field(default_factory=dict)

    def contention(self, start: float, end: float | None = None) -> dict[str, Any]:
        """Other processes' CPU use between two ``time.monotonic()`` values."""
        return self.load.window(start, end) if self.load else {}

    def pids(self) -> dict[str, int]:
        """PIDs of the broker and Redis when this run started them (for CPU accounting)."""
        if self.stack is None:
            return {}
        status = self.stack.status()
        out = {}
        if status.kafka.pid is not None:
            out["kafka"] = status.kafka.pid
        if status.redis.pid is not None:
            out["redis"] = status.redis.pid
        return out


@contextlib.contextmanager
def services(name: str, *, keep: bool = False, wait_quiet: float = 0.0) -> Iterator[Services]:
    """Kafka and Redis for one benchmark run; whatever was started here is stopped on exit.

    First waits up to ``wait_quiet`` seconds for the rest of the machine to be idle, then
    samples other processes' CPU use for the whole run (``Services.contention``). SIGTERM is
    turned into ``KeyboardInterrupt`` so a killed benchmark still stops the broker, Redis and
    its workers (every ``finally`` runs).
    """
    _sigterm_as_interrupt()
    quiet = wait_for_quiet(wait_quiet) if wait_quiet > 0 else {}
    load = MachineLoad()
    load.start()
    workdir = Path(tempfile.mkdtemp(prefix=f"recloop-bench-{name}-"))
    kafka = os.environ.get("RECLOOP_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("RECLOOP_REDIS_URL")
    stack = None
    ok = False
    try:
        if not kafka or not redis_url:
            kafka_port, controller_port, redis_port = free_ports(3)
            stack = LocalStack(
                workdir / "stack",
                kafka_port=kafka_port,
                controller_port=controller_port,
                redis_port=redis_port,
                jar_cache=REPO_ROOT / ".recloop" / "kafka",
                cluster_id=_cluster_id(),
            )
        started = []
        t0 = time.monotonic()
        if not redis_url:
            assert stack is not None
            stack.start_redis()
            redis_url = stack.redis_url
            started.append("redis")
        if not kafka:
            assert stack is not None
            stack.start_kafka()
            kafka = stack.kafka_bootstrap
            started.append("kafka")
        if started:
            log(f"started {'+'.join(started)} in {time.monotonic() - t0:.1f} s ({workdir})")
        yield Services(kafka, redis_url, stack, workdir, started, load, quiet)
        ok = True
    finally:
        load.stop()
        if stack is not None:
            stack.stop()
        if ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs kept in {workdir}")


def _cluster_id() -> str:
    """A KRaft cluster id that cannot start with "-".

    ``kafka-storage format -t <id>`` parses an id starting with "-" as an option and fails;
    a URL-safe base64 id starts with "-" once in 64 (Kafka's own ``Uuid.randomUuid`` redraws
    those).
    """
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


def add_common_args(parser: Any) -> None:
    """Options every benchmark takes."""
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="wait up to this many seconds for other processes to leave the CPU idle (default 60)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temp dir with worker and stack logs"
    )


def bench_settings(svc: Services, name: str, **overrides: Any) -> Settings:
    """Settings with this run's own topics, consumer group, Redis namespace and web port."""
    uid = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka_bootstrap": svc.kafka_bootstrap,
        "redis_url": svc.redis_url,
        "app_id": f"recloop-bench-{name}-{uid}",
        "topic_events": f"bench-{name}-{uid}.events",
        "topic_items": f"bench-{name}-{uid}.items",
        "topic_dlq": f"bench-{name}-{uid}.events.dlq",
        "topic_recommendations": f"bench-{name}-{uid}.recommendations",
        "redis_namespace": f"bench-{name}-{uid}",
        "web_port": free_port(),
        "data_dir": svc.workdir / "data",  # removed with the run's temp dir
    }
    values.update(overrides)
    return Settings(**values)


def with_new_port(settings: Settings) -> Settings:
    """The same settings with another free web port (one per worker process)."""
    return settings.model_copy(update={"web_port": free_port()})


# ----------------------------------------------------------------------------- kafka probes
def admin_client(settings: Settings) -> Any:
    """The broker's view of offsets and groups (``pipeline.kafka.lag``, the one lag module)."""
    from pipeline.kafka.lag import KafkaAdmin

    return KafkaAdmin(settings, client_id="recloop-bench-admin")


def end_offsets(admin: Any, topic: str, partitions: int) -> dict[int, int]:
    """Log-end offset of every partition of ``topic``."""
    ends = admin.offsets([(topic, p) for p in range(partitions)])
    return {p: end for (_, p), end in ends.items()}


def group_lag(admin: Any, group: str, topic: str, partitions: int) -> int:
    """Records on ``topic`` not yet committed by ``group`` (all partitions)."""
    return int(sum(admin.lag(group, [(topic, p) for p in range(partitions)]).values()))


def topic_size(admin: Any, topic: str, partitions: int) -> int:
    """Records in ``topic`` (sum of log-end offsets; the bench topics are never truncated)."""
    return sum(end_offsets(admin, topic, partitions).values())


def fast_produce(settings: Settings, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Send keyed records with recloop's producer client and wait for every ack.

    For pre-loading: large batches (``linger.ms`` 20), acks from all replicas, keys placed
    with Kafka's murmur2 like every other producer (``pipeline.kafka.producer``).
    """
    from pipeline.kafka.producer import kafka_producer

    producer = kafka_producer(
        settings, client_id="recloop-bench-loader", linger_ms=20, delivery_timeout_ms=300_000
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    sent = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:  # local queue full: wait for acknowledgements
                producer.poll(0.05)
        sent += 1
        if sent % 1_000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    if left or failures:
        raise RuntimeError(f"pre-load failed: {left} unacknowledged, errors {failures[:3]}")
    return sent


# ----------------------------------------------------------------------------- worker probes
def prom_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (Prometheus text)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        have = dict(_labels(rest.rstrip("}")))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def _labels(text: str) -> Iterable[tuple[str, str]]:
    for part in text.split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            yield key.strip(), value.strip().strip('"')


def fetch_text(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (VmRSS, VmHWM, ...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    msg = f"{key} not in /proc/{pid}/status"
    raise KeyError(msg)


class CpuMeter:
    """CPU used by a set of processes between ``start()`` and ``stop()``, as % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._t0 = 0.0
        self._c0: dict[str, float] = {}
        self.result: dict[str, float] = {}
        self.start_time = self.stop_time = 0.0

    def start(self) -> CpuMeter:
        self._t0 = self.start_time = time.monotonic()
        self._c0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.stop_time = time.monotonic()
        wall = max(self.stop_time - self._t0, 1e-9)
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                self.result[name] = 100.0 * (cpu_seconds(pid) - self._c0[name]) / wall
        return self.result


def _stat_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all cores), from ``/proc/stat``."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


_PPID: dict[int, int] = {}  # pid -> parent pid, read once per process (a scan per second)


def _descendants(root: int) -> list[int]:
    alive = {int(name) for name in os.listdir("/proc") if name.isdigit()}
    for pid in list(_PPID):
        if pid not in alive:
            del _PPID[pid]
    for pid in alive - _PPID.keys():
        try:
            with open(f"/proc/{pid}/stat") as f:
                _PPID[pid] = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    children: dict[int, list[int]] = {}
    for pid, ppid in _PPID.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class MachineLoad(threading.Thread):
    """Once a second: CPU used by this benchmark (its process tree) and by everything else.

    The machine has few cores and may be shared; a run during which other processes used a
    sizeable share of a core measured a contended machine, and says so in its results.
    """

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(name="machine-load", daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, ours %, others %)
        self._halt = threading.Event()

    def _ours(self) -> dict[int, float]:
        out = {}
        for pid in _descendants(os.getpid()):
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[pid] = cpu_seconds(pid)
        return out

    def run(self) -> None:
        t0, busy0, ours0 = time.monotonic(), _stat_busy(), self._ours()
        while not self._halt.wait(self.interval):
            t1, busy1, ours1 = time.monotonic(), _stat_busy(), self._ours()
            wall = max(t1 - t0, 1e-9)
            ours = sum(c - ours0.get(pid, 0.0) for pid, c in ours1.items())
            total = busy1 - busy0
            self.samples.append((t1, 100 * ours / wall, 100 * max(0.0, total - ours) / wall))
            t0, busy0, ours0 = t1, busy1, ours1

    def window(self, start: float, end: float | None = None) -> dict[str, float | None]:
        """Mean and max CPU % (of one core) of others and ours between two monotonic times."""
        end = end if end is not None else time.monotonic()
        chosen = [s for s in self.samples if start <= s[0] <= end + self.interval]
        if not chosen:
            return {"others_mean": None, "others_max": None, "ours_mean": None}
        return {
            "others_mean": sum(s[2] for s in chosen) / len(chosen),
            "others_max": max(s[2] for s in chosen),
            "ours_mean": sum(s[1] for s in chosen) / len(chosen),
        }

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def wait_for_quiet(max_wait: float, threshold: float = 25.0, window: float = 2.0) -> dict[str, Any]:
    """Wait until the rest of the machine uses < ``threshold`` % of a core (at most ``max_wait`` s).

    Returns what was seen, so results can say whether the run started on a busy machine.
    """
    t0 = time.monotonic()
    busy = math.inf
    while True:
        b0, w0 = _stat_busy(), time.monotonic()
        time.sleep(window)
        busy = 100 * (_stat_busy() - b0) / (time.monotonic() - w0)
        if busy < threshold or time.monotonic() - t0 >= max_wait:
            break
        log(
            f"machine busy ({busy:.0f} % of a core used by other processes); waiting for it to "
            "quieten"
        )
    waited = time.monotonic() - t0
    quiet = busy < threshold
    if not quiet:
        log(
            f"WARNING: still {busy:.0f} % busy after {waited:.0f} s; measuring on a contended "
            "machine"
        )
    return {"others_percent_at_start": busy, "waited_seconds": waited, "quiet_at_start": quiet}


CONTENDED_PERCENT = 25.0
"""Other processes using more than this share of a core during a measurement make it suspect."""


def contention_note(load: dict[str, Any], affects: str = "rates are low bounds") -> str:
    """One line for a report: how busy the rest of the machine was while measuring."""
    others = load.get("others_mean")
    if others is None:
        return "machine load: not measured"
    flag = f"CONTENDED: {affects}" if others > CONTENDED_PERCENT else "quiet"
    return (
        f"other processes during measurement: mean {others:.0f} %, max {load['others_max']:.0f} % "
        f"of a core ({flag})"
    )


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``[wall us, cpu us]`` of the block: CPU time (this thread) discounts a busy machine."""
    took = [0.0, 0.0]
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    yield took
    took[0] = (time.perf_counter_ns() - wall) / 1e3
    took[1] = (time.thread_time_ns() - cpu) / 1e3


def rss_mib() -> float:
    """Resident memory of this process (``VmRSS``), MiB."""
    return proc_status_kib(os.getpid(), "VmRSS") / 1024


def source_tree(commit: str, workdir: Path) -> Path:
    """The ``pipeline`` and ``schemas`` sources of a commit, extracted with ``git archive``.

    To measure another version of the code in a child process (``sys.path`` first), without
    a worktree or a checkout.
    """
    tree = workdir / f"recloop-{commit}"
    tree.mkdir(parents=True, exist_ok=True)
    cmd = ["git", "-C", str(REPO_ROOT), "archive", commit, "pipeline", "schemas"]
    archive = subprocess.run(cmd, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


# ----------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation; NaN for no values.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo))


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p95, p99, max and mean of ``values``."""
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


# ----------------------------------------------------------------------------- output
def log(message: str) -> None:
    """Progress on stderr (stdout carries the table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: thousands separators for numbers, ``-`` for missing."""
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
    """A plain-text table: first column left-aligned, the others right-aligned."""
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


def machine_facts() -> dict[str, Any]:
    """Where and when the numbers were measured."""
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    versions = {}
    for dist in (
        "faust-streaming",
        "mode-streaming",
        "aiokafka",
        "confluent-kafka",
        "redis",
        "river",
        "orjson",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = (
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
                timeout=5,
            ).stdout.strip()
            or None
        )
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_mib": mem_kib // 1024 if mem_kib else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "commit": commit,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with machine facts) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    doc = {"benchmark": name, "machine": machine_facts(), **data}
    path.write_bytes(
        orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=_nan)
    )
    return path


def _nan(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
