"""Contract tests: event/item parsing, reject reasons, encoders and dead letters."""

from __future__ import annotations

import base64
import math
import random
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    DeadLetter,
    Event,
    EventType,
    Item,
    Recommendation,
    RecommendedItem,
    Rejected,
    RejectReason,
    dead_letter_bytes,
    encode_recommendation,
    event_to_bytes,
    item_to_bytes,
    parse_event,
    parse_item,
    recommendation_to_bytes,
)
from schemas.control import Control
from schemas.limits import (
    MAX_CATEGORIES,
    MAX_CATEGORY_LENGTH,
    MAX_CONTEXT_LENGTH,
    MAX_ID_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TITLE_LENGTH,
)
from schemas.validation import (
    MAX_ORIGINAL_TEXT_BYTES,
    REASON_BY_ERROR_TYPE,
    parse_control,
    reason_for_error,
)

NOW = 1_700_000_000_000
MAX_BYTES = 16_384
MAX_FUTURE = 3_600_000


def parse(raw: bytes, **limits: int) -> Event | Rejected:
    options = {"now_ms": NOW, "max_bytes": MAX_BYTES, "max_future_ms": MAX_FUTURE}
    options.update(limits)
    return parse_event(raw, **options)


def doc(**fields: Any) -> bytes:
    """A valid watch event with ``fields`` replaced; a value of ``...`` deletes the field."""
    base: dict[str, Any] = {
        "event_id": "e-1",
        "type": "watch",
        "user_id": "u-1",
        "item_id": "i-1",
        "ts": NOW - 5_000,
        "watch_seconds": 42.5,
    }
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def reason(raw: bytes, **limits: int) -> RejectReason:
    result = parse(raw, **limits)
    assert isinstance(result, Rejected), f"accepted: {result!r}"
    return result.reason


# --- valid events ---------------------------------------------------------------------------


def test_minimal_click_is_accepted_with_defaults() -> None:
    event = parse(doc(type="click", watch_seconds=...))
    assert isinstance(event, Event)
    assert event.type is EventType.CLICK
    assert (event.event_id, event.user_id, event.item_id) == ("e-1", "u-1", "i-1")
    assert event.schema_version == 1
    assert event.watch_seconds is None and event.duration_seconds is None
    assert event.context is None


def test_full_watch_event() -> None:
    raw = doc(
        duration_seconds=120,
        schema_version=1,
        context={"device": "ios", "locale": "en-GB", "surface": "home", "position": 0},
    )
    event = parse(raw)
    assert isinstance(event, Event)
    assert event.watch_seconds == 42.5
    assert event.duration_seconds == 120.0 and isinstance(event.duration_seconds, float)
    assert event.context is not None
    assert event.context.position == 0 and event.context.device == "ios"


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "skip", "watch_seconds": ...},
        {"type": "skip", "watch_seconds": 0, "duration_seconds": 30.5},
        {"type": "watch", "watch_seconds": 0},
        {"type": "watch", "watch_seconds": 500, "duration_seconds": 100},  # rewatch
        {"type": "click", "duration_seconds": 90},  # as the data set generator writes
        {"context": None, "duration_seconds": None},  # null means absent for optionals
        {"context": {}},
        {"ts": 0},
        {"ts": NOW + MAX_FUTURE},  # exactly at the limit
    ],
)
def test_valid_variants(fields: dict[str, Any]) -> None:
    assert isinstance(parse(doc(**fields)), Event)


def test_unknown_fields_are_tolerated_and_ignored() -> None:
    raw = doc(experiment={"arm": "b"}, app_version="9.1", context={"device": "tv", "os": 17})
    event = parse(raw)
    assert isinstance(event, Event)
    assert "experiment" not in event.model_dump()
    assert event.context is not None and "os" not in event.context.model_dump()


def test_watch_seconds_int_and_float_both_accepted() -> None:
    a, b = parse(doc(watch_seconds=42)), parse(doc(watch_seconds=42.0))
    assert isinstance(a, Event) and isinstance(b, Event)
    assert a.watch_seconds == b.watch_seconds == 42.0


def test_input_buffer_types() -> None:
    raw = doc()
    assert isinstance(
        parse_event(bytearray(raw), now_ms=NOW, max_bytes=MAX_BYTES, max_future_ms=0), Event
    )
    assert isinstance(
        parse_event(memoryview(raw), now_ms=NOW, max_bytes=MAX_BYTES, max_future_ms=0), Event
    )


