"""The image's entry point, run the way the image runs it, without a Docker engine.

The image runs ``recloop worker`` as an unprivileged user in ``/app``, which root owns, and
compose makes the container's file system read-only with a tmpfs for ``RECLOOP_DATA_DIR``.
Here the same command runs as ``nobody`` in a read-only folder (a read-only tmpfs mount when
we are root, which even root cannot write; otherwise a 0555 folder) against the test Kafka
and Redis: with a writable ``RECLOOP_DATA_DIR`` it becomes ready, and compose's own
healthcheck command passes; without one it stops at once with a message naming the setting
(Faust's default, a data folder in the working directory, crashed in a restart loop).

``nobody`` keeps one capability, ``CAP_DAC_READ_SEARCH``: the test interpreter may live under
a 0700 home (pyenv in ``/root``), which the image's user never needs; the capability lets it
read and traverse, never write, so every write still meets the folder's permissions.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import Settings
from pipeline.kafka.topics import ensure_topics
from pipeline.tooling.processes import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
RECLOOP = (str(Path(sys.executable).parent / "recloop"), "worker")  # the image's CMD


def _mount_tmpfs(path: Path, options: str) -> bool:
    """Mount a tmpfs on ``path`` (root only); ``False`` where mounting is not allowed."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def _folder(mode: int, tmpfs_options: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="recloop-image-"))  # /tmp: reachable by nobody
    if not _mount_tmpfs(path, tmpfs_options):  # a mount gets its mode from the options
        path.chmod(mode)
    mounted = path.is_mount()
    try:
        yield path
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)
        path.chmod(0o700)
        subprocess.run(["rm", "-rf", str(path)], check=True)


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """Like the image's ``/app`` under compose's ``read_only: true``: nobody can write it."""
    yield from _folder(0o555, "ro,size=1m,mode=0555")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Like compose's ``tmpfs: /var/lib/recloop:mode=1777``."""
    yield from _folder(0o1777, "size=16m,mode=1777")


def _as_nobody() -> list[str]:
    """``setpriv`` to nobody when we are root (as the image's user), else nothing."""
    if os.geteuid() != 0:
        return []
    return [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
    ]  # fmt: skip


def _image_env(app_dir: Path) -> dict[str, str]:
    # what the image sets, and a HOME nobody can write (nobody's is /nonexistent)
    return {"PYTHONDONTWRITEBYTECODE": "1", "HOME": str(app_dir)}


def _worker_healthcheck() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return [str(part) for part in test[1:]]


def test_worker_as_nobody_in_a_read_only_folder_becomes_ready(
    settings_factory: Callable[..., Settings], app_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    settings = settings_factory(data_dir=data_dir, topic_partitions=2)
    ensure_topics(settings)
    worker = WorkerProcess(
        settings,
        log_path=tmp_path / "worker.log",
        extra_env=_image_env(app_dir),
        command=[*_as_nobody(), *RECLOOP],
        cwd=app_dir,
    )
    try:
        worker.wait_ready(90)
        # compose's healthcheck, verbatim but for the port, as the same user in the same folder
        command = [
            part.replace(":6066/", f":{settings.web_port}/") for part in _worker_healthcheck()
        ]
        command[0] = sys.executable if command[0] == "python" else command[0]
        check = subprocess.run(
            [*_as_nobody(), *command], cwd=app_dir, capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, (shlex.join(command), check.stderr)
    finally:
        worker.stop()
    assert list(app_dir.iterdir()) == []  # nothing written where the code lives
    assert (data_dir / f"{settings.app_id}-data").is_dir()
    if _as_nobody():
        assert (data_dir / f"{settings.app_id}-data").stat().st_uid == NOBODY


def test_without_a_writable_data_dir_the_worker_stops_at_once_and_says_why(
    settings_factory: Callable[..., Settings], app_dir: Path, tmp_path: Path
) -> None:
    # no RECLOOP_DATA_DIR: the default is relative to the working directory, as Faust's was
    settings = settings_factory(data_dir=None, topic_partitions=2)
    assert "RECLOOP_DATA_DIR" not in settings.to_env()
    worker = WorkerProcess(
        settings,
        log_path=tmp_path / "worker.log",
        extra_env=_image_env(app_dir),
        command=[*_as_nobody(), *RECLOOP],
        cwd=app_dir,
    )
    try:
        code = worker.proc.wait(60)
    finally:
        worker.stop()
    log = worker.tail()
    assert code == 1, log
    assert "not writable" in log and "RECLOOP_DATA_DIR" in log, log
    assert "Traceback" not in log, log
    assert list(app_dir.iterdir()) == []


def test_faust_alone_fails_there_with_permission_denied(app_dir: Path, tmp_path: Path) -> None:
    """The failure the data folder setting prevents: Faust's own default, ``<id>-data``."""
    script = (
        "import faust; app = faust.App('recloop', store='memory://'); app._create_directories()"
    )
    done: Any = subprocess.run(
        [*_as_nobody(), sys.executable, "-c", script],
        cwd=app_dir,
        env={**os.environ, **_image_env(app_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PermissionError" in done.stderr or "Read-only file system" in done.stderr, done.stderr
    assert "recloop-data" in done.stderr
