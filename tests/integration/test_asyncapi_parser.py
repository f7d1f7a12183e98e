"""``schemas/asyncapi.v1.json`` passes the official AsyncAPI parser (npm ``@asyncapi/parser``).

The parser's package is installed from the npm registry into ``tests/asyncapi`` on the first
run (locked by its package-lock.json).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from pipeline.kafka.asyncapi import ASYNCAPI_FILE

CHECKER = Path(__file__).resolve().parents[1] / "asyncapi"


@pytest.fixture(scope="module")
def node() -> str:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "Node.js with npm is needed (`make setup` installs it)"
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CHECKER, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return node


def validate(node: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, "validate.mjs", str(path)], cwd=CHECKER, capture_output=True, text=True, timeout=120
    )


def test_the_document_is_valid_asyncapi(node: str) -> None:
    done = validate(node, ASYNCAPI_FILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"ok":true' in done.stdout and '"channels":5' in done.stdout


def test_the_parser_would_catch_a_broken_document(node: str, tmp_path: Path) -> None:
    doc = orjson.loads(ASYNCAPI_FILE.read_bytes())
    doc["operations"]["receiveEvents"]["channel"] = {"$ref": "#/channels/nowhere"}
    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps(doc))
    assert validate(node, broken).returncode == 1