# --- every reject reason ----------------------------------------------------------------------

REJECTS: list[tuple[str, bytes, RejectReason]] = [
    ("oversize", doc(title="x" * MAX_BYTES), RejectReason.TOO_LARGE),
    ("oversize garbage", b"\xff" * (MAX_BYTES + 1), RejectReason.TOO_LARGE),
    ("latin-1 byte", doc(user_id="u").replace(b'"u"', b'"\xe9"'), RejectReason.NOT_UTF8),
    ("random binary", b"\x00\x9f\x92\x96", RejectReason.NOT_UTF8),
    ("truncated", doc()[:-3], RejectReason.NOT_JSON),
    ("empty", b"", RejectReason.NOT_JSON),
    ("trailing data", doc() + b"{}", RejectReason.NOT_JSON),
    ("utf-8 BOM", b"\xef\xbb\xbf" + doc(), RejectReason.NOT_JSON),
    ("single quotes", b"{'type': 'click'}", RejectReason.NOT_JSON),
    # Python's json.dumps writes NaN; pydantic's parser reads it, the float check refuses it.
    ("NaN literal", doc(watch_seconds=1).replace(b"1}", b"NaN}"), RejectReason.INVALID_VALUE),
    ("array", b"[1, 2]", RejectReason.NOT_OBJECT),
    ("string", b'"click"', RejectReason.NOT_OBJECT),
    ("null", b"null", RejectReason.NOT_OBJECT),
    ("number", b"17", RejectReason.NOT_OBJECT),
    ("no event_id", doc(event_id=...), RejectReason.MISSING_FIELD),
    ("no type", doc(type=...), RejectReason.MISSING_FIELD),
    ("null user_id", doc(user_id=None), RejectReason.MISSING_FIELD),
    ("no item_id", doc(item_id=...), RejectReason.MISSING_FIELD),
    ("no ts", doc(ts=...), RejectReason.MISSING_FIELD),
    ("watch without watch_seconds", doc(watch_seconds=...), RejectReason.MISSING_FIELD),
    ("watch with null watch_seconds", doc(watch_seconds=None), RejectReason.MISSING_FIELD),
    ("ts as string", doc(ts=str(NOW)), RejectReason.WRONG_TYPE),
    ("ts as bool", doc(ts=True), RejectReason.WRONG_TYPE),
    ("ts as float", doc(ts=float(NOW)), RejectReason.WRONG_TYPE),
    ("user_id as int", doc(user_id=12345), RejectReason.WRONG_TYPE),
    ("type as int", doc(type=1), RejectReason.WRONG_TYPE),
    ("watch_seconds as bool", doc(watch_seconds=True), RejectReason.WRONG_TYPE),
    ("watch_seconds as string", doc(watch_seconds="4"), RejectReason.WRONG_TYPE),
    ("context as list", doc(context=["ios"]), RejectReason.WRONG_TYPE),
    ("context.device as int", doc(context={"device": 3}), RejectReason.WRONG_TYPE),
    ("context.position as bool", doc(context={"position": True}), RejectReason.WRONG_TYPE),
    ("schema_version as bool", doc(schema_version=True), RejectReason.WRONG_TYPE),
    ("schema_version as float", doc(schema_version=1.0), RejectReason.WRONG_TYPE),
    ("unknown type", doc(type="like"), RejectReason.UNKNOWN_TYPE),
    ("type wrong case", doc(type="Click"), RejectReason.UNKNOWN_TYPE),
    ("empty event_id", doc(event_id=""), RejectReason.INVALID_VALUE),
    ("empty user_id", doc(user_id=""), RejectReason.INVALID_VALUE),
    ("empty item_id", doc(item_id=""), RejectReason.INVALID_VALUE),
    ("negative ts", doc(ts=-1), RejectReason.INVALID_VALUE),
    ("zero duration", doc(duration_seconds=0), RejectReason.INVALID_VALUE),
    (
        "infinite watch",
        doc(watch_seconds=1).replace(b":1}", b":1e400}"),
        RejectReason.INVALID_VALUE,
    ),
    ("negative position", doc(context={"position": -1}), RejectReason.INVALID_VALUE),
    ("negative watch_seconds", doc(watch_seconds=-0.5), RejectReason.NEGATIVE_DURATION),
    ("negative skip seconds", doc(type="skip", watch_seconds=-3), RejectReason.NEGATIVE_DURATION),
    ("negative duration", doc(duration_seconds=-10), RejectReason.NEGATIVE_DURATION),
    ("one ms too far ahead", doc(ts=NOW + MAX_FUTURE + 1), RejectReason.FUTURE_TS),
    ("seconds as micros", doc(ts=NOW * 1000), RejectReason.FUTURE_TS),
    (
        "ts beyond 64 bits",
        doc(ts=7).replace(b'"ts":7', b'"ts":1' + b"0" * 30),
        RejectReason.INVALID_VALUE,
    ),
    (
        "position beyond 64 bits",
        doc(context={"position": 7}).replace(b":7}", b":9223372036854775808}"),
        RejectReason.INVALID_VALUE,
    ),
    ("schema_version 2", doc(schema_version=2), RejectReason.UNSUPPORTED_VERSION),
    ("schema_version 0", doc(schema_version=0), RejectReason.UNSUPPORTED_VERSION),
]


