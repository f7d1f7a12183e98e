"""Which dead letters go back to their topic, with which key (``pipeline.events.redrive``)."""

from __future__ import annotations

import orjson

from pipeline.config import Settings
from pipeline.events.redrive import Redrive, Skip, parse_letter, plan_redrive, source_kinds
from schemas.dead_letter import RejectReason
from schemas.validation import Rejected, dead_letter_bytes

NOW = 1_700_000_000_000
S = Settings()


def letter(raw: bytes, reason: str = "processing_error", topic: str = S.topic_events, **kw: int):
    doc = orjson.loads(
        dead_letter_bytes(
            raw, Rejected(RejectReason(reason), "d"), topic=topic, partition=1, offset=9,
            now_ms=NOW, **kw,
        )
    )  # fmt: skip
    return parse_letter(doc)


def event(user: str = "u1", **extra: object) -> bytes:
    doc = {"event_id": "e1", "type": "click", "user_id": user, "item_id": "i", "ts": NOW}
    return orjson.dumps({**doc, **extra})


def plan(letters, reason="processing_error", force=False):  # type: ignore[no-untyped-def]
    return plan_redrive(letters, reason, source_kinds(S), S, now_ms=NOW, force=force)


def test_a_letter_keeps_the_exact_original_bytes() -> None:
    raw = event()
    found = letter(raw)
    assert found is not None and found.original == raw
    assert (found.source_topic, found.source_partition, found.source_offset) == (
        S.topic_events,
        1,
        9,
    )


def test_valid_originals_are_resent_keyed_like_a_producer_would() -> None:
    control = orjson.dumps(
        {"control_id": "c", "type": "mute", "user_id": "u2", "ts": NOW, "category": "News"}
    )
    item = orjson.dumps({"item_id": "i7", "categories": ["News"]})
    steps = plan([
        letter(event()), letter(control, topic=S.topic_controls), letter(item, topic=S.topic_items)
    ])  # fmt: skip
    assert all(isinstance(s, Redrive) for s in steps)
    assert [(s.topic, s.key) for s in steps] == [  # type: ignore[union-attr]
        (S.topic_events, b"u1"), (S.topic_controls, b"u2"), (S.topic_items, b"i7")
    ]  # fmt: skip


def test_only_the_requested_reason() -> None:
    assert plan([letter(event(), reason="future_ts")]) == []
    assert len(plan([letter(event(), reason="future_ts")], reason="future_ts")) == 1


def test_invalid_originals_need_force_and_truncated_ones_never_go() -> None:
    bad = letter(b"not json")
    [skipped] = plan([bad])
    assert isinstance(skipped, Skip) and "not_json" in skipped.why and "--force" in skipped.why
    [forced] = plan([bad], force=True)
    assert isinstance(forced, Redrive) and forced.key is None
    cut = letter(event(pad="x" * 100), max_original_bytes=10)
    assert cut is not None and cut.original is None
    assert all(isinstance(s, Skip) for s in plan([cut], force=True))


def test_a_future_ts_is_judged_by_todays_clock() -> None:
    ahead = letter(event(ts=NOW + 2 * S.max_future_ms), reason="future_ts")
    assert isinstance(plan([ahead], reason="future_ts")[0], Skip)
    later = plan_redrive([ahead], "future_ts", source_kinds(S), S, now_ms=NOW + 2 * S.max_future_ms)
    assert isinstance(later[0], Redrive)


def test_letters_from_unknown_topics_and_broken_documents() -> None:
    assert isinstance(plan([letter(event(), topic="elsewhere")])[0], Skip)
    assert parse_letter({"reason": "x"}) is None
    assert parse_letter({"reason": "x", "source_topic": "t", "source_partition": 0,
                         "source_offset": 0, "original_base64": "!!"}) is None  # fmt: skip
    assert parse_letter([1]) is None
