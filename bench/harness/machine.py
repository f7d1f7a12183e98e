"""CPU and memory of processes, and how busy the rest of the machine was while measuring.

Everything is read from ``/proc`` (Linux): a process's user + system CPU seconds, its
``VmRSS``/``VmHWM``, the machine's busy time. The machine has few cores and may be shared;
a run during which other processes used a sizeable share of a core measured a contended
machine, and its results say so (:class:`MachineLoad`, :func:`contention_note`).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from .output import log

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONTENDED_PERCENT = 25.0
"""Other processes using more than this share of a core during a measurement make it suspect."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``, all threads)."""
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


def rss_mib(pid: int | None = None) -> float | None:
    """Resident memory (``VmRSS``) of a process (default: this one) in MiB; ``None`` if gone."""
    with contextlib.suppress(OSError, KeyError):
        return proc_status_kib(pid or os.getpid(), "VmRSS") / 1024
    return None


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``[wall us, cpu us]`` of the block: CPU time (this thread) discounts a busy machine."""
    took = [0.0, 0.0]
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    yield took
    took[0] = (time.perf_counter_ns() - wall) / 1e3
    took[1] = (time.thread_time_ns() - cpu) / 1e3


class CpuMeter:
    """CPU used by named processes between ``start()`` and ``stop()``, as % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._c0: dict[str, float] = {}
        self.result: dict[str, float] = {}
        self.start_time = self.stop_time = 0.0

    def start(self) -> CpuMeter:
        self.start_time = time.monotonic()
        self._c0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.stop_time = time.monotonic()
        wall = max(self.stop_time - self.start_time, 1e-9)
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                self.result[name] = 100.0 * (cpu_seconds(pid) - self._c0[name]) / wall
        return self.result

    def cpu_seconds(self, name: str) -> float | None:
        """CPU seconds ``name`` used over the metered window (after ``stop()``)."""
        percent = self.result.get(name)
        return None if percent is None else percent * (self.stop_time - self.start_time) / 100


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
    """Once a second: CPU used by this benchmark (its process tree) and by everything else."""

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
        log(f"machine busy ({busy:.0f} % of a core used by other processes); waiting")
    waited = time.monotonic() - t0
    quiet = busy < threshold
    if not quiet:
        log(f"WARNING: still {busy:.0f} % busy after {waited:.0f} s; measuring on a busy machine")
    return {"others_percent_at_start": busy, "waited_seconds": waited, "quiet_at_start": quiet}


def contention_note(load: dict[str, Any], affects: str = "rates are low bounds") -> str:
    """One line for a report: how busy the rest of the machine was while measuring.

    >>> contention_note({"others_mean": 40.0, "others_max": 90.0}, affects="see")
    'other processes during measurement: mean 40 %, max 90 % of a core (CONTENDED: see)'
    """
    others = load.get("others_mean")
    if others is None:
        return "machine load: not measured"
    flag = f"CONTENDED: {affects}" if others > CONTENDED_PERCENT else "quiet"
    return (
        f"other processes during measurement: mean {others:.0f} %, max {load['others_max']:.0f} % "
        f"of a core ({flag})"
    )
