"""Records as ``recloop tail`` prints them (``pipeline.kafka.records``)."""

from __future__ import annotations

import orjson

from pipeline.config import Settings
from pipeline.kafka.reader import Record
from pipeline.kafka.records import about_user, decode_value, render, resolve_topic


def test_aliases_follow_the_settings() -> None:
    s = Settings(topic_events="ev", topic_recommendations="lists")
    assert [resolve_topic(n, s) for n in ("events", "recommendations", "dlq", "other.topic")] == [
        "ev", "lists", "recloop.events.dlq", "other.topic"
    ]  # fmt: skip


def test_values_that_are_not_json_are_shown_not_dropped() -> None:
    assert decode_value(b"\xff") == {"undecodable_base64": "/w=="}
    assert decode_value(None) is None


def test_about_user_by_key_field_or_dead_letter_original() -> None:
    assert about_user(b"u1", {"user_id": "u2"}, "u1")  # the key decides for keyed records
    assert not about_user(b"u2", {"user_id": "u1"}, "u1")
    assert about_user(None, {"user_id": "u1"}, "u1")
    letter = {"reason": "future_ts", "original_text": orjson.dumps({"user_id": "u1"}).decode()}
    assert about_user(None, letter, "u1") and not about_user(None, letter, "u2")
    assert not about_user(None, {"original_text": "not json"}, "u1")


def test_render_with_and_without_the_envelope() -> None:
    record = Record("t", 3, 42, b"u1", b'{"a": 1}', 1_700_000_000_000)
    assert render(record, meta=False) == b'{"a":1}'
    assert orjson.loads(render(record, meta=True)) == {
        "topic": "t", "partition": 3, "offset": 42, "key": "u1",
        "timestamp_ms": 1_700_000_000_000, "value": {"a": 1},
    }  # fmt: skip
