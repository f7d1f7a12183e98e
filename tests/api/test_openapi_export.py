"""The checked-in ``schemas/openapi.v1.json`` is exactly what the app serves (no services)."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema_rs
import orjson
import pytest

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


# --- what generated clients see ---------------------------------------------------------------

DOCUMENT = orjson.loads(OPENAPI_FILE.read_bytes())
OPERATIONS = [
    (method, path, op)
    for path, ops in DOCUMENT["paths"].items()
    for method, op in ops.items()
    if method in ("get", "post", "put", "patch", "delete")
]


def test_every_operation_has_a_clean_explicit_operation_id() -> None:
    ids = [op.get("operationId", "") for _, _, op in OPERATIONS]
    assert len(set(ids)) == len(ids) == len(OPERATIONS)
    bad = [i for i in ids if not re.fullmatch(r"(get|list|send|set|forget)[A-Z][A-Za-z]+", i)]
    assert not bad, f"not a clean camelCase verb+noun: {bad}"
    by_route = {(m, p): op["operationId"] for m, p, op in OPERATIONS}
    assert by_route[("get", "/v1/users/{user_id}/recommendations")] == "getRecommendations"
    assert by_route[("post", "/v1/events")] == "sendEvents"


@pytest.mark.parametrize("name", sorted(DOCUMENT["components"]["schemas"]))
def test_every_schema_has_examples_that_validate(name: str) -> None:
    schema = DOCUMENT["components"]["schemas"][name]
    assert schema.get("examples"), f"{name} has no examples"
    # the examples against the component, references resolved inside the document
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    )
    for example in schema["examples"]:
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, (name, example, errors)


def test_request_bodies_and_responses_are_documented_by_schemas_with_examples() -> None:
    for method, path, op in OPERATIONS:
        for status, response in op["responses"].items():
            content = response.get("content", {}).get("application/json")
            if content is None:
                continue
            ref = content["schema"].get("$ref")
            assert ref, (method, path, status)  # a named schema, hence with examples
        body = op.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            if "availability" in path:  # one object, not a batch
                assert schema == {"$ref": "#/components/schemas/AvailabilityInput"}
                continue
            refs = [s["$ref"] for s in schema["oneOf"][:1]]
            assert refs == [
                f"#/components/schemas/{'EventInput' if 'events' in path else 'ControlInput'}"
            ]
