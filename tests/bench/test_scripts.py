"""Every bench script starts: its imports resolve and ``--help`` works (no services needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
# started by throughput.py with its configuration in the environment, not a command
NOT_COMMANDS = {"ceiling_app.py"}
SCRIPTS = sorted(
    p.name
    for p in BENCH.glob("*.py")
    if 'if __name__ == "__main__"' in p.read_text() and p.name not in NOT_COMMANDS
)


def test_the_benches_are_found() -> None:
    assert {"throughput.py", "freshness.py", "memory.py", "plot.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_make_targets_name_existing_scripts() -> None:
    makefile = (BENCH.parent / "Makefile").read_text()
    line = next(x for x in makefile.splitlines() if x.startswith("BENCHES :="))
    for name in line.split(":=", 1)[1].split():
        assert (BENCH / f"{name.replace('-', '_')}.py").is_file(), name


def test_bench_modules_stay_short() -> None:
    """Issue #13: the scripts share the harness and stay under ~300 lines each."""
    for path in [*BENCH.glob("*.py"), *BENCH.glob("harness/*.py")]:
        if path.name in {"scale.py", "scale_traffic.py"}:  # owned by the model work
            continue
        lines = len(path.read_text().splitlines())
        assert lines <= 310, f"{path.relative_to(BENCH)}: {lines} lines"
