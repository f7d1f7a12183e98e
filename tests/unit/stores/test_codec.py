"""Redis row formats and the user write script, checked against each other (``pipeline.stores``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
import pytest

from pipeline.events.signals import signal_for
from pipeline.features.state import Interaction, UserContext, UserState
from pipeline.features.update import FeatureParams, apply_event, is_duplicate
from pipeline.stores.codec import (
    FEATURES_SCHEMA_VERSION,
    features_fields,
    history_entry,
    state_from_redis,
)
from pipeline.stores.keys import RedisKeys
from pipeline.stores.users import apply_args

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
CAPS = {"history_cap": 4, "excluded_cap": 5, "events_cap": 5}
PARAMS = FeatureParams(
    half_life_seconds=86_400.0,
    history_size=CAPS["history_cap"],
    excluded_size=CAPS["excluded_cap"],
    dedupe_size=CAPS["events_cap"],
)
CATS = {"m1": ("Drama",), "m2": ("Comedy", "Drama"), "m3": ("Horror",), "m4": ()}


def play(
    state: UserState,
    event_id: str,
    kind: str,
    item: str,
    ts: int,
    watch_seconds: float | None = None,
    context: UserContext | None = None,
) -> bool:
    """Fold an event in as a worker does (duplicates decided first); False for a duplicate."""
    if is_duplicate(state, event_id):
        return False
    signal = signal_for(kind, watch_seconds, 600.0, threshold=0.6)
    apply_event(
        state,
        event_id=event_id,
        event_type=kind,
        item_id=item,
        ts=ts,
        signal=signal,
        categories=CATS.get(item, ()),
        params=PARAMS,
        context=context,
    )
    return True


# --------------------------------------------------------------------------- fake Redis
def _wire(value: Any) -> bytes:
    """What redis-py sends for an argument (every ARGV entry is a bulk string)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def _score(value: float) -> bytes:
    """A sorted-set score as Redis returns it in a script reply (``%.17g``)."""
    return format(value, ".17g").encode()


@dataclass
class UserKeys:
    """The per-user keys of one user that the write script touches, as Python values."""

    features: dict[bytes, bytes] = field(default_factory=dict)
    history: list[bytes] = field(default_factory=list)  # index 0 = head (newest)
    excluded: dict[bytes, float] = field(default_factory=dict)
    events: dict[bytes, float] = field(default_factory=dict)
    controls: dict[bytes, bytes] = field(default_factory=dict)
    meta: dict[bytes, bytes] = field(default_factory=dict)
    experiment: dict[bytes, bytes] = field(default_factory=dict)

    def load(self) -> tuple[Any, ...]:
        """What ``load_user.lua`` returns (HGETALL paired by the store, ZRANGE WITHSCORES)."""
        return (
            dict(self.features),
            list(self.history),
            _zrange(self.excluded),
            _zrange(self.events),
            dict(self.controls),
            dict(self.meta),
            dict(self.experiment),
        )


def _zrange(zset: dict[bytes, float]) -> list[bytes]:
    flat: list[bytes] = []
    for member, score in sorted(zset.items(), key=lambda kv: (kv[1], kv[0])):
        flat += [member, _score(score)]
    return flat


