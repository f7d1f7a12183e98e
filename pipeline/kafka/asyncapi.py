"""The AsyncAPI 3.0 document of recloop's topics, generated from the contract models.

The same pydantic models that validate every message (``schemas/``) give the payload
schemas, with their examples; the default settings give topic names, partition count and
consumer group; the keys and the partitioning rule are stated per message and in the
document's description. The checked-in copy is ``schemas/asyncapi.v1.json``, drift-tested
like the JSON Schemas::

    python -m pipeline.kafka.asyncapi           # rewrite schemas/asyncapi.v1.json
    python -m pipeline.kafka.asyncapi --check   # exit 1 if it differs from the models (CI)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from pipeline.config import Settings
from schemas.control import Control
from schemas.dead_letter import DeadLetter
from schemas.events import Event, Item
from schemas.export import write_or_check
from schemas.recommendation import Recommendation

ASYNCAPI_FILE = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.v1.json"
DOCUMENT_VERSION = "1.1.0"
"""Contracts v1 with the optional fields added since (recommendation ``experiment``...)."""
KAFKA_BINDING = "0.5.0"
REF = "#/components/schemas/{model}"

PARTITIONING = (
    "Keys are UTF-8 strings. Place them with Kafka's default (Java) partitioner: "
    "`partition = (murmur2(key) & 0x7fffffff) % partitions`, as Faust, the Java client, "
    "kafkajs 2 and kafka-go's `Murmur2Balancer` do; librdkafka-based clients "
    "(confluent-kafka in any language) need `partitioner=murmur2_random`. A user's events "
    "and controls must land on the same partition number, so that the worker owning the "
    "user's events gets their controls and sees their events in order."
)


@dataclass(frozen=True)
class Topic:
    """One channel: its topic, payload model, key and direction (seen from recloop)."""

    channel: str
    message: str
    title: str
    setting: str
    model: type[BaseModel]
    mode: Literal["validation", "serialization"]
    key: str | None
    action: Literal["receive", "send"]
    about: str


TOPICS = (
    Topic("events", "event", "event v1", "topic_events", Event, "validation", "user_id",
          "receive", "What users do. Invalid events are dead-lettered with a reason; "
          "duplicates (same event_id) are ignored, so producers may retry freely."),
    Topic("items", "item", "item v1", "topic_items", Item, "validation", "item_id",
          "receive", "The catalogue; the latest message of an item_id replaces earlier ones. "
          "available: false, an available_until_ts that passed, or a tombstone (null value "
          "under the item's key) withdraws the item from every list (item v1.1)."),
    Topic("controls", "control", "control v1", "topic_controls", Control, "validation",
          "user_id", "receive", "What users tell recloop (mute, not_interested, "
          "declare_interests, personalization_off/on, forget). Co-partitioned with events."),
    Topic("recommendations", "recommendation", "recommendation v1", "topic_recommendations",
          Recommendation, "serialization", "user_id", "send", "Each refreshed list of a "
          "user; the same document as the Redis key recloop:user:{USER_ID}:recs. Keep the "
          "newest generated_ts per user."),
    Topic("deadLetters", "deadLetter", "dead-letter v1", "topic_dlq", DeadLetter,
          "serialization", None, "send", "Every refused message with its reason and exact "
          "original bytes; `recloop dlq redrive` sends fixed ones back."),
)  # fmt: skip


def _schemas(components: dict[str, Any]) -> None:
    for topic in TOPICS:
        schema = topic.model.model_json_schema(ref_template=REF, mode=topic.mode)
        for name, sub in {**schema.pop("$defs", {}), topic.model.__name__: schema}.items():
            if components.setdefault(name, sub) != sub:
                msg = f"two different schemas named {name}: rename one of the models"
                raise ValueError(msg)


def build_asyncapi(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for ``settings``' topic names and partition count."""
    schemas: dict[str, Any] = {}
    _schemas(schemas)
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for t in TOPICS:
        address = getattr(settings, t.setting)
        key_doc = (
            {"type": "string", "minLength": 1, "description": f"The message's {t.key}."}
            if t.key
            else None
        )
        messages[t.message] = {
            "name": t.message,
            "title": t.title,
            "summary": (t.model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=t.model.__name__)},
            "bindings": {
                "kafka": {**({"key": key_doc} if key_doc else {}), "bindingVersion": KAFKA_BINDING}
            },
            "examples": [
                {"name": f"{t.message}-{n}", "payload": example}
                for n, example in enumerate(schemas[t.model.__name__].get("examples", []), 1)
            ],
        }
        keyed = f"keyed by {t.key}, murmur2 partitioner" if t.key else "without a key"
        channels[t.channel] = {
            "address": address,
            "title": f"{t.title}, {keyed}",
            "description": f"{t.about} Topic name: RECLOOP_{t.setting.upper()}.",
            "messages": {t.message: {"$ref": f"#/components/messages/{t.message}"}},
            "bindings": {
                "kafka": {
                    "topic": address,
                    "partitions": settings.topic_partitions,
                    "replicas": settings.topic_replication,
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        }
        operation: dict[str, Any] = {
            "action": t.action,
            "channel": {"$ref": f"#/channels/{t.channel}"},
            "summary": f"recloop {'reads' if t.action == 'receive' else 'writes'} {t.title}.",
            "messages": [{"$ref": f"#/channels/{t.channel}/messages/{t.message}"}],
        }
        if t.action == "receive":
            operation["bindings"] = {
                "kafka": {
                    "groupId": {"type": "string", "enum": [settings.app_id]},
                    "bindingVersion": KAFKA_BINDING,
                }
            }
        name = t.channel[0].upper() + t.channel[1:]
        operations[f"{t.action}{name}"] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "recloop topics",
            "version": DOCUMENT_VERSION,
            "description": (
                "Kafka topics of recloop, a real-time personalisation pipeline. Values are "
                "UTF-8 JSON; every message carries its schema_version and readers ignore "
                "unknown fields. Topic names, partition count and the workers' consumer "
                "group are settings (defaults shown). " + PARTITIONING
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": settings.kafka_bootstrap,
                "protocol": "kafka",
                "description": "`recloop stack up` (RECLOOP_KAFKA_BOOTSTRAP elsewhere).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def render(settings: Settings | None = None) -> str:
    """The exact content of ``schemas/asyncapi.v1.json`` (defaults, not the environment)."""
    doc = build_asyncapi(settings or Settings.model_construct())
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline.kafka.asyncapi``; returns the exit status."""
    prog = "python -m pipeline.kafka.asyncapi"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--out", type=Path, default=ASYNCAPI_FILE, help="output file")
    args = parser.parse_args(argv)
    return write_or_check(args.out, render(), check=args.check, command=prog)


if __name__ == "__main__":
    raise SystemExit(main())