@pytest.mark.parametrize(("raw", "expected"), [r[1:] for r in REJECTS], ids=[r[0] for r in REJECTS])
def test_reject_reasons(raw: bytes, expected: RejectReason) -> None:
    result = parse(raw)
    assert isinstance(result, Rejected)
    assert result.reason is expected
    assert result.detail


def test_every_reason_code_is_exercised() -> None:
    # processing_error is the worker's, not the parser's (tested with the processor)
    assert {r[2] for r in REJECTS} == set(RejectReason) - {RejectReason.PROCESSING_ERROR}


def test_reason_codes_are_stable_strings() -> None:
    assert [r.value for r in RejectReason] == [
        "too_large",
        "not_utf8",
        "not_json",
        "not_object",
        "missing_field",
        "wrong_type",
        "unknown_type",
        "invalid_value",
        "negative_duration",
        "future_ts",
        "unsupported_version",
        "processing_error",
    ]


def test_size_limit_is_inclusive() -> None:
    raw = doc()
    assert isinstance(parse(raw, max_bytes=len(raw)), Event)
    assert reason(raw, max_bytes=len(raw) - 1) is RejectReason.TOO_LARGE


def test_first_failing_field_in_declaration_order_wins() -> None:
    # user_id (empty), item_id (null), ts (string): user_id is declared first.
    assert reason(doc(user_id="", item_id=None, ts="x")) is RejectReason.INVALID_VALUE
    # a newer version is reported as such, whatever else is wrong
    assert reason(doc(schema_version=2, type="share", ts="x")) is RejectReason.UNSUPPORTED_VERSION
    # an unknown type beats a missing field
    assert reason(doc(type="share", item_id=...)) is RejectReason.UNKNOWN_TYPE


def test_details_never_echo_field_values() -> None:
    secret = "alice@example.com"
    for raw in (
        doc(user_id=[secret]),
        doc(type=secret),
        doc(ts=secret),
        doc(event_id=secret, ts=-1),
    ):
        result = parse(raw)
        assert isinstance(result, Rejected)
        assert secret not in result.detail


def test_detail_names_the_field() -> None:
    result = parse(doc(context={"position": "3"}))
    assert isinstance(result, Rejected)
    assert result.detail.startswith("context.position:")


# --- robustness -------------------------------------------------------------------------------

