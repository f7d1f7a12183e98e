"""The AsyncAPI document of the topics: generated from the contract models, checked in."""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import orjson
import pytest

from pipeline.config import Settings
from pipeline.kafka.asyncapi import ASYNCAPI_FILE, TOPICS, main, render

DOC = orjson.loads(ASYNCAPI_FILE.read_bytes())


def test_checked_in_document_matches_the_models() -> None:
    assert ASYNCAPI_FILE.read_text(encoding="utf-8") == render(), (
        "schemas/asyncapi.v1.json is stale: run `python -m pipeline.kafka.asyncapi` and commit it"
    )


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    stale = tmp_path / "asyncapi.json"
    stale.write_text("{}\n")
    assert main(["--check", "--out", str(stale)]) == 1
    assert main(["--out", str(stale)]) == 0
    assert main(["--check", "--out", str(stale)]) == 0


def test_channels_are_the_configured_topics_with_their_keys() -> None:
    s = Settings()
    channels = DOC["channels"]
    assert {c["address"] for c in channels.values()} == {
        s.topic_events, s.topic_items, s.topic_controls, s.topic_recommendations, s.topic_dlq
    }  # fmt: skip
    for channel in channels.values():
        assert channel["bindings"]["kafka"]["partitions"] == s.topic_partitions
    keys = {
        name: message["bindings"]["kafka"].get("key", {}).get("description")
        for name, message in DOC["components"]["messages"].items()
    }
    assert keys == {
        "event": "The message's user_id.",
        "item": "The message's item_id.",
        "control": "The message's user_id.",
        "recommendation": "The message's user_id.",
        "deadLetter": None,
    }
    assert "murmur2(key) & 0x7fffffff" in DOC["info"]["description"]
    assert "murmur2_random" in DOC["info"]["description"]
    groups = {
        name: op["bindings"]["kafka"]["groupId"]["enum"]
        for name, op in DOC["operations"].items()
        if op["action"] == "receive"
    }
    assert groups == {n: [s.app_id] for n in ("receiveEvents", "receiveItems", "receiveControls")}


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.channel)
def test_message_examples_are_valid_payloads(topic: object) -> None:
    message = DOC["components"]["messages"][topic.message]  # type: ignore[attr-defined]
    assert message["examples"]
    validator = jsonschema_rs.Draft202012Validator(
        {**message["payload"], "components": DOC["components"]}
    )
    for example in message["examples"]:
        assert not [e.message for e in validator.iter_errors(example["payload"])]
        topic.model.model_validate(example["payload"])  # type: ignore[attr-defined]
