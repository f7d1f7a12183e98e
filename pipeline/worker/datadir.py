"""The worker's local data folder: where Faust may write, never the working directory.

Faust creates ``<app id>-data`` in the working directory unless told otherwise. A container
runs as an unprivileged user in a folder root owns (``/app``), often on a read-only root
file system, where that fails with ``PermissionError`` and the worker restarts in a loop;
on a developer's machine it litters the repository. recloop keeps nothing there (state lives
in Redis, the memory store is used), but Faust still needs the folder, so it goes under
``RECLOOP_DATA_DIR`` (the image sets ``/var/lib/recloop``), by default under the local
stack's folder.

Examples
--------
>>> from pipeline.config import Settings
>>> data_dir_for(Settings(app_id="recloop", data_dir="/var/lib/recloop")).as_posix()
'/var/lib/recloop/recloop-data'
>>> data_dir_for(Settings(app_id="recloop", stack_dir=".recloop")).as_posix()
'.recloop/data/recloop-data'
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import ConfigError


def data_dir_for(settings: Settings) -> Path:
    """``<RECLOOP_DATA_DIR>/<app id>-data``; unset: under ``<RECLOOP_STACK_DIR>/data``."""
    base = settings.data_dir if settings.data_dir is not None else settings.stack_dir / "data"
    return base / f"{settings.app_id}-data"


def prepare_data_dir(settings: Settings) -> Path:
    """Create the worker's data folder (parents too) and check that it takes a file.

    Faust creates the folder without its parents and only once the worker runs, so a bad
    setting would surface as a traceback in a restart loop; here it is one clear message
    before anything connects.

    Raises
    ------
    ConfigError
        The folder cannot be created or written (read-only file system, wrong owner).
    """
    path = data_dir_for(settings)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        msg = (
            f"the worker's data folder {path} is not writable ({exc.strerror or exc}); set "
            "RECLOOP_DATA_DIR to a folder this user can write (the image uses /var/lib/recloop)"
        )
        raise ConfigError(msg) from exc
    return path
