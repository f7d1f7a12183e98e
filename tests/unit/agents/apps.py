"""The bench's ceiling app, loaded as ``python bench/ceiling_app.py`` runs it (no package)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[3]


def ceiling_module() -> ModuleType:
    """``bench/ceiling_app.py`` as a module (its ``create_app(settings, sink)``)."""
    return load_script(ROOT / "bench" / "ceiling_app.py")
