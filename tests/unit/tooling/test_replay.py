"""The quality replay: any time span, the usual most-popular baseline, halves."""

from __future__ import annotations

import math
import random
from pathlib import Path

import orjson
import pytest

from pipeline.model.models import SharedModels
from pipeline.model.record import LearnRecord
from pipeline.tooling.replay import ReplayConfig, replay, replay_files
from schemas.events import Event

MINUTE = 60_000
YEAR = 365 * 86_400_000
T0 = 788_918_400_000  # 1995-01-01
DURATION = 6_000.0


def _event(n: int, user: str, item: str, ts: int, kind: str = "watch") -> dict[str, object]:
    doc: dict[str, object] = {
        "event_id": f"e{n}",
        "type": kind,
        "user_id": user,
        "item_id": item,
        "ts": ts,
        "duration_seconds": DURATION,
    }
    if kind == "watch":
        doc["watch_seconds"] = DURATION
    return doc


def _thirty_years() -> list[dict[str, object]]:
    """Bursts of events minutes apart, the bursts years and decades apart (30 years in all)."""
    bursts = [0, 1, 2, 12, 13, 29, 30]  # years after T0; 1 -> 12 and 13 -> 29 are decades
    docs: list[dict[str, object]] = []
    for b, year in enumerate(bursts):
        start = T0 + year * YEAR
        for u in range(6):
            for k in range(4):
                item = f"i{(u + k + b) % 9}"
                ts = start + (u * 4 + k) * MINUTE
                docs.append(_event(len(docs), f"u{u}-{b % 3}", item, ts))
    return docs


def test_a_file_spanning_thirty_years_replays_without_overflow(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    docs = _thirty_years()
    assert docs[-1]["ts"] - docs[0]["ts"] >= 30 * YEAR  # type: ignore[operator]
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    report = replay_files(path, None, ReplayConfig())
    assert report["events"] == len(docs)
    positives = report["positives"]
    assert isinstance(positives, int) and positives > 0
    for name in ("model", "most_popular", "recent_popular"):
        metrics = report[name]
        assert isinstance(metrics, dict)
        assert all(math.isfinite(v) for v in metrics.values())
    assert report["model"]["hit_rate"] > 0  # type: ignore[index]


def test_models_stay_finite_over_decades_and_minutes() -> None:
    """Every forward-decayed store rebases: values stay finite whatever the span."""
    models = SharedModels()
    ts = T0
    for step, gap in enumerate([MINUTE, 20 * YEAR, MINUTE, 10 * YEAR, 1, 30 * YEAR]):
        ts += gap
        models.apply(LearnRecord(f"i{step}", ts, "watch", 1.0, 1.0, (), (("i0", 1.0),)))
    assert math.isfinite(models.stats.popularity_max)
    assert math.isfinite(models.stats.trend_max)
    assert all(math.isfinite(w) for _, _, w in models.cooc.pairs())


def test_most_popular_counts_users_not_events() -> None:
    """A rating converted to a click plus a watch counts once, like one from another user."""
    docs = [
        _event(0, "a", "x", T0, "click"),  # one user, two events on x
        _event(1, "a", "x", T0 + 1),
        _event(2, "b", "y", T0 + 2),  # two users on y
        _event(3, "c", "y", T0 + 3),
        _event(4, "d", "y", T0 + 4),  # the probe: y (2 users) beats x (1 user, 2 events)
    ]
    events = [Event.model_validate(d) for d in docs]
    report = replay(events, [], ReplayConfig(k=1))
    # hits among the 4 watches: only the probe (counting events, x and y tie and x, first
    # in the catalogue, wins: no hit at all)
    assert report["most_popular"]["hit_rate"] == pytest.approx(1 / 4)  # type: ignore[index]


def test_halves_split_at_the_median_positive_and_first_half_stops_there() -> None:
    docs = [_event(n, f"u{n % 3}", f"i{n % 5}", T0 + n * MINUTE) for n in range(20)]
    events = [Event.model_validate(d) for d in docs]
    full = replay(events, [], ReplayConfig())
    assert full["positives_by_half"] == [10, 10]
    first = replay(events, [], ReplayConfig(first_half_only=True))
    assert first["positives"] == 10
    assert first["model"]["hit_rate"] == pytest.approx(  # type: ignore[index]
        full["model"]["hit_rate_1st_half"]  # type: ignore[index]
    )


def _clustered_log(seed: int = 5) -> list[dict[str, object]]:
    """Users who each follow one of 6 item clusters, hours to weeks between their events."""
    rng = random.Random(seed)
    docs: list[dict[str, object]] = []
    ts = T0
    for _ in range(900):
        ts += rng.choice([MINUTE, 60 * MINUTE, 86_400_000, 7 * 86_400_000]) // 10
        user = rng.randrange(60)
        cluster = user % 6
        item = f"c{cluster}-{rng.randrange(8) if rng.random() < 0.85 else rng.randrange(48)}"
        docs.append(_event(len(docs), f"u{user}", item, ts))
    return docs


@pytest.mark.parametrize("factor", [30.0, 1 / 30])
def test_quality_does_not_depend_on_the_time_scale(factor: float) -> None:
    """Same events, same order, the clock 30 times faster or slower: HR@10 within 5 %."""
    docs = _clustered_log()
    scaled = [{**d, "ts": T0 + round((int(d["ts"]) - T0) * factor)} for d in docs]  # type: ignore[call-overload]
    base = replay([Event.model_validate(d) for d in docs], [], ReplayConfig())
    other = replay([Event.model_validate(d) for d in scaled], [], ReplayConfig())
    hr, hr_scaled = base["model"]["hit_rate"], other["model"]["hit_rate"]  # type: ignore[index]
    assert hr > 2 * base["most_popular"]["hit_rate"]  # type: ignore[index]
    assert hr_scaled == pytest.approx(hr, rel=0.05)
