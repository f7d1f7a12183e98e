"""The bench's ceiling app, loaded as ``python bench/ceiling_app.py`` runs it (no package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def ceiling_module() -> ModuleType:
    """``bench/ceiling_app.py`` as a module (its ``create_app(settings, sink)``)."""
    spec = importlib.util.spec_from_file_location("ceiling_app", ROOT / "bench" / "ceiling_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
