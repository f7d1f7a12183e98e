"""The import contracts of README "Layout" hold (import-linter, configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_violation_would_fail(tmp_path: Path) -> None:
    """The contracts bite: a module importing what a contract forbids is reported."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        (ROOT / "pyproject.toml").read_text()
        + '\n[[tool.importlinter.contracts]]\nid = "canary"\nname = "canary"\n'
        + 'type = "forbidden"\nsource_modules = ["pipeline.stores.users"]\n'
        + 'forbidden_modules = ["redis"]\n'
    )
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