def run_apply_user(db: UserKeys, argv: list[Any]) -> int:
    """Python port of ``apply_user.lua``, reading ARGV as its header documents."""
    a = [_wire(v) for v in argv]
    version = int(db.meta.get(b"version", b"0"))
    if a[1] != b"" and a[1] in db.events:
        return 0
    if version != int(a[0]):
        return -1
    caps = [int(a[3]), int(a[4]), int(a[5])]
    i = 8
    n = int(a[i])
    i += 1
    if n >= 0:  # DEL controls, HSET field value ...
        db.controls = {a[i + 2 * k]: a[i + 2 * k + 1] for k in range(n)}
        i += 2 * n
    n = int(a[i])
    i += 1
    for k in range(n):  # HSET field value ...
        db.features[a[i + 2 * k]] = a[i + 2 * k + 1]
    i += 2 * n
    mode = a[i]
    n = int(a[i + 1])
    i += 2
    if mode == b"replace":  # DEL history
        db.history.clear()
    else:
        assert mode == b"push", mode
    for value in a[i : i + n]:  # LPUSH json ...
        db.history.insert(0, value)
    i += n
    if n:
        del db.history[caps[0] :]  # LTRIM 0 cap-1
    for zset, cap in ((db.excluded, caps[1]), (db.events, caps[2])):
        n = int(a[i])
        i += 1
        for k in range(n):  # ZADD score member ...
            zset[a[i + 2 * k + 1]] = float(a[i + 2 * k])
        i += 2 * n
        if n:  # ZREMRANGEBYRANK 0 -(cap+1): keep the top ``cap``
            ranked = sorted(zset.items(), key=lambda kv: (kv[1], kv[0]))
            for member, _ in ranked[: max(0, len(ranked) - cap)]:
                del zset[member]
    n = int(a[i])
    i += 1
    if n > 0:  # the arm: experiment, variant, first_ms (kept), then values
        arm = {a[i + 2 * k]: a[i + 2 * k + 1] for k in range(n)}
        assert list(arm)[:3] == [b"experiment", b"variant", b"first_ms"]
        stored = db.experiment
        if (stored.get(b"experiment"), stored.get(b"variant")) != (
            arm[b"experiment"],
            arm[b"variant"],
        ):
            stored.clear()
        first = stored.get(b"first_ms", arm[b"first_ms"])
        stored.update(arm)
        stored[b"first_ms"] = first
        i += 2 * n
    assert i == len(a), f"{len(a) - i} arguments left unread"
    db.meta[b"version"] = str(version + 1).encode()
    if a[6] != b"":
        db.meta.update({b"owed": a[6], b"owed_due": a[7]})
    return 1


def save(db: UserKeys, state: UserState, updated_ts: int, ttl: int = 86_400) -> int:
    applied = run_apply_user(db, apply_args(state, updated_ts, ttl_seconds=ttl, **CAPS))
    if applied == 1:
        state.version += 1
    state.mark_clean()
    return applied


def load(db: UserKeys, user_id: str = "u1") -> UserState:
    return state_from_redis(user_id, *db.load())


def _history_state() -> UserState:
    state = UserState("u1")
    play(state, "e1", "watch", "m1", T0, 600.0, UserContext("en-GB", "mobile", "home"))
    play(state, "e2", "click", "m2", T0 + 1_000)
    play(state, "e3", "skip", "m3", T0 + 2_000, 3.0, UserContext(None, "tv", None))
    play(state, "e4", "watch", "m2", T0 + HOUR_MS, 420.0)
    play(state, "e5", "watch", "m4", T0 + 2 * HOUR_MS, 123.4)
    return state


def assert_same_user(loaded: UserState, state: UserState, *, late: bool = False) -> None:
    """``late``: events arrived out of time order, so the exclusion and de-duplication sets
    (kept in arrival order in memory, by event time in Redis) are compared as sets."""
    assert loaded.user_id == state.user_id
    assert (loaded.n_click, loaded.n_skip, loaded.n_watch) == (
        state.n_click,
        state.n_skip,
        state.n_watch,
    )
    assert loaded.completion_sum == state.completion_sum
    assert loaded.affinity == pytest.approx(state.affinity, abs=1e-6)
    assert (loaded.first_ts, loaded.last_ts) == (state.first_ts, state.last_ts)
    assert loaded.context == state.context
    assert len(loaded.history) == len(state.history)
    for got, want in zip(loaded.history, state.history, strict=True):
        assert (got.item_id, got.ts, got.kind, got.completion) == (
            want.item_id,
            want.ts,
            want.kind,
            want.completion,
        )
        assert got.weight == pytest.approx(want.weight, abs=1e-4)
    if late:
        assert loaded.excluded == state.excluded
        assert loaded.seen_events == state.seen_events
    else:
        assert list(loaded.excluded.items()) == list(state.excluded.items())
        assert list(loaded.seen_events.items()) == list(state.seen_events.items())
    assert loaded.skip_rate == pytest.approx(state.skip_rate)
    assert loaded.mean_completion == pytest.approx(state.mean_completion)
    assert [n for n, _ in loaded.top_categories()] == [n for n, _ in state.top_categories()]