INTERESTING: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    1.5,
    -0.0,
    2**63 - 1,
    -(2**63),
    1e308,
    "",
    "x",
    "click",
    "skip",
    "watch",
    "like",
    "\u0000",
    "\ud7ff",
    "é",
    [],
    [1],
    {},
    {"a": 1},
    {"position": -1},
    {"device": None},
    NOW,
    NOW + 10**9,
]
FIELDS = [
    "event_id",
    "type",
    "user_id",
    "item_id",
    "ts",
    "watch_seconds",
    "duration_seconds",
    "context",
    "schema_version",
    "extra",
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(INTERESTING)
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELDS): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def random_event_doc(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = orjson.loads(doc(duration_seconds=60, context={"position": 1}))
    for _ in range(rng.randrange(1, 4)):
        name = rng.choice(FIELDS)
        if rng.random() < 0.2:
            fields.pop(name, None)
        else:
            fields[name] = random_json(rng, depth=2)
    return fields


def mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(3)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = bytes([rng.randrange(256)])
        else:
            del data[pos : pos + rng.randrange(1, 4)]
    return bytes(data)


def test_fuzz_random_bytes_never_raise() -> None:
    rng = random.Random(1234)
    seeds = [doc(), doc(type="click", context={"device": "web"}), b"{}", b"[]"]
    for _ in range(3_000):
        if rng.random() < 0.5:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            raw = mutate(rng, rng.choice(seeds))
        result = parse(raw)
        assert isinstance(result, Event | Rejected)
        assert isinstance(parse_item(raw, max_bytes=MAX_BYTES), Item | Rejected)


def test_fuzz_random_json_never_raises_and_maps_every_error() -> None:
    rng = random.Random(99)
    seen_error_types: set[str] = set()
    outcomes: set[str] = set()
    for _ in range(3_000):
        value = random_event_doc(rng) if rng.random() < 0.8 else random_json(rng)
        raw = orjson.dumps(value)
        first = parse(raw)
        assert parse(raw) == first  # deterministic
        outcomes.add("ok" if isinstance(first, Event) else first.reason.value)
        if isinstance(first, Event):
            assert parse(event_to_bytes(first)) == first  # encoder round trip
        try:
            Event.model_validate_json(raw)
        except ValidationError as exc:
            for error in exc.errors():
                seen_error_types.add(error["type"])
                reason_for_error(error)
        assert isinstance(parse_item(raw, max_bytes=MAX_BYTES), Item | Rejected)
    unmapped = seen_error_types - REASON_BY_ERROR_TYPE.keys()
    assert not unmapped, f"pydantic error types without an explicit reason: {unmapped}"
    assert {"ok", "missing_field", "wrong_type", "invalid_value"} <= outcomes


def test_deeply_nested_json_is_rejected_not_raised() -> None:
    raw = b'{"context": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    assert reason(raw) in {RejectReason.NOT_JSON, RejectReason.WRONG_TYPE}


# --- encoders ---------------------------------------------------------------------------------


def test_event_to_bytes_is_compact_and_keeps_required_fields() -> None:
    event = parse(doc(type="click", watch_seconds=..., context={"device": "web"}))
    assert isinstance(event, Event)
    encoded = orjson.loads(event_to_bytes(event))
    assert encoded == {
        "schema_version": 1,
        "event_id": "e-1",
        "type": "click",
        "user_id": "u-1",
        "item_id": "i-1",
        "ts": NOW - 5_000,
        "context": {"device": "web"},
    }
    assert encoded == event.model_dump(mode="json", exclude_none=True)
    assert b" " not in event_to_bytes(event)


def test_item_round_trip_and_encoding() -> None:
    raw = orjson.dumps(
        {"item_id": "i-9", "categories": ["drama", "fr"], "duration_seconds": 5400, "rating": 4}
    )
    item = parse_item(raw, max_bytes=MAX_BYTES)
    assert isinstance(item, Item)
    assert item.categories == ("drama", "fr")
    assert orjson.loads(item_to_bytes(item)) == {
        "schema_version": 1,
        "item_id": "i-9",
        "categories": ["drama", "fr"],
        "duration_seconds": 5400.0,
    }
    assert parse_item(item_to_bytes(item), max_bytes=MAX_BYTES) == item


ITEM_REJECTS: list[tuple[dict[str, Any] | bytes, RejectReason]] = [
    ({"categories": []}, RejectReason.MISSING_FIELD),
    ({"item_id": "i"}, RejectReason.MISSING_FIELD),
    ({"item_id": "", "categories": []}, RejectReason.INVALID_VALUE),
    ({"item_id": "i", "categories": ["a", ""]}, RejectReason.INVALID_VALUE),
    ({"item_id": "i", "categories": "drama"}, RejectReason.WRONG_TYPE),
    ({"item_id": "i", "categories": ["a", 3]}, RejectReason.WRONG_TYPE),
    ({"item_id": "i", "categories": [None]}, RejectReason.WRONG_TYPE),
    ({"item_id": "i", "categories": [], "published_ts": True}, RejectReason.WRONG_TYPE),
    ({"item_id": "i", "categories": [], "duration_seconds": -1}, RejectReason.NEGATIVE_DURATION),
    ({"item_id": "i", "categories": [], "duration_seconds": 0}, RejectReason.INVALID_VALUE),
    ({"item_id": "i", "categories": [], "schema_version": 2}, RejectReason.UNSUPPORTED_VERSION),
    (b"[]", RejectReason.NOT_OBJECT),
    (b"{", RejectReason.NOT_JSON),
    (b"\xc3\x28", RejectReason.NOT_UTF8),
]


@pytest.mark.parametrize(("value", "expected"), ITEM_REJECTS)
def test_item_reject_reasons(value: dict[str, Any] | bytes, expected: RejectReason) -> None:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    result = parse_item(raw, max_bytes=MAX_BYTES)
    assert isinstance(result, Rejected)
    assert result.reason is expected


# --------------------------------------------------------------------------- length limits
LIMIT_CASES = [
    # (parser, field path, limit): every id and short string of the input contracts
    ("event", ("event_id",), MAX_ID_LENGTH),
    ("event", ("user_id",), MAX_ID_LENGTH),
    ("event", ("item_id",), MAX_ID_LENGTH),
    ("event", ("context", "device"), MAX_CONTEXT_LENGTH),
    ("event", ("context", "locale"), MAX_CONTEXT_LENGTH),
    ("event", ("context", "surface"), MAX_CONTEXT_LENGTH),
    ("item", ("item_id",), MAX_ID_LENGTH),
    ("item", ("creator_id",), MAX_ID_LENGTH),
    ("item", ("title",), MAX_TITLE_LENGTH),
    ("item", ("categories", 0), MAX_CATEGORY_LENGTH),
    ("mute", ("control_id",), MAX_ID_LENGTH),
    ("mute", ("user_id",), MAX_ID_LENGTH),
    ("mute", ("category",), MAX_CATEGORY_LENGTH),
    ("mute_creator", ("creator_id",), MAX_ID_LENGTH),
    ("not_interested", ("item_id",), MAX_ID_LENGTH),
    ("not_interested", ("reason",), MAX_REASON_LENGTH),
    ("declare", ("categories", 0), MAX_CATEGORY_LENGTH),
]


def _limited(
    kind: str, path: tuple[str | int, ...], value: str
) -> Event | Item | Control | Rejected:
    docs: dict[str, dict[str, Any]] = {
        "event": {"event_id": "e", "type": "click", "user_id": "u", "item_id": "i", "ts": NOW,
                  "context": {"device": "tv", "locale": "en", "surface": "home"}},
        "item": {"item_id": "i", "categories": ["A"], "creator_id": "c", "title": "t"},
        "mute": {"control_id": "c", "type": "mute", "user_id": "u", "ts": NOW, "category": "A"},
        "mute_creator": {"control_id": "c", "type": "mute", "user_id": "u", "ts": NOW,
                         "creator_id": "c"},
        "not_interested": {"control_id": "c", "type": "not_interested", "user_id": "u",
                           "ts": NOW, "item_id": "i", "reason": "r"},
        "declare": {"control_id": "c", "type": "declare_interests", "user_id": "u", "ts": NOW,
                    "categories": ["A"]},
    }  # fmt: skip
    doc_ = docs[kind]
    target: Any = doc_
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    raw = orjson.dumps(doc_)
    if kind == "event":
        return parse(raw)
    if kind == "item":
        return parse_item(raw, max_bytes=MAX_BYTES)
    return parse_control(raw, max_bytes=MAX_BYTES)


@pytest.mark.parametrize(("kind", "path", "limit"), LIMIT_CASES)
def test_every_id_and_short_string_has_its_documented_limit(
    kind: str, path: tuple[str | int, ...], limit: int
) -> None:
    at_limit = _limited(kind, path, "é" * limit)  # characters, not bytes
    assert not isinstance(at_limit, Rejected), at_limit
    over = _limited(kind, path, "x" * (limit + 1))
    assert isinstance(over, Rejected) and over.reason is RejectReason.INVALID_VALUE
    assert str(limit) in over.detail and "xxx" not in over.detail  # never echoes the value


def test_limits_are_in_the_exported_json_schemas() -> None:
    event = Event.model_json_schema()
    assert event["properties"]["user_id"]["maxLength"] == MAX_ID_LENGTH
    control = Control.model_json_schema()
    assert control["properties"]["categories"]["anyOf"][0]["maxItems"] == MAX_CATEGORIES


def test_too_many_categories_are_invalid() -> None:
    cats = [f"c{k}" for k in range(MAX_CATEGORIES + 1)]
    result = parse_item(orjson.dumps({"item_id": "i", "categories": cats}), max_bytes=MAX_BYTES)
    assert isinstance(result, Rejected) and result.reason is RejectReason.INVALID_VALUE
    ok = parse_item(orjson.dumps({"item_id": "i", "categories": cats[:-1]}), max_bytes=MAX_BYTES)
    assert isinstance(ok, Item)


def test_item_size_limit() -> None:
    raw = orjson.dumps({"item_id": "i", "categories": ["a" * 100] * 32})
    assert isinstance(parse_item(raw, max_bytes=len(raw)), Item)
    result = parse_item(raw, max_bytes=len(raw) - 1)
    assert isinstance(result, Rejected) and result.reason is RejectReason.TOO_LARGE


def make_recommendation(**overrides: Any) -> Recommendation:
    fields: dict[str, Any] = {
        "user_id": "u-1",
        "items": [
            RecommendedItem(item_id="i-1", score=0.9, reason="affinity:drama"),
            RecommendedItem(item_id="i-2", score=0.5, reason="trending"),
        ],
        "generated_ts": NOW,
        "trigger_event_id": "e-1",
        "trigger_ts": NOW - 40,
        "model_version": "m-1",
    }
    fields.update(overrides)
    return Recommendation(**fields)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"trigger_event_id": None, "trigger_ts": None, "personalized": False}, {"items": []}],
)
def test_recommendation_encoding_matches_the_model(overrides: dict[str, Any]) -> None:
    rec = make_recommendation(**overrides)
    encoded = recommendation_to_bytes(rec)
    assert orjson.loads(encoded) == rec.model_dump(mode="json")
    assert set(orjson.loads(encoded)) == set(Recommendation.model_fields)  # nulls kept
    assert Recommendation.model_validate_json(encoded) == rec
    fast = encode_recommendation(
        rec.user_id,
        [(i.item_id, i.score, i.reason) for i in rec.items],
        generated_ts=rec.generated_ts,
        trigger_event_id=rec.trigger_event_id,
        trigger_ts=rec.trigger_ts,
        model_version=rec.model_version,
        personalized=rec.personalized,
    )
    assert fast == encoded


