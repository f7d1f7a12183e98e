"""The ``recloop`` executable: the library's commands plus ``worker``, which runs the Faust app.

The command group lives in ``pipeline.cli`` (click shells over the library); only the worker
command needs this package, and imports point one way (``agents -> pipeline``), so the
executable is assembled here: ``pipeline`` never imports ``agents``.
"""

from __future__ import annotations

from agents.worker_cmd import worker
from pipeline.cli import main

main.add_command(worker)

__all__ = ["main"]