# --------------------------------------------------------------------------- features hash
def test_features_fields_public_hash() -> None:
    state = _history_state()
    fields = features_fields(state, T0 + 5)
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["schema_version"] == FEATURES_SCHEMA_VERSION == "1"
    assert (fields["n_click"], fields["n_skip"], fields["n_watch"], fields["n_events"]) == (
        "1",
        "1",
        "3",
        "5",
    )
    assert float(fields["skip_rate"]) == pytest.approx(0.2)
    assert float(fields["mean_completion"]) == pytest.approx(state.mean_completion, abs=1e-6)
    assert float(fields["completion_sum"]) == state.completion_sum
    assert orjson.loads(fields["affinity"]) == pytest.approx(state.affinity, abs=1e-6)
    assert orjson.loads(fields["top_categories"]) == [n for n, _ in state.top_categories(5)]
    assert (fields["first_ts"], fields["last_ts"], fields["updated_ts"]) == (
        str(T0),
        str(T0 + 2 * HOUR_MS),
        str(T0 + 5),
    )
    assert (fields["locale"], fields["device"], fields["surface"]) == ("en-GB", "tv", "home")


def test_features_fields_leave_out_unknown_context() -> None:
    state = UserState("u1")
    play(state, "e1", "click", "m1", T0, context=UserContext(None, "tv", None))
    fields = features_fields(state, T0)
    assert fields["device"] == "tv"
    assert "locale" not in fields and "surface" not in fields


def test_history_entry_layout() -> None:
    h = Interaction("m1", T0, "watch", 0.123456, 0.75)
    assert orjson.loads(history_entry(h)) == ["m1", T0, "watch", 0.1235, 0.75]
    click = Interaction("m2", T0, "click", 0.3)
    assert orjson.loads(history_entry(click)) == ["m2", T0, "click", 0.3, None]


# --------------------------------------------------------------------------- round trip
def test_unknown_user_loads_as_fresh_state() -> None:
    loaded = state_from_redis("nobody", {}, [], [], [], {}, {})
    assert loaded == UserState("nobody")


def test_state_round_trip_through_redis_encodings() -> None:
    state = _history_state()
    db = UserKeys()
    assert save(db, state, T0 + 5) == 1
    assert db.history[0] == history_entry(state.history[-1])  # stored newest first
    assert all(isinstance(k, bytes) for k in db.features)
    assert_same_user(load(db), state)


def test_round_trip_of_several_batches_applies_the_same_caps() -> None:
    state = UserState("u1")
    db = UserKeys()
    ts = T0
    for batch in range(4):
        for k in range(3):
            ts += 60_000
            n = batch * 3 + k
            play(state, f"e{n}", "watch", f"i{n % 7}", ts, 60.0 * (n % 11))
        save(db, state, ts)
    assert len(state.history) == CAPS["history_cap"]
    assert len(state.excluded) == CAPS["excluded_cap"]
    loaded = load(db)
    assert_same_user(loaded, state)
    assert loaded.new_interactions == [] and loaded.new_events == []


def test_loaded_state_keeps_deduplicating_and_capping() -> None:
    state = _history_state()
    db = UserKeys()
    save(db, state, T0)
    loaded = load(db)
    assert not play(loaded, "e5", "watch", "m4", T0 + 2 * HOUR_MS, 123.4)
    assert play(loaded, "e6", "click", "m9", T0 + 3 * HOUR_MS)
    assert play(state, "e6", "click", "m9", T0 + 3 * HOUR_MS)
    assert list(loaded.excluded) == list(state.excluded)  # the oldest dropped in both


