"""Progress bars of ``recloop replay`` and ``recloop dataset movielens``: TTY only, on stderr.

The commands run as real processes whose stderr is a pseudo-terminal (as for a person) or a
pipe (as in CI); stdout is always a pipe, so the bar never mixes with the results.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.unit.tooling.test_dataset import _write_100k

RECLOOP = [sys.executable, "-m", "agents"]


def run(args: list[str], *, tty: bool, cwd: Path) -> tuple[int, str, str]:
    """Run ``recloop args``; returns (exit code, stdout, stderr)."""
    env = {**os.environ, "COLUMNS": "100"}
    if not tty:
        done = subprocess.run(
            [*RECLOOP, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
        )
        return done.returncode, done.stdout, done.stderr
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*RECLOOP, *args], stdout=subprocess.PIPE, stderr=terminal, cwd=cwd, env=env
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(120)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    lines = [
        orjson.dumps(
            {
                "event_id": f"e{n}",
                "type": "watch",
                "user_id": f"u{n % 7}",
                "item_id": f"i{(n * 3) % 11}",
                "ts": 1_700_000_000_000 + n * 1000,
                "watch_seconds": 600.0,
                "duration_seconds": 600.0,
            }
        )  # fmt: skip
        for n in range(120)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_draws_a_bar_on_a_terminal(event_log: Path) -> None:
    code, out, err = run(["replay", str(event_log)], tty=True, cwd=event_log.parent)
    assert code == 0, err
    assert "replaying" in err and "[####" in err and "120/120" in err
    assert "replaying" not in out
    assert out.startswith("prequential replay: 120 events")


@pytest.mark.parametrize(("tty", "extra"), [(False, []), (True, ["--quiet"]), (True, ["-q"])])
def test_replay_has_no_bar_off_a_terminal_or_when_quiet(
    event_log: Path, tty: bool, extra: list[str]
) -> None:
    code, out, err = run(["replay", str(event_log), *extra], tty=tty, cwd=event_log.parent)
    assert code == 0, err
    assert "replaying" not in err and "replaying" not in out
    assert out.startswith("prequential replay: 120 events")  # the report is still printed


def test_dataset_draws_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    src = _write_100k(tmp_path)
    args = ["dataset", "movielens", str(src), "-o", str(tmp_path / "out")]
    code, out, err = run(args, tty=True, cwd=tmp_path)
    assert code == 0, err
    assert "converting ratings" in err and "[####" in err and "100%" in err
    assert "wrote" in out
    for tty, extra in ((False, []), (True, ["--quiet"])):
        code, out, err = run([*args, *extra], tty=tty, cwd=tmp_path)
        assert code == 0, err
        assert "converting ratings" not in err + out
