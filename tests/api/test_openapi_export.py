"""The checked-in ``schemas/openapi.v1.json`` is exactly what the app serves (no services)."""

from __future__ import annotations

from pathlib import Path

from pipeline.serve.openapi_export import OPENAPI_FILE, _default_app, main, render


def test_checked_in_openapi_document_matches_the_app() -> None:
    expected = render(_default_app())
    assert OPENAPI_FILE.read_text(encoding="utf-8") == expected, (
        "schemas/openapi.v1.json is stale: run "
        "`python -m pipeline.serve.openapi_export` and commit it"
    )


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["--check", "--out", str(stale)]) == 1
    assert main(["--out", str(stale)]) == 0
    assert main(["--check", "--out", str(stale)]) == 0