def test_retried_write_is_ignored() -> None:
    state = _history_state()
    db = UserKeys()
    argv = apply_args(state, T0, ttl_seconds=60, **CAPS)
    assert run_apply_user(db, argv) == 1
    snapshot = (dict(db.features), list(db.history), dict(db.excluded), dict(db.events))
    assert run_apply_user(db, argv) == 0
    assert (db.features, db.history, db.excluded, db.events) == snapshot


def test_a_write_from_a_stale_version_conflicts_and_changes_nothing() -> None:
    state = _history_state()
    db = UserKeys()
    assert save(db, state, T0) == 1
    stale = load(db)
    fresh = load(db)
    play(fresh, "e6", "click", "m9", T0 + 3 * HOUR_MS)
    assert save(db, fresh, T0 + 1) == 1  # another worker wrote the user
    play(stale, "e7", "click", "m8", T0 + 3 * HOUR_MS)
    before = (dict(db.features), list(db.history), dict(db.events), dict(db.meta))
    assert run_apply_user(db, apply_args(stale, T0 + 2, ttl_seconds=60, **CAPS)) == -1
    assert (db.features, db.history, db.events, db.meta) == before
    reloaded = load(db)
    assert reloaded.version == 2 and "e6" in reloaded.seen_events


def test_owed_refresh_and_controls_are_recorded_with_the_write() -> None:
    state = _history_state()
    db = UserKeys()
    argv = apply_args(state, T0, ttl_seconds=60, owed=("e5 7", T0 + 500), controls=True, **CAPS)
    assert run_apply_user(db, argv) == 1
    loaded = load(db)
    assert loaded.owed == "e5 7" and db.meta[b"owed_due"] == str(T0 + 500).encode()
    assert db.controls[b"personalization"] == b"on"


def test_write_without_new_events_only_updates_features() -> None:
    state = _history_state()
    db = UserKeys()
    save(db, state, T0)
    argv = apply_args(state, T0 + 99, ttl_seconds=60, **CAPS)
    assert argv[1] == ""  # nothing to de-duplicate against
    assert run_apply_user(db, argv) == 1
    assert db.features[b"updated_ts"] == str(T0 + 99).encode()
    assert_same_user(load(db), state)


# --------------------------------------------------------------------------- event-time order
def test_late_event_rewrites_the_stored_history_in_event_time_order() -> None:
    state = _history_state()  # m1, m2, m3, m2, m4 by time; cap 4 keeps the last four
    db = UserKeys()
    save(db, state, T0)
    play(state, "late", "watch", "m9", T0 + 1_500, 600.0)  # between m2 (T0+1s) and m3
    assert state.history_rewritten
    argv = apply_args(state, T0 + 9, ttl_seconds=60, **CAPS)
    assert "replace" in argv
    save(db, state, T0 + 9)
    assert [h.item_id for h in state.history] == ["m9", "m3", "m2", "m4"]
    assert_same_user(load(db), state, late=True)
    assert [orjson.loads(r)[0] for r in db.history] == ["m4", "m2", "m3", "m9"]  # newest first
    play(state, "next", "click", "m1", T0 + 3 * HOUR_MS)  # in order again: appended
    assert not state.history_rewritten and "push" in apply_args(state, 0, ttl_seconds=1, **CAPS)
    save(db, state, T0 + 10)
    assert_same_user(load(db), state, late=True)


def test_late_event_older_than_the_whole_history_is_not_kept() -> None:
    state = _history_state()
    db = UserKeys()
    save(db, state, T0)
    play(state, "ancient", "watch", "m9", 5, 600.0)
    assert "m9" not in [h.item_id for h in state.history]
    assert "m9" in state.excluded  # still never recommended again
    save(db, state, T0 + 1)
    loaded = load(db)
    assert [(h.item_id, h.ts) for h in loaded.history] == [(h.item_id, h.ts) for h in state.history]
    assert (
        (loaded.first_ts, loaded.last_ts)
        == (state.first_ts, state.last_ts)
        == (5, T0 + 2 * HOUR_MS)
    )


