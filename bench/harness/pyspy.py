"""Sample a running worker with py-spy and summarise where its CPU time goes.

py-spy (``.venv/bin/pip install py-spy``) attaches to a process by PID without restarting it;
``--nonblocking`` keeps it from pausing the worker for each sample, and idle threads (the event
loop waiting in ``epoll``) are not sampled, so the shares below are shares of on-CPU time.
The raw (collapsed-stack) output is summarised four ways: functions by self time, functions
by inclusive time, self time by package, and time by the innermost recloop function on the
stack (what a recloop call costs including the libraries it calls).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.tooling.processes import WorkerProcess

from .output import table
from .results import REPO_ROOT, RESULTS_DIR

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_PROJECT = ("pipeline", "agents", "schemas")
_ENTRY = (
    "pipeline/cli/",
    "agents/cli",
    "agents/__main__",
)  # on every stack of the worker: says nothing

# What a worker spends time on: the innermost frame on the stack that names a stage, a recloop
# function below (``func`` itself or any method of a class ``func``) or a library ("pkg:<name>").
# A recloop frame no stage names counts as "other recloop code" when it is deeper than every
# library stage's frame: before, such samples fell through to the Faust frame at the stack's
# root (``Agent._execute_actor`` runs the whole batch), which read as Faust's own cost.
WORKER_STAGES: tuple[tuple[str, str], ...] = (
    ("refresh: rank (Recommender.recommend)", "Recommender.recommend"),
    ("refresh: encode list JSON", "encode_recommendation"),
    ("refresh: build list (other)", "build_list"),
    ("refresh: Redis SET + Kafka send", "ListPublisher.publish"),
    ("refresh: Redis SET + Kafka send", "ListPublisher.deliver"),
    ("refresh: Redis SET + Kafka send", "ListPublisher.send"),
    ("persist: encode batch writes", "BatchStore.encode"),
    ("persist: Redis transaction", "BatchStore"),
    ("persist: Redis transaction", "BatchProcessor._write"),
    ("learn: features + ranker examples", "learn_batch"),
    ("learn: shared model apply", "apply_learning"),
    ("learn: shared model apply", "apply_local"),
    ("learn: shared model apply", "SharedModels.apply_all"),
    ("decode + validate events", "parse_event"),
    ("load user states (Redis)", "UserCache.ensure"),
    ("dead letters", "BatchProcessor._dead_letter"),
    ("timer: model sync", "Worker.sync_model"),
    ("timer: trending", "Worker.refresh_trending"),
    ("timer: snapshot", "Worker.snapshot_model"),
    ("timer: stale refresh", "Worker.refresh_stale"),
    ("timer: deferred refresh (other)", "Worker.flush_pending"),
    ("other batch logic", "BatchProcessor"),
    ("other batch logic", "BatchPipeline"),
    ("/metrics rendering", "pkg:prometheus_client"),
    ("Faust stream/agent machinery", "pkg:faust"),
    ("Faust stream/agent machinery", "pkg:mode"),
    ("Kafka client (aiokafka)", "pkg:aiokafka"),
    ("Redis client (redis-py)", "pkg:redis"),
)
OTHER_RECLOOP = "other recloop code"
# Two kinds of samples with no Python frame of their own: the main thread's event loop running
# its C code (uvloop's polling, socket reads and writes, C callbacks: self time of mode's
# ``Worker.execute_from_commandline``, the stack's root), and Faust's consumer thread, which
# runs aiokafka's fetches on a loop of its own (``ServiceThread._start_thread``).
EVENT_LOOP = "event loop (C: polling, socket I/O, callbacks)"
CONSUMER_THREAD = "Faust's Kafka consumer thread"


def find_pyspy() -> str | None:
    """py-spy beside the interpreter (the venv), else on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def start(pid: int, out: Path, *, rate: int = 100, duration: int = 120) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` on ``pid``, collapsed stacks to ``out``; end it with :func:`stop`."""
    exe = find_pyspy()
    if exe is None:
        msg = "py-spy not found; install it with `.venv/bin/pip install py-spy`"
        raise FileNotFoundError(msg)
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
        "--duration",
        str(duration),
    ]
    log = out.with_suffix(".log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
    """SIGINT (py-spy then writes its output), SIGKILL if it hangs; return its exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def _parse_frame(frame: str) -> tuple[str, str, str]:
    """(function, short file, package) of one py-spy frame ``func (file:line)``."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "?", "?"
    func, file = m.group("func"), m.group("file")
    return func, _short(file), _package(file)


def _short(file: str) -> str:
    for marker in ("site-packages/", f"{REPO_ROOT}/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _package(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    rel = _short(file)
    top = rel.split("/", 1)[0]
    if top in _PROJECT:
        return f"recloop:{top}"
    if "lib/python3" in file or file.startswith("<frozen"):
        return f"stdlib:{top.removesuffix('.py')}"
    return top


def analyze(path: Path, top: int = 20) -> dict[str, Any]:
    """Summaries of a py-spy raw file (see module docstring)."""
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    by_recloop: Counter[str] = Counter()
    stage: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_parse_frame(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        func, file, pkg = frames[-1]
        self_fn[f"{func} ({file})"] += count
        self_pkg[pkg] += count
        for name in {f"{fn} ({fl})" for fn, fl, _ in frames}:
            incl_fn[name] += count
        inner = next(
            (
                f
                for f in reversed(frames)
                if f[2].startswith("recloop:") and not f[1].startswith(_ENTRY)
            ),
            None,
        )
        stage[_stage(frames)] += count
        by_recloop[
            f"{inner[0]} ({inner[1]})" if inner else "(no recloop frame: framework, I/O, loop)"
        ] += count

    def pct(
        counter: Counter[str], n: int, skip_roots: bool = False
    ) -> list[tuple[str, int, float]]:
        rows = []
        for name, c in counter.most_common():
            if skip_roots and c >= 0.97 * total:
                continue  # <module>, run_forever, ...: on every stack, says nothing
            rows.append((name, c, 100.0 * c / total if total else 0.0))
            if len(rows) == n:
                break
        return rows

    return {
        "samples": total,
        "self": pct(self_fn, top),
        "inclusive": pct(incl_fn, top + 10, skip_roots=True),
        "self_by_package": pct(self_pkg, 15),
        "by_recloop_function": pct(by_recloop, top),
        "by_stage": pct(stage, 40),
    }


def _stage(frames: list[tuple[str, str, str]]) -> str:
    """The innermost frame that names a stage (see ``WORKER_STAGES``), else "other"."""
    if any(func == "ServiceThread._start_thread" for func, _, _ in frames):
        return CONSUMER_THREAD
    if frames[-1][0] == "Worker.execute_from_commandline" and frames[-1][2] == "mode":
        return EVENT_LOOP
    for func, _, _ in reversed(frames):
        for name, pattern in WORKER_STAGES:
            if not pattern.startswith("pkg:") and (
                func == pattern or func.startswith(pattern + ".")
            ):
                return name
    for _, file, pkg in reversed(frames):
        if pkg.startswith("recloop:") and not file.startswith(_ENTRY):
            return OTHER_RECLOOP
        for name, pattern in WORKER_STAGES:
            if pattern == f"pkg:{pkg}":
                return name
    return "event loop, asyncio, other"


def render(a: dict[str, Any], header: str = "") -> str:
    def t(title: str, key: str, col: str) -> str:
        return table([col, "samples", "%"], [[n, c, p] for n, c, p in a[key]], title=title)

    parts = [header] if header else []
    parts += [
        t("worker time by stage (innermost matching frame)", "by_stage", "stage"),
        t("self time by package (leaf frame)", "self_by_package", "package"),
        t(
            "time by innermost recloop function (incl. the libraries it calls)",
            "by_recloop_function",
            "recloop function",
        ),
        t("functions by self time", "self", "function (file)"),
        t(
            "functions by inclusive time (frames on >=97% of stacks omitted)",
            "inclusive",
            "function (file)",
        ),
    ]
    return "\n\n".join(parts) + "\n"


def profile_worker(
    worker: WorkerProcess, raw: Path, *, seconds: float, rate: int, total: int
) -> dict[str, Any]:
    """Sample ``worker`` for ``seconds`` once it handles events (or until ``total`` are done).

    Returns the events handled and the worker's CPU while sampled, and the analysis.
    """
    from .machine import cpu_seconds
    from .processes import worker_progress

    progress = worker_progress(worker)
    deadline = time.monotonic() + 120
    while not progress() and time.monotonic() < deadline:
        time.sleep(0.05)
    c0, t0, cpu0 = progress() or 0, time.monotonic(), cpu_seconds(worker.pid)
    spy = start(worker.pid, raw, rate=rate, duration=int(seconds) + 30)
    try:
        while time.monotonic() - t0 < seconds and (progress() or 0) < total:
            time.sleep(0.2)
    finally:
        code = stop(spy)
    wall = time.monotonic() - t0
    c1 = progress() or 0
    cpu = 100 * (cpu_seconds(worker.pid) - cpu0) / wall
    if not raw.exists():
        log_text = raw.with_suffix(".log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"py-spy wrote no profile (exit {code}):\n{log_text}")
    analysis = analyze(raw)
    return {
        "seconds": wall,
        "events": c1 - c0,
        "rate_while_profiled": (c1 - c0) / wall,
        "worker_cpu_percent": cpu,
        "sample_rate": rate,
        "on_cpu_share": analysis["samples"] / (rate * wall) if wall else None,
        "analysis": analysis,
        "window_mono": (t0, t0 + wall),
    }


def write_profile(
    name: str, analysis: dict[str, Any], header: str, raw: Path | None = None
) -> Path:
    """Write ``bench/results/<name>_profile.txt`` (the rendered analysis) and return its path.

    ``raw`` (py-spy's collapsed stacks) is kept beside it as ``<name>_profile.raw``, for a
    flame graph or another summary later.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}_profile.txt"
    path.write_text(render(analysis, header))
    if raw is not None and raw.exists():
        path.with_suffix(".raw").write_bytes(raw.read_bytes())
    return path
