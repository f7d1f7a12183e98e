"""Result files: ``bench/results/<name>.json`` with the facts of the machine they came from.

A number without its machine, commit and time is not a result: every JSON a bench writes
carries cores, CPU model, memory, Python and library versions, the commit and a UTC
timestamp (:func:`machine_facts`), beside the load of other processes the bench recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PACKAGES = (
    "faust-streaming",
    "mode-streaming",
    "aiokafka",
    "confluent-kafka",
    "redis",
    "river",
    "orjson",
    "uvloop",
)


def _git(*args: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        ).stdout.strip()
        return out or None
    return None


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
    for dist in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_mib": mem_kib // 1024 if mem_kib else None,
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` with the machine facts under ``machine`` (kept if ``doc`` has them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    facts = {**machine_facts(), **(doc.get("machine") or {})}
    head = {k: doc[k] for k in ("benchmark",) if k in doc}
    rest = {k: v for k, v in doc.items() if k not in head and k != "machine"}
    full = {**head, "machine": facts, **rest}
    path.write_bytes(
        orjson.dumps(full, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=_plain)
    )
    return path


def write_results(name: str, data: dict[str, Any], *, benchmark: str | None = None) -> Path:
    """Write ``bench/results/<name>.json``: ``benchmark`` (the kind, default ``name``; it
    picks the plot), the machine facts, then ``data``."""
    return write_json(RESULTS_DIR / f"{name}.json", {"benchmark": benchmark or name, **data})


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


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