def test_history_stored_in_arrival_order_by_an_earlier_version_loads_by_event_time() -> None:
    db = UserKeys()
    rows = [Interaction("new", T0 + 10, "watch", 1.0, 1.0), Interaction("old", T0, "watch", 0.9),
            Interaction("late", T0 - HOUR_MS, "watch", 0.8)]  # arrival order  # fmt: skip
    db.history = [history_entry(h) for h in reversed(rows)]  # LPUSHed: head = last arrived
    loaded = load(db)
    assert [h.item_id for h in loaded.history] == ["late", "old", "new"]
    assert [h.item_id for h in loaded.positives(2)] == ["old", "new"]


# --------------------------------------------------------------------------- script ARGV
def _lua_argv_header() -> list[str]:
    text = resources.files("pipeline.stores").joinpath("apply_user.lua").read_text("utf-8")
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("-- ARGV:"))
    header = lines[start].removeprefix("-- ARGV:")
    for line in lines[start + 1 :]:
        if not re.match(r"--\s{2,}\S", line):
            break
        header += " " + line.removeprefix("--")
    return [token.strip() for token in header.split(",") if token.strip()]


def test_lua_header_documents_the_fixed_arguments() -> None:
    names = _lua_argv_header()
    assert names[:9] == [
        "version",
        "first_new_event_id",
        "ttl",
        "history_cap",
        "excluded_cap",
        "events_cap",
        "owed_trigger",
        "owed_due",
        "n_controls (-1: leave the controls alone)",
    ]
    assert names[names.index("n_history") - 1] == "history_mode"
    assert [n for n in names if n.startswith("n_")] == [
        "n_controls (-1: leave the controls alone)",
        "n_fields",
        "n_history",
        "n_excluded",
        "n_events",
        "n_arm (0: leave the experiment arm alone)",
    ]


def test_apply_args_follow_the_lua_header() -> None:
    state = _history_state()
    state.mark_clean()
    play(state, "e6", "watch", "m1", T0 + 3 * HOUR_MS, 600.0)
    play(state, "e7", "skip", "m3", T0 + 3 * HOUR_MS + 5, 2.0)
    argv = apply_args(
        state, T0 + 9, ttl_seconds=3_600, history_cap=50, excluded_cap=70, events_cap=80
    )
    assert argv[:9] == [0, "e6", 3_600, 50, 70, 80, "", 0, -1]
    fields = features_fields(state, T0 + 9)
    i = 9
    assert argv[i] == len(fields)
    pairs = argv[i + 1 : i + 1 + 2 * len(fields)]
    assert dict(zip(pairs[::2], pairs[1::2], strict=True)) == fields
    i += 1 + 2 * len(fields)
    assert argv[i : i + 2] == ["push", 2]  # history_mode, n_history
    assert argv[i + 2 : i + 4] == [history_entry(h) for h in state.new_interactions]
    i += 4
    assert argv[i : i + 5] == [2, T0 + 3 * HOUR_MS, "m1", T0 + 3 * HOUR_MS + 5, "m3"]
    i += 5
    assert argv[i : i + 5] == [2, 6, "e6", 7, "e7"]  # ids scored by arrival (e1-e5 before)
    assert argv[i + 5] == 0  # n_arm: no experiment arm changed
    assert len(argv) == i + 6


# --------------------------------------------------------------------------- keys
def test_documented_key_layout() -> None:
    keys = RedisKeys()
    assert keys.features("42") == "recloop:user:{42}:features"
    assert keys.recs("42") == "recloop:user:{42}:recs"
    assert keys.history("u-7") == "recloop:user:{u-7}:history"
    assert keys.excluded("u-7") == "recloop:user:{u-7}:excluded"
    assert keys.events("u-7") == "recloop:user:{u-7}:events"


