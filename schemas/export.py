"""Generate the JSON Schema files in ``schemas/json/`` from the pydantic models.

The models are the source of truth; the checked-in files let producers and consumers in
any language validate messages (draft 2020-12). Input contracts (event, item) are exported
as the validator accepts them; output contracts (recommendation, dead letter) as they are
written, so every field the worker always writes is listed as required.

Usage::

    python -m schemas.export           # rewrite schemas/json/*.schema.json
    python -m schemas.export --check   # exit 1 if the files differ from the models (CI)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from schemas.control import Control
from schemas.dead_letter import DeadLetter
from schemas.events import Event, Item
from schemas.recommendation import Recommendation

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).parent / "json"
SUFFIX = ".schema.json"


@dataclass(frozen=True)
class Contract:
    """One exported schema: file stem, model, and which side of the wire it describes."""

    name: str
    model: type[BaseModel]
    mode: Literal["validation", "serialization"]

    @property
    def filename(self) -> str:
        """File name under ``schemas/json/``, e.g. ``event.v1.schema.json``."""
        return f"{self.name}{SUFFIX}"


CONTRACTS: tuple[Contract, ...] = (
    Contract("event.v1", Event, "validation"),
    Contract("item.v1", Item, "validation"),
    Contract("recommendation.v1", Recommendation, "serialization"),
    Contract("dead_letter.v1", DeadLetter, "serialization"),
    Contract("control.v1", Control, "validation"),
)


def schema_document(contract: Contract) -> dict[str, object]:
    """The JSON Schema of one contract, with ``$schema`` and a stable ``$id``."""
    body = contract.model.model_json_schema(mode=contract.mode)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": f"urn:recloop:schema:{contract.name}", **body}


def render_all() -> dict[str, str]:
    """File name -> exact file content for every contract (deterministic, LF, newline)."""
    return {
        contract.filename: json.dumps(schema_document(contract), indent=2, ensure_ascii=False)
        + "\n"
        for contract in CONTRACTS
    }


def drifted(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, stale, or no longer generated."""
    expected = render_all()
    present = {path.name for path in directory.glob(f"*{SUFFIX}")}
    stale = [
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text(encoding="utf-8") != text
    ]
    return sorted(stale + sorted(present - expected.keys()))


def write_all(directory: Path = SCHEMA_DIR) -> list[str]:
    """Rewrite every schema file, delete ones no longer generated; return changed names."""
    changed = drifted(directory)
    directory.mkdir(parents=True, exist_ok=True)
    expected = render_all()
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8", newline="\n")
    for path in directory.glob(f"*{SUFFIX}"):
        if path.name not in expected:
            path.unlink()
    return changed


def write_or_check(out: Path, text: str, *, check: bool, command: str) -> int:
    """Rewrite one generated document, or (``check``) say whether it is current: exit status.

    The shared step of every exporter of a checked-in contract file (the OpenAPI and
    AsyncAPI documents): ``command`` is what regenerates it, named when it is stale.
    """
    current = out.read_text(encoding="utf-8") if out.exists() else None
    if check:
        if current != text:
            sys.stderr.write(f"{out} is out of date; run `{command}` and commit it\n")
            return 1
        sys.stdout.write(f"{out} is up to date\n")
        return 0
    out.write_text(text, encoding="utf-8", newline="\n")
    sys.stdout.write(f"wrote {out} ({'changed' if current != text else 'unchanged'})\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m schemas.export``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the models"
    )
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="output directory")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted(args.dir)
        if stale:
            sys.stderr.write(
                f"JSON schemas out of date: {', '.join(stale)}; "
                "run `python -m schemas.export` and commit the result\n"
            )
            return 1
        sys.stdout.write(f"JSON schemas up to date ({len(CONTRACTS)} files in {args.dir})\n")
        return 0
    changed = write_all(args.dir)
    sys.stdout.write(
        f"wrote {len(CONTRACTS)} schemas to {args.dir}; changed: {changed or 'none'}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
