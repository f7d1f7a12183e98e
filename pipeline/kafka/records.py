"""Records as people read them: topic aliases, decoded values, "is this about that user".

Pure helpers behind ``recloop tail`` and ``recloop dlq``.

>>> resolve_topic("dlq", Settings())
'recloop.events.dlq'
>>> decode_value(b'{"user_id": "u1"}')
{'user_id': 'u1'}
>>> about_user(None, {"original_text": '{"user_id": "u1", "type": "click"}'}, "u1")
True
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.kafka.reader import Record
from pipeline.kafka.topics import topic_names


def topic_aliases(settings: Settings) -> dict[str, str]:
    """Short name -> configured topic (``events``, ``items``, ``dlq``, ...)."""
    return dict(topic_names(settings)._asdict())


def resolve_topic(name: str, settings: Settings) -> str:
    """A topic alias (``events``, ``recommendations``, ``dlq``...) or a topic name as is."""
    return topic_aliases(settings).get(name, name)


def decode_value(value: bytes | None) -> Any:
    """The value as JSON; bytes that are not JSON as ``{"undecodable_base64": ...}``."""
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return {"undecodable_base64": base64.b64encode(value).decode()}


def about_user(key: bytes | None, doc: Any, user_id: str) -> bool:
    """Whether a record concerns ``user_id``.

    Keyed records by their key; unkeyed ones (dead letters) by their ``user_id`` field or
    their original's.
    """
    if key is not None:
        return key == user_id.encode()
    if not isinstance(doc, dict):
        return False
    if doc.get("user_id") == user_id:
        return True
    original = doc.get("original_text")
    if isinstance(original, str):
        try:
            inner = orjson.loads(original)
        except orjson.JSONDecodeError:
            return False
        return isinstance(inner, dict) and inner.get("user_id") == user_id
    return False


def render(record: Record, *, meta: bool) -> bytes:
    """One output line: the decoded value, or with ``meta`` an envelope around it."""
    value = decode_value(record.value)
    if not meta:
        return orjson.dumps(value)
    return orjson.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None if record.key is None else record.key.decode(errors="replace"),
            "timestamp_ms": record.timestamp_ms,
            "value": value,
        }
    )