def test_namespace_prefixes_every_key() -> None:
    keys = RedisKeys(namespace="test-1a2b")
    assert keys.features("42") == "test-1a2b:user:{42}:features"
    assert keys.recs("42") == "test-1a2b:user:{42}:recs"
    others = [
        keys.model_log,
        keys.model_version,
        keys.model_snapshot_latest,
        keys.model_snapshot_lock,
        keys.active(3),
        keys.owed(3),
        keys.segment(3, "locale", "en-GB"),
        keys.experiment(3, "e", "a"),
        keys.model_snapshot(3),
        keys.trending("locale:en-GB"),
    ]
    assert all(k.startswith("test-1a2b:") for k in others)
    assert len(set(others)) == len(others)


def test_user_keys_share_one_hash_tag() -> None:
    keys = RedisKeys()
    user_keys = keys.user_keys("a:b")
    assert len(user_keys) == len(set(user_keys)) == 8
    assert keys.features("a:b") in user_keys and keys.recs("a:b") in user_keys
    for key in user_keys:
        # the cluster slot is computed from the text between the first { and }
        assert key[key.index("{") + 1 : key.index("}")] == "a:b"
    assert RedisKeys().features("1") != RedisKeys().features("11")


def test_partition_keys_share_the_partition_hash_tag() -> None:
    keys = RedisKeys()
    for key in (
        keys.active(5),
        keys.owed(5),
        keys.dormant(5),
        keys.forgotten(5),
        keys.segments(5),
        keys.segment(5, "locale", "x{y}"),
        keys.experiment(5, "exp", "arm"),
        keys.experiment_exposed(5, "exp", "arm"),
    ):
        assert key[key.index("{") + 1 : key.index("}")] == "5", key


def test_forget_token_names_no_user_and_depends_on_the_namespace() -> None:
    token = RedisKeys().forget_token("alice")
    assert "alice" not in token and len(token) == 32
    assert token == RedisKeys().forget_token("alice") != RedisKeys("other").forget_token("alice")


def test_the_experiment_arm_is_written_with_the_user_and_keeps_its_first_exposure() -> None:
    from pipeline.features.state import ArmState

    db = UserKeys()
    state = _history_state()
    state.arm = ArmState("exp", "b", first_ms=T0, values={"hits": 2, "events": 5},
                         returned={86_400}, changed=True)  # fmt: skip
    db.experiment = {
        b"experiment": b"exp",
        b"variant": b"b",
        b"first_ms": str(T0 - 5).encode(),
        b"shown": b'["m1"]',
        b"shown_ms": str(T0).encode(),
    }  # as the list wrote it
    assert save(db, state, T0) == 1 and not state.arm.changed
    loaded = load(db)
    assert loaded.arm is not None
    assert loaded.arm.values == {"hits": 2, "events": 5} and loaded.arm.returned == {86_400}
    assert loaded.arm.first_ms == T0 - 5 and loaded.arm.shown == frozenset({"m1"})
    play(state, "e9", "click", "m1", T0 + 9)  # no arm change: the hash is left alone
    db.experiment[b"hits"] = b"99"
    save(db, state, T0 + 9)
    assert db.experiment[b"hits"] == b"99"
    state.arm = ArmState("exp2", "a", first_ms=T0 + 10, values={"events": 1}, changed=True)
    play(state, "e10", "click", "m2", T0 + 10)
    save(db, state, T0 + 10)  # another arm: the old values go
    assert b"hits" not in db.experiment and db.experiment[b"first_ms"] == str(T0 + 10).encode()


def test_model_log_wire_form_is_to_json() -> None:
    from pipeline.model.record import LearnRecord
    from pipeline.stores.model_log import wire

    records = [
        LearnRecord("i1", 1_764_360_000_000, "watch", 1.0, 0.8, ("locale:en",), (("i2", 0.5),)),
        LearnRecord("i3", 5, "click", 0.25, None, (), (), first=False, positive=True, stage=2),
    ]
    for r in records:
        assert orjson.dumps(wire(r)) == orjson.dumps(r.to_json())
