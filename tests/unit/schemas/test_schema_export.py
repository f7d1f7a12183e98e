"""The checked-in JSON Schemas match the models, and say what the parser enforces.

``jsonschema`` is not a dependency, so a small validator for exactly the keywords pydantic
emits lives here; it raises on any keyword it does not know, so a new constraint in the
generated files cannot be silently ignored by these tests.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import (
    DeadLetter,
    Event,
    EventType,
    Item,
    Recommendation,
    Rejected,
    RejectReason,
    dead_letter_bytes,
    encode_recommendation,
    parse_event,
    parse_item,
)
from schemas.export import CONTRACTS, JSON_SCHEMA_DIALECT, SCHEMA_DIR, drifted, main, write_all

NOW = 1_700_000_000_000

# --- drift ----------------------------------------------------------------------------------


def test_checked_in_schemas_match_the_models() -> None:
    assert drifted(SCHEMA_DIR) == [], "run `python -m schemas.export` and commit the result"


def test_export_writes_and_check_detects_drift(tmp_path: Path) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1  # nothing there yet
    assert main(["--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(c.filename for c in CONTRACTS)
    assert main(["--check", "--dir", str(tmp_path)]) == 0

    event_file = tmp_path / "event.v1.schema.json"
    event_file.write_text(event_file.read_text().replace('"minLength": 1', '"minLength": 2'))
    (tmp_path / "old.v0.schema.json").write_text("{}\n")
    assert drifted(tmp_path) == ["event.v1.schema.json", "old.v0.schema.json"]
    assert main(["--check", "--dir", str(tmp_path)]) == 1

    assert write_all(tmp_path) == ["event.v1.schema.json", "old.v0.schema.json"]
    assert drifted(tmp_path) == []
    assert not (tmp_path / "old.v0.schema.json").exists()


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return schema


# --- structure, by hand --------------------------------------------------------------------


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_every_file_is_a_2020_12_object_schema(contract: Any) -> None:
    schema = load(contract.name)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"] == f"urn:recloop:schema:{contract.name}"
    assert schema["type"] == "object"
    assert schema["properties"]["schema_version"]["const"] == 1
    assert "additionalProperties" not in schema  # unknown fields are tolerated


def test_event_schema_structure() -> None:
    schema = load("event.v1")
    assert set(schema["required"]) == {"type", "event_id", "user_id", "item_id", "ts"}
    assert schema["$defs"]["EventType"]["enum"] == [t.value for t in EventType]
    assert schema["properties"]["ts"]["type"] == "integer"
    for field in ("event_id", "user_id", "item_id"):
        assert schema["properties"][field] == schema["properties"][field] | {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
        }
    (rule,) = schema["allOf"]
    assert rule["if"] == {"properties": {"type": {"const": "watch"}}, "required": ["type"]}
    assert rule["then"]["required"] == ["watch_seconds"]
    assert rule["then"]["properties"]["watch_seconds"] == {"type": "number", "minimum": 0}


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_every_schema_has_examples_that_it_and_the_model_accept(contract: Any) -> None:
    schema = load(contract.name)
    assert schema["examples"], "examples make generated clients and docs readable"
    for example in schema["examples"]:
        assert valid(example, schema, schema), example
        contract.model.model_validate(example)


def test_output_schemas_require_every_field() -> None:
    rec = load("recommendation.v1")
    assert set(rec["required"]) == set(Recommendation.model_fields)
    assert rec["properties"]["trigger_event_id"]["anyOf"][1] == {"type": "null"}
    letter = load("dead_letter.v1")
    assert set(letter["required"]) == set(DeadLetter.model_fields)
    assert letter["$defs"]["RejectReason"]["enum"] == [r.value for r in RejectReason]


# --- a minimal validator for the keywords pydantic emits ---------------------------------

ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$defs"}
TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # Python semantics (1.0 is not an integer); the parser is as strict
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def valid(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    for key, arg in schema.items():
        if key in ANNOTATIONS or key == "then" or key == "else":
            continue
        if key == "$ref":
            ok = valid(value, root["$defs"][arg.rsplit("/", 1)[1]], root)
        elif key == "type":
            ok = TYPES[arg](value)
        elif key == "enum":
            ok = any(same(value, option) for option in arg)
        elif key == "const":
            ok = same(value, arg)
        elif key == "minimum":
            ok = not TYPES["number"](value) or value >= arg
        elif key == "maximum":
            ok = not TYPES["number"](value) or value <= arg
        elif key == "exclusiveMinimum":
            ok = not TYPES["number"](value) or value > arg
        elif key == "minLength":
            ok = not isinstance(value, str) or len(value) >= arg
        elif key == "maxLength":
            ok = not isinstance(value, str) or len(value) <= arg
        elif key == "maxItems":
            ok = not isinstance(value, list) or len(value) <= arg
        elif key == "required":
            ok = not isinstance(value, dict) or all(name in value for name in arg)
        elif key == "properties":
            ok = not isinstance(value, dict) or all(
                valid(value[name], sub, root) for name, sub in arg.items() if name in value
            )
        elif key == "items":
            ok = not isinstance(value, list) or all(valid(v, arg, root) for v in value)
        elif key == "anyOf":
            ok = any(valid(value, sub, root) for sub in arg)
        elif key == "allOf":
            ok = all(valid(value, sub, root) for sub in arg)
        elif key == "oneOf":
            ok = sum(valid(value, sub, root) for sub in arg) == 1
        elif key == "if":
            branch = schema.get("then" if valid(value, arg, root) else "else")
            ok = branch is None or valid(value, branch, root)
        else:
            raise AssertionError(f"validator does not know keyword {key!r}")
        if not ok:
            return False
    return True


def schema_valid(name: str, document: Any) -> bool:
    schema = load(name)
    return valid(document, schema, schema)


def test_examples_validate_against_the_exported_schemas() -> None:
    click = {"event_id": "e", "type": "click", "user_id": "u", "item_id": "i", "ts": NOW}
    assert schema_valid("event.v1", click)
    assert schema_valid("event.v1", click | {"type": "watch", "watch_seconds": 3, "x": [1]})
    assert schema_valid("event.v1", click | {"type": "skip", "context": {"position": 2}})
    assert not schema_valid("event.v1", click | {"type": "watch"})
    assert not schema_valid("event.v1", click | {"type": "watch", "watch_seconds": None})
    assert not schema_valid("event.v1", click | {"ts": True})
    assert not schema_valid("event.v1", click | {"user_id": ""})
    assert not schema_valid("event.v1", click | {"ts": 2**63})
    assert not schema_valid("event.v1", click | {"schema_version": 2})
    assert schema_valid("event.v1", click | {"user_id": "u" * 256})
    assert not schema_valid("event.v1", click | {"user_id": "u" * 257})
    assert not schema_valid("event.v1", click | {"context": {"locale": "x" * 65}})

    assert schema_valid("item.v1", {"item_id": "i", "categories": ["a"], "title": "T"})
    assert not schema_valid("item.v1", {"item_id": "i", "categories": [""]})
    assert not schema_valid("item.v1", {"item_id": "i", "categories": ["c"] * 33})
    assert not schema_valid("item.v1", {"item_id": "i", "categories": ["c" * 129]})

    rec = encode_recommendation(
        "u",
        [("i", 0.5, "trending")],
        generated_ts=NOW,
        trigger_event_id=None,
        trigger_ts=None,
        model_version="m",
    )
    assert schema_valid("recommendation.v1", orjson.loads(rec))
    assert not schema_valid("recommendation.v1", orjson.loads(rec) | {"items": [{"score": 1}]})

    raw = b'{"type": "like"}'
    rejected = parse_event(raw, now_ms=NOW, max_bytes=1_000, max_future_ms=0)
    assert isinstance(rejected, Rejected)
    letter = dead_letter_bytes(raw, rejected, topic="t", partition=0, offset=7, now_ms=NOW)
    assert schema_valid("dead_letter.v1", orjson.loads(letter))
    assert not schema_valid("dead_letter.v1", orjson.loads(letter) | {"reason": "other"})


# --- the schema and the parser agree ---------------------------------------------------------

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    3,
    2.5,
    -0.5,
    "",
    "u",
    "click",
    "skip",
    "watch",
    "like",
    [],
    ["a"],
    ["a", ""],
    [3],
    {},
    {"position": 1},
    {"position": -1},
    {"device": 3},
    {"locale": "fr", "zz": None},
    {"position": 2**63 - 1},
    NOW,
    2**63 - 1,
]
EVENT_FIELDS = [
    "event_id",
    "type",
    "user_id",
    "item_id",
    "ts",
    "watch_seconds",
    "duration_seconds",
    "context",
    "schema_version",
    "other",
]
ITEM_FIELDS = [
    "item_id",
    "categories",
    "duration_seconds",
    "published_ts",
    "creator_id",
    "title",
    "schema_version",
    "other",
]


def mutated(rng: random.Random, base: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    document = dict(base)
    for _ in range(rng.randrange(0, 3)):
        name = rng.choice(fields)
        if rng.random() < 0.25:
            document.pop(name, None)
        else:
            document[name] = rng.choice(VALUES + [1])
    return document


def test_event_schema_accepts_exactly_what_the_parser_accepts() -> None:
    rng = random.Random(7)
    base = {
        "event_id": "e",
        "type": "watch",
        "user_id": "u",
        "item_id": "i",
        "ts": NOW,
        "watch_seconds": 1.5,
        "duration_seconds": 60,
        "context": {"surface": "home"},
    }
    accepted = 0
    for _ in range(4_000):
        document = mutated(rng, base, EVENT_FIELDS)
        result = parse_event(
            orjson.dumps(document), now_ms=NOW, max_bytes=100_000, max_future_ms=2**64
        )
        assert schema_valid("event.v1", document) == isinstance(result, Event), (document, result)
        accepted += isinstance(result, Event)
    assert 200 < accepted < 3_800  # both sides of the boundary were exercised


def test_item_schema_accepts_exactly_what_the_parser_accepts() -> None:
    rng = random.Random(8)
    base = {
        "item_id": "i",
        "categories": ["a", "b"],
        "duration_seconds": 60,
        "published_ts": NOW,
        "creator_id": "c",
        "title": "t",
    }
    for _ in range(3_000):
        document = mutated(rng, base, ITEM_FIELDS)
        result = parse_item(orjson.dumps(document), max_bytes=100_000)
        assert schema_valid("item.v1", document) == isinstance(result, Item), (document, result)
