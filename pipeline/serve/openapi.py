"""The OpenAPI document of API v1, and its checked-in copy ``schemas/openapi.v1.json``.

Request bodies are validated by the contract code on raw bytes (per-element errors, all or
nothing), so FastAPI cannot infer them; the document gets them from the contract models:
``EventInput`` and ``ControlInput`` are event v1 and control v1 as the API accepts them
(``event_id``/``control_id`` and ``ts`` optional: the server fills them in).

Every operation has an explicit ``operationId`` (``getRecommendations``, ``sendEvents``...,
set on the routes) and every schema carries ``examples``, so generated clients read well;
``pipeline.serve.openapi_export`` writes and checks the checked-in copy.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from schemas.control import Control
from schemas.events import Event

REF = "#/components/schemas/{model}"


def _input_schema(
    model: type[BaseModel], optional: tuple[str, ...], title: str, components: dict[str, Any]
) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    schema["required"] = [f for f in schema.get("required", []) if f not in optional]
    for name in optional:  # absent or null: the server fills it in (as the producer does)
        field = schema["properties"][name]
        schema["properties"][name] = {
            "anyOf": [{k: v for k, v in field.items() if k not in ("title", "description")},
                      {"type": "null"}],
            **{k: v for k, v in field.items() if k in ("title", "description")},
        }  # fmt: skip
    # as a client sends it: without what the server fills in
    schema["examples"] = [
        {k: v for k, v in example.items() if k not in optional}
        for example in schema.get("examples", [])
    ]
    schema["title"] = title
    schema["description"] = (
        f"{model.__name__} v1 as the API accepts it: {', '.join(optional)} are filled in "
        "when absent or null. " + (model.__doc__ or "").strip().splitlines()[0]
    )
    return schema


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request bodies' schemas."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=(
            "recloop API v1. Reads serve what the pipeline wrote (never recomputed); writes "
            "go through the workers' own validation and are acknowledged by Kafka before "
            "`202`. Keys: `X-API-Key` or `Authorization: Bearer`, read key for reads, admin "
            "key for everything (see README, HTTP API and console)."
        ),
        routes=app.routes,
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["EventInput"] = _input_schema(Event, ("event_id", "ts"), "EventInput", components)
    components["ControlInput"] = _input_schema(
        Control, ("control_id", "ts"), "ControlInput", components
    )
    for schema in components.values():  # enums: their first value, so every schema has one
        if "enum" in schema and "examples" not in schema:
            schema["examples"] = [schema["enum"][0]]
    max_batch = app.state.services.settings.api_max_batch
    for path in ("/v1/events", "/v1/controls"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"]["oneOf"][1]["maxItems"] = max_batch
    return doc


def customize_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi` at ``/openapi.json`` (computed once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