def test_recommendation_refuses_non_finite_scores() -> None:
    with pytest.raises(ValidationError):
        RecommendedItem(item_id="i", score=math.nan, reason="r")
    with pytest.raises(ValueError, match="finite"):
        encode_recommendation(
            "u",
            [("i", math.inf, "r")],
            generated_ts=NOW,
            trigger_event_id=None,
            trigger_ts=None,
            model_version="m",
        )


def test_recommendation_accepts_numpy_scores() -> None:
    np = pytest.importorskip("numpy")
    item = RecommendedItem(item_id="i", score=np.float32(0.25), reason="r")
    assert type(item.score) is float and item.score == 0.25


# --- dead letters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text_kept"),
    [
        (doc(ts="soon"), True),
        (b"\x00\xff\xfe binary \x80", False),
        (b'{"user_id": "\xe9"}', False),
        (b"", True),
        ("é".encode() * (MAX_ORIGINAL_TEXT_BYTES // 2 + 1), False),  # valid UTF-8 but long
    ],
)
def test_dead_letter_keeps_exact_original_bytes(raw: bytes, text_kept: bool) -> None:
    rejected = parse(raw)
    assert isinstance(rejected, Rejected)
    encoded = dead_letter_bytes(
        raw, rejected, topic="recloop.events", partition=3, offset=1_234, now_ms=NOW
    )
    letter = DeadLetter.model_validate_json(encoded)
    assert base64.b64decode(letter.original_base64, validate=True) == raw
    assert letter.original_text == (raw.decode() if text_kept else None)
    assert letter.reason is rejected.reason and letter.detail == rejected.detail
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "recloop.events",
        3,
        1_234,
    )
    assert letter.dead_lettered_ts == NOW and letter.schema_version == 1
    assert letter.original_size == len(raw) and not letter.original_truncated
    assert set(orjson.loads(encoded)) == set(DeadLetter.model_fields)


def test_dead_letter_truncates_only_huge_originals() -> None:
    raw = b"x" * 1_000
    rejected = Rejected(RejectReason.TOO_LARGE, "big")
    letter = DeadLetter.model_validate_json(
        dead_letter_bytes(
            raw, rejected, topic="t", partition=0, offset=0, now_ms=NOW, max_original_bytes=100
        )
    )
    assert base64.b64decode(letter.original_base64) == raw[:100]
    assert letter.original_truncated and letter.original_size == 1_000
