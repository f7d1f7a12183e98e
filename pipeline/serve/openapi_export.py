"""Export and check ``schemas/openapi.v1.json``, the checked-in OpenAPI document of API v1.

Usage::

    python -m pipeline.serve.openapi_export           # rewrite schemas/openapi.v1.json
    python -m pipeline.serve.openapi_export --check   # exit 1 if it differs from the app (CI)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from pipeline.config import Settings
from pipeline.serve.app import create_api
from schemas.export import write_or_check

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "schemas" / "openapi.v1.json"


def render(app: FastAPI) -> str:
    """The exact content of ``schemas/openapi.v1.json``."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _default_app() -> FastAPI:
    # defaults, not the environment: the checked-in document must not depend on who made it
    return create_api(Settings.model_construct())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline.serve.openapi_export``; returns the exit status."""
    prog = "python -m pipeline.serve.openapi_export"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--out", type=Path, default=OPENAPI_FILE, help="output file")
    args = parser.parse_args(argv)
    return write_or_check(args.out, render(_default_app()), check=args.check, command=prog)


if __name__ == "__main__":
    raise SystemExit(main())
