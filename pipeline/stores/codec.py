"""Every row format recloop stores in Redis, encoded and decoded in one place (pure).

The key layout is in ``pipeline.stores.keys``; this module says what the values look like:

===============================  ==========================================================
value                            format
===============================  ==========================================================
``...:features`` hash            ``features_fields`` (all strings, README "Redis keys")
``...:history`` list entry       ``[item_id, ts, type, weight, completion]`` (JSON), newest
                                 (by event time) first
``...:excluded``/``:events``     sorted sets ``member -> ts`` / ``member -> arrival``
``...:controls`` hash            ``controls_fields``
``...:meta`` hash                ``version``, ``owed`` (``"<event_id> <ts>@<received_ms>"``),
                                 ``owed_due``
``...:experiment`` hash          ``experiment``, ``variant``, ``first_ms``, ``shown`` (JSON
                                 item ids), ``shown_ms``, ``lists``, the values and
                                 ``returned:<s>`` flags (``experiment_outcomes.arm_fields``)
``recloop:p:{P}:owed`` member    ``[user_id, event_id, ts, received_ms]`` (JSON)
``recloop:model:snapshot:N``     zlib-compressed JSON with a ``format`` number; from
                                 format 5 its ``cooc.rows`` counts the parts below
``...:snapshot:N:rows:K``        part K of the neighbour rows: a 16-byte head (``RLN5``,
                                 rows uint32, entries uint64) and five little-endian
                                 arrays, uncompressed (``encode_rows``)
===============================  ==========================================================

Readers (the worker, the CLI, the API) decode through these functions, so a format changes
in one place and a test covers each round trip.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import orjson

from pipeline.features.controls import UserControls
from pipeline.features.segments import segments_of
from pipeline.features.state import Interaction, UserContext, UserState
from pipeline.lists.build import Trigger
from pipeline.lists.experiment_outcomes import arm_from_fields
from pipeline.model.snapshot import (
    PART_ENTRIES,
    READABLE_FORMATS,
    SNAPSHOT_FORMAT,
    NeighborColumns,
    row_cuts,
)

FEATURES_SCHEMA_VERSION = "1"


class SnapshotFormatError(ValueError):
    """A stored model snapshot is in a format this version cannot read."""


# --------------------------------------------------------------------------- features
def features_fields(state: UserState, updated_ts: int) -> dict[str, str]:
    """The public ``features`` hash of a user (every value a string, as Redis returns it)."""
    fields = {
        "schema_version": FEATURES_SCHEMA_VERSION,
        "n_click": str(state.n_click),
        "n_skip": str(state.n_skip),
        "n_watch": str(state.n_watch),
        "n_events": str(state.n_events),
        "skip_rate": f"{state.skip_rate:.6f}",
        "mean_completion": f"{state.mean_completion:.6f}",
        "completion_sum": repr(state.completion_sum),
        "affinity": orjson.dumps({k: round(v, 6) for k, v in state.affinity.items()}).decode(),
        "top_categories": orjson.dumps([name for name, _ in state.top_categories(5)]).decode(),
        "first_ts": str(state.first_ts),
        "last_ts": str(state.last_ts),
        "updated_ts": str(updated_ts),
    }
    for name in ("locale", "device", "surface"):
        value = getattr(state.context, name)
        if value:
            fields[name] = value
    for dim, value in segments_of(state).items():
        fields[f"segment_{dim}"] = value
    return fields


def text_fields(raw: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    """A hash as Redis returned it (bytes or str) with ``str`` keys and values."""
    return {_text(k): _text(v) for k, v in raw.items()}


def pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """A hash returned by ``HGETALL`` inside Lua: a flat ``[field, value, ...]`` list."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def score_pairs(reply: Sequence[Any]) -> list[tuple[bytes, float]]:
    """A ``WITHSCORES`` reply as ``(member, score)`` pairs, whichever shape the client gave.

    >>> score_pairs([b"a", b"1", b"b", b"2.5"]) == score_pairs([(b"a", 1.0), [b"b", 2.5]])
    True
    """
    if reply and isinstance(reply[0], list | tuple):
        return [(bytes(m), float(s)) for m, s in reply]
    return [(bytes(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]


def scored(flat: Sequence[bytes]) -> dict[str, int]:
    """``[member, score, member, score, ...]`` (ascending) as an ordered ``member -> score``."""
    return {flat[i].decode(): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}


# --------------------------------------------------------------------------- history
def history_entry(h: Interaction) -> bytes:
    """History list entry: ``[item_id, ts, type, weight, completion]``.

    >>> history_entry(Interaction("m1", 5, "watch", 0.9, 1.0))
    b'["m1",5,"watch",0.9,1.0]'
    """
    return orjson.dumps([h.item_id, h.ts, h.kind, round(h.weight, 4), h.completion])


def history_row(raw: bytes | str) -> Interaction:
    """Inverse of ``history_entry``.

    >>> history_row(b'["m1",5,"watch",0.9,1.0]')
    Interaction(item_id='m1', ts=5, kind='watch', weight=0.9, completion=1.0)
    """
    item_id, ts, kind, weight, completion = orjson.loads(raw)
    return Interaction(
        str(item_id), int(ts), str(kind), float(weight), None if completion is None else completion
    )


def history_rows(raw: Sequence[bytes]) -> list[Interaction]:
    """A stored history (newest first, as kept in Redis), oldest first as ``UserState`` holds it.

    Ordered by event time (ties in stored order): earlier versions stored arrival order, in
    which a late old event sat among the newest.

    >>> stored = [b'["late",1,"watch",1.0,1.0]', b'["a",5,"click",0.3,null]']
    >>> [h.item_id for h in history_rows(stored)]
    ['late', 'a']
    """
    if not raw:
        return []
    # one parse of the whole list: a history is read whenever a user's state is not cached
    rows = orjson.loads(b"[" + b",".join(reversed(raw)) + b"]")
    history = list(map(Interaction._make, rows))
    history.sort(key=_event_time)
    return history


_event_time = attrgetter("ts")


def history_json(h: Interaction) -> dict[str, Any]:
    """A history entry as the CLI and the API show it."""
    return {
        "item_id": h.item_id,
        "ts": h.ts,
        "type": h.kind,
        "weight": h.weight,
        "completion": h.completion,
    }


# --------------------------------------------------------------------------- state
def state_from_redis(
    user_id: str,
    fields: Mapping[bytes, bytes],
    history: Sequence[bytes],
    excluded: Sequence[bytes],
    events: Sequence[bytes],
    controls: Mapping[bytes, bytes] | None = None,
    meta: Mapping[bytes, bytes] | None = None,
    experiment: Mapping[bytes, bytes] | None = None,
) -> UserState:
    """Rebuild a ``UserState`` from what ``load_user.lua`` returns (flat WITHSCORES lists)."""
    f = text_fields(fields)
    state = UserState(user_id)
    if f:
        state.n_click = int(f.get("n_click", 0))
        state.n_skip = int(f.get("n_skip", 0))
        state.n_watch = int(f.get("n_watch", 0))
        state.completion_sum = float(f.get("completion_sum", 0.0))
        state.affinity = {
            str(k): float(v) for k, v in orjson.loads(f.get("affinity", "{}")).items()
        }
        state.first_ts = int(f.get("first_ts", 0))
        state.last_ts = int(f.get("last_ts", 0))
        state.context = UserContext(f.get("locale"), f.get("device"), f.get("surface"))
        state.segments = segments_from_fields(f)
    state.history = history_rows(history)
    state.excluded = scored(excluded)
    state.seen_events = scored(events)
    state.controls = controls_from_fields(text_fields(controls or {}))
    m = text_fields(meta or {})
    state.version = int(m.get("version", 0))
    state.owed = m.get("owed")
    state.arm, _ = arm_from_fields(text_fields(experiment or {}))
    return state


def segments_from_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """``dimension -> value`` from a features hash's ``segment_*`` fields."""
    return {
        name[len("segment_") :]: value
        for name, value in fields.items()
        if name.startswith("segment_")
    }


# --------------------------------------------------------------------------- controls
def controls_fields(controls: UserControls) -> dict[str, str]:
    """The documented ``controls`` hash (README "Redis keys").

    Mutes are JSON lists, oldest first (the order that decides which mute a full list
    drops); lists stored sorted by earlier versions read back the same way.
    """
    return {
        "muted_categories": orjson.dumps(list(controls.muted_categories)).decode(),
        "muted_creators": orjson.dumps(list(controls.muted_creators)).decode(),
        "muted_items": orjson.dumps(list(controls.muted_items)).decode(),
        "not_interested": orjson.dumps(controls.not_interested).decode(),
        "declared_interests": orjson.dumps(list(controls.declared)).decode(),
        "declared_at_events": str(controls.declared_at_events),
        "personalization": "on" if controls.personalization else "off",
        "updated_ts": str(controls.updated_ts),
    }


def controls_from_fields(fields: Mapping[str, str]) -> UserControls:
    """Inverse of ``controls_fields`` (missing fields take their defaults).

    >>> stored = controls_fields(UserControls(muted_categories={"News": None, "Arts": None}))
    >>> stored["muted_categories"], list(controls_from_fields(stored).muted_categories)
    ('["News","Arts"]', ['News', 'Arts'])
    """
    if not fields:
        return UserControls()
    return UserControls(
        muted_categories=dict.fromkeys(orjson.loads(fields.get("muted_categories", "[]"))),
        muted_creators=dict.fromkeys(orjson.loads(fields.get("muted_creators", "[]"))),
        muted_items=dict.fromkeys(orjson.loads(fields.get("muted_items", "[]"))),
        not_interested=dict(orjson.loads(fields.get("not_interested", "{}"))),
        declared=tuple(orjson.loads(fields.get("declared_interests", "[]"))),
        declared_at_events=int(fields.get("declared_at_events", 0)),
        personalization=fields.get("personalization", "on") != "off",
        updated_ts=int(fields.get("updated_ts", 0)),
    )


# --------------------------------------------------------------------------- triggers
def encode_trigger(trigger: Trigger) -> str:
    """``"<event_id> <ts>@<received_ms>"``: how an owed refresh's trigger is stored.

    The receive time was added after the first release, which stored ``"<event_id> <ts>"``
    (still written for a trigger without one). The two forms cannot be confused whatever the
    event id holds: the text after the last space is digits in the first, ``digits@digits``
    in the second.

    >>> encode_trigger(Trigger("e1", 5, 7)), encode_trigger(Trigger("e1", 5))
    ('e1 5@7', 'e1 5')
    """
    if trigger.received_ms is None:
        return f"{trigger.event_id} {trigger.ts}"
    return f"{trigger.event_id} {trigger.ts}@{trigger.received_ms}"


def decode_trigger(raw: bytes | str) -> Trigger:
    """Inverse of ``encode_trigger`` (both forms).

    >>> decode_trigger(b"an id 5@7"), decode_trigger(b"e1 5")
    (Trigger(event_id='an id', ts=5, received_ms=7), Trigger(event_id='e1', ts=5, received_ms=None))
    """
    event_id, _, tail = _text(raw).rpartition(" ")
    ts, at, received = tail.partition("@")
    return Trigger(event_id, int(ts), int(received) if at else None)


def owed_member(user_id: str, trigger: str) -> bytes:
    """Member of the owed-refresh index: the user and the encoded trigger it must reflect.

    One member per (user, trigger), so settling one refresh can never remove a newer one.

    >>> owed_member("u1", "e1 5@7")
    b'["u1","e1",5,7]'
    """
    event = decode_trigger(trigger)
    if event.received_ms is None:  # as stored before receipt times were kept
        return orjson.dumps([user_id, event.event_id, event.ts])
    return orjson.dumps([user_id, event.event_id, event.ts, event.received_ms])


def owed_from_member(raw: bytes | str) -> tuple[str, Trigger]:
    """Inverse of ``owed_member``.

    >>> owed_from_member(b'["u1","e1",5,7]')
    ('u1', Trigger(event_id='e1', ts=5, received_ms=7))
    >>> owed_from_member(b'["u1","e1",5]')  # written before receipt times were kept
    ('u1', Trigger(event_id='e1', ts=5, received_ms=None))
    """
    user_id, event_id, ts, *rest = orjson.loads(raw)
    received = rest[0] if rest else None
    return str(user_id), Trigger(
        str(event_id), int(ts), None if received is None else int(received)
    )


def owed_pattern(user_id: str) -> bytes:
    r"""A ``ZSCAN MATCH`` pattern for every owed-index member of a user (glob-escaped).

    >>> owed_pattern("u*1") == rb'\["u\*1",*'
    True
    """
    prefix = orjson.dumps([user_id])[:-1] + b","
    escaped = bytearray()
    for byte in prefix:
        if byte in b"*?[]\\":
            escaped += b"\\"
        escaped.append(byte)
    return bytes(escaped) + b"*"


# --------------------------------------------------------------------------- snapshots
_NUMPY = orjson.OPT_SERIALIZE_NUMPY  # 1-d numeric arrays as JSON arrays (as ``tolist()``)
_PART_MAGIC = b"RLN5"  # a format-5 neighbour part: magic, rows, entries, then the arrays
_PART_HEAD = struct.Struct("<4sIQ")
# rows, lengths, pruned (per row), ids, weights (per entry), little-endian
_PART_DTYPES = ("<i4", "<i4", "u1", "<i4", "<f4")


def encode_snapshot(doc: Mapping[str, Any]) -> tuple[bytes, list[bytes]]:
    """A model snapshot document as stored: its header and its neighbour parts.

    The header is zlib-compressed JSON (never a pickle); from format 5 its ``cooc.rows``
    only counts the parts (``encode_header``), each written by ``encode_rows``, so no single
    value nears Redis's 512 MB limit however many pairs the model holds. The header is
    compressed at level 1 (2.4x faster than level 3, for 2 % more bytes, measured on the
    format-4 documents).
    """
    rows = doc.get("cooc", {}).get("rows")
    if not isinstance(rows, NeighborColumns):
        return zlib.compress(orjson.dumps(doc, option=_NUMPY), 1), []
    ends = np.concatenate(([0], np.cumsum(rows.lengths, dtype=np.int64)))
    parts = [
        encode_rows(
            NeighborColumns(
                rows.rows[first:last],
                rows.lengths[first:last],
                rows.ids[ends[first] : ends[last]],
                rows.weights[ends[first] : ends[last]],
                rows.pruned[first:last],
            )
        )
        for first, last in row_cuts(rows.lengths, PART_ENTRIES)
    ]
    summary = {"parts": len(parts), "rows": int(rows.rows.shape[0]), "entries": rows.entries}
    return encode_header(doc, summary), parts


def encode_header(doc: Mapping[str, Any], summary: Mapping[str, int]) -> bytes:
    """A format-5 header: ``doc`` with ``cooc.rows`` = ``summary`` (parts, rows, entries)."""
    cooc = {**doc["cooc"], "rows": dict(summary)}
    packer = zlib.compressobj(1)
    out = [packer.compress(piece) for piece in json_pieces({**doc, "cooc": cooc})]
    out.append(packer.flush())
    return b"".join(out)


def encode_rows(part: NeighborColumns) -> bytes:
    """One neighbour part: a 16-byte head and five little-endian arrays, not compressed.

    zlib saved 7 % of a part's bytes (float32 weights hardly compress) for ~0.2 s of CPU
    per million entries; a snapshot's parts are written raw.
    """
    head = _PART_HEAD.pack(_PART_MAGIC, part.rows.shape[0], part.entries)
    arrays = (part.rows, part.lengths, part.pruned, part.ids, part.weights)
    return head + b"".join(
        np.ascontiguousarray(a, dtype=t).tobytes()
        for a, t in zip(arrays, _PART_DTYPES, strict=True)
    )


def decode_rows(raw: bytes) -> NeighborColumns:
    """Inverse of ``encode_rows``; refuses a part whose sizes do not add up."""
    if len(raw) < _PART_HEAD.size:
        msg = "model snapshot part too short"
        raise SnapshotFormatError(msg)
    magic, rows, entries = _PART_HEAD.unpack_from(raw)
    if magic != _PART_MAGIC or len(raw) != _PART_HEAD.size + 9 * rows + 8 * entries:
        msg = f"malformed model snapshot part ({len(raw)} bytes, {rows} rows, {entries} entries)"
        raise SnapshotFormatError(msg)
    arrays, at = [], _PART_HEAD.size
    for count, dtype in zip((rows, rows, rows, entries, entries), _PART_DTYPES, strict=True):
        arrays.append(np.frombuffer(raw, dtype=dtype, count=count, offset=at))
        at += np.dtype(dtype).itemsize * count
    ids, lengths, pruned, nbrs, weights = arrays
    return NeighborColumns(
        ids.astype(np.int32),
        lengths.astype(np.int32),
        nbrs.astype(np.int32),
        weights.astype(np.float32),
        pruned.astype(bool),
    )


def json_pieces(value: Any, slice_items: int = 50_000) -> Iterator[bytes]:
    """``orjson.dumps(value)`` in pieces, long lists dumped ``slice_items`` at a time.

    The pieces join to the same bytes as one call; but one ``orjson.dumps`` holds the GIL
    throughout (~350 ms for a million-item header), and so does joining 100+ MB of pieces,
    which stalls the event loop even from a thread. Pieces fed one by one to a
    ``zlib.compressobj`` (which lets the GIL go) never hold it for long.

    >>> v = {"a": list(range(7)), "b": [{"c": [1.5, None]}, "x"], "d": (), "e": np.arange(5.0)}
    >>> b"".join(json_pieces(v, 3)) == orjson.dumps({**v, "e": v["e"].tolist()})
    True
    """
    if isinstance(value, dict):
        yield b"{"
        for k, (key, v) in enumerate(value.items()):
            yield (b"," if k else b"") + orjson.dumps(str(key)) + b":"
            yield from json_pieces(v, slice_items)
        yield b"}"
    elif isinstance(value, list | tuple | np.ndarray) and len(value) > slice_items:
        yield b"["
        for i in range(0, len(value), slice_items):
            chunk = orjson.dumps(value[i : i + slice_items], option=_NUMPY)
            yield (b"," if i else b"") + chunk[1:-1]
        yield b"]"
    else:
        yield orjson.dumps(value, option=_NUMPY)


def decode_snapshot(blob: bytes, parts: Sequence[bytes] | None = None) -> dict[str, Any]:
    """Inverse of ``encode_snapshot``; refuses a format this version does not know.

    A format-5 header's ``cooc.rows`` becomes ``NeighborColumns`` when its ``parts`` are
    given, in order; without them it stays the summary (readers of the catalogue only).

    >>> decode_snapshot(*encode_snapshot({"format": SNAPSHOT_FORMAT}))["format"] == SNAPSHOT_FORMAT
    True
    """
    doc: dict[str, Any] = orjson.loads(zlib.decompress(blob))
    if doc.get("format") not in READABLE_FORMATS:
        readable = ", ".join(str(f) for f in READABLE_FORMATS)
        msg = (
            f"unsupported model snapshot format {doc.get('format')!r}; this version reads "
            f"{readable} (writes {SNAPSHOT_FORMAT}): upgrade the reader or wait for the next "
            "snapshot"
        )
        raise SnapshotFormatError(msg)
    summary = snapshot_parts(doc)
    if parts is not None and summary is not None:
        if len(parts) != summary["parts"]:
            msg = f"model snapshot has {summary['parts']} parts, {len(parts)} given"
            raise SnapshotFormatError(msg)
        rows = NeighborColumns.concat([decode_rows(p) for p in parts])
        if rows.rows.shape[0] != summary["rows"] or rows.entries != summary["entries"]:
            msg = "model snapshot parts do not hold the rows their header counts"
            raise SnapshotFormatError(msg)
        doc["cooc"]["rows"] = rows
    return doc


def snapshot_parts(doc: Mapping[str, Any]) -> dict[str, int] | None:
    """A decoded format-5 header's part summary (``parts``, ``rows``, ``entries``), else None."""
    rows = doc.get("cooc", {}).get("rows") if doc.get("format", 0) >= 5 else None
    if not isinstance(rows, dict):
        return None
    return {k: int(rows[k]) for k in ("parts", "rows", "entries")}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
