"""The synthetic world: determinism, contract shape, behaviour model, pacing and the loop."""

from __future__ import annotations

import signal
import sys
import threading
import types
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli.simulate_cmd import run_simulation
from pipeline.config import Settings
from pipeline.tooling.simulator import CATEGORIES, World, events_due
from schemas.events import Event, Item

START = 1_700_000_000_000


def _events(world: World, n: int) -> list[dict[str, Any]]:
    return list(world.events(n, start_ms=START, rate=1_000.0))


def test_same_seed_same_world_and_events() -> None:
    a, b = World(seed=3, n_users=200, n_items=100), World(seed=3, n_users=200, n_items=100)
    assert a.items() == b.items()
    assert _events(a, 2_000) == _events(b, 2_000)
    assert a.taste("u5") == b.taste("u5")


def test_different_seed_differs() -> None:
    a, b = World(seed=1, n_users=50, n_items=50), World(seed=2, n_users=50, n_items=50)
    assert a.items() != b.items()
    assert _events(a, 100) != _events(b, 100)


def test_catalogue_and_tastes_do_not_depend_on_population_or_traffic() -> None:
    small, big = World(seed=9, n_users=10, n_items=80), World(seed=9, n_users=5_000, n_items=80)
    assert small.items() == big.items()
    taste_before = big.taste("u3")
    _events(big, 500)
    assert big.taste("u3") == taste_before == small.taste("u3")


def _check_event(event: Mapping[str, Any], now_ms: int) -> None:
    assert isinstance(event["event_id"], str) and event["event_id"]
    assert event["type"] in {"click", "skip", "watch"}
    assert isinstance(event["user_id"], str) and isinstance(event["item_id"], str)
    assert isinstance(event["ts"], int) and event["ts"] == now_ms
    assert isinstance(event["duration_seconds"], float) and event["duration_seconds"] > 0
    if event["type"] == "watch":
        assert isinstance(event["watch_seconds"], float)
        assert 0 <= event["watch_seconds"] <= event["duration_seconds"]
    if event["type"] == "skip":
        assert 0 < event["watch_seconds"] <= 15.0
    if event["type"] == "click":
        assert "watch_seconds" not in event
    context = event["context"]
    assert {k: type(v) for k, v in context.items()} == {
        "device": str, "locale": str, "surface": str, "position": int,
    }  # fmt: skip
    assert event["schema_version"] == 1
    assert set(event) <= {
        "schema_version", "event_id", "type", "user_id", "item_id", "ts", "watch_seconds",
        "duration_seconds", "context",
    }  # fmt: skip


def test_events_follow_the_v1_contract() -> None:
    world = World(seed=11, n_users=300, n_items=200)
    ids = set()
    for i in range(5_000):
        now = START + i
        event = world.next_event(now)
        _check_event(event, now)
        world.item(event["item_id"])  # refers to a catalogue item
        Event.model_validate(event)  # and the contract models agree
        ids.add(event["event_id"])
    assert len(ids) == 5_000


def test_items_follow_the_v1_contract() -> None:
    items = World(seed=0, n_users=1, n_items=300).items()
    assert len({item["item_id"] for item in items}) == 300
    for item in items:
        Item.model_validate(item)
        assert set(item) == {
            "schema_version", "item_id", "categories", "duration_seconds", "published_ts",
            "creator_id", "title",
        }  # fmt: skip
        assert 1 <= len(item["categories"]) <= 2
        assert set(item["categories"]) <= set(CATEGORIES)
        assert len(set(item["categories"])) == len(item["categories"])
        assert isinstance(item["published_ts"], int) and isinstance(item["title"], str)
        assert item["duration_seconds"] >= 30
    assert {c for item in items for c in item["categories"]} == set(CATEGORIES)


def test_every_click_is_followed_by_a_watch_of_the_same_item() -> None:
    world = World(seed=5, n_users=100, n_items=100)
    events = _events(world, 10_000)
    open_clicks: dict[str, str] = {}
    for event in events:
        if event["type"] == "click":
            assert event["user_id"] not in open_clicks
            open_clicks[event["user_id"]] = event["item_id"]
        elif event["type"] == "watch":
            assert open_clicks.pop(event["user_id"]) == event["item_id"]
    assert len(open_clicks) <= 64  # only sessions still open at the end


def test_taste_is_a_distribution_concentrated_on_few_categories() -> None:
    world = World(seed=2, n_users=500, n_items=10)
    for i in range(500):
        taste = world.taste(f"u{i}")
        assert set(taste) == set(CATEGORIES)
        assert sum(taste.values()) == pytest.approx(1.0)
        assert sum(sorted(taste.values())[-3:]) > 0.6


def test_taste_drives_completion_and_skips() -> None:
    world = World(seed=4, n_users=400, n_items=300)
    matching: list[float] = []
    other: list[float] = []
    skips = Counter[bool]()
    for event in _events(world, 40_000):
        interest = world.interest(event["user_id"], event["item_id"])
        if event["type"] == "watch":
            completion = event["watch_seconds"] / event["duration_seconds"]
            (matching if interest >= 0.8 else other).append(completion)
        elif event["type"] == "skip":
            skips[interest >= 0.8] += 1
    assert len(matching) > 1_000 and len(other) > 200
    assert sum(matching) / len(matching) > 0.7
    assert sum(other) / len(other) < 0.5
    # favourites are chosen more often and skipped less, so most skips hit other items
    assert skips[False] > skips[True]


def test_new_users_keep_arriving() -> None:
    world = World(seed=6, n_users=100, n_items=100, new_user_share=0.2)
    events = _events(world, 5_000)
    newcomers = {e["user_id"] for e in events if int(e["user_id"][1:]) >= 100}
    assert world.known_users > 100 and len(newcomers) > 20
    assert world.taste(f"u{world.known_users - 1}")
    with pytest.raises(KeyError):
        world.taste(f"u{world.known_users}")


def test_world_can_start_empty() -> None:
    world = World(seed=1, n_users=0, n_items=5)
    event = world.next_event(START)
    assert event["user_id"] == "u0" and world.known_users >= 1


def test_popularity_is_zipf_skewed() -> None:
    world = World(seed=8, n_users=1_000, n_items=500)
    counts = Counter(e["item_id"] for e in _events(world, 30_000))
    top_tenth = sum(n for _, n in counts.most_common(50))
    assert top_tenth / 30_000 > 0.4  # uniform would give 0.1
    most_popular = max(world.items(), key=lambda i: world.item(i["item_id"]).popularity)
    assert counts.most_common(3)[0][1] > 5 * 30_000 / 500
    assert counts[most_popular["item_id"]] >= counts.most_common(10)[-1][1]


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_items"):
        World(n_items=0)
    with pytest.raises(ValueError, match="new_user_share"):
        World(new_user_share=1.5)
    with pytest.raises(ValueError, match="rate"):
        next(World().events(1, rate=0))


@pytest.mark.parametrize(
    ("elapsed", "rate", "sent", "expected"),
    [
        (0.0, 100.0, 0, 0),
        (0.01, 100.0, 0, 1),
        (0.5, 100.0, 40, 10),
        (1.0, 100.0, 100, 0),
        (1.0, 100.0, 120, 0),  # ahead of schedule: wait
        (-1.0, 100.0, 0, 0),  # clock went backwards
        (3.0, 0.5, 0, 1),  # slow rates: one every two seconds
        (4.0, 0.5, 1, 1),
        (30.0, 10.0, 0, 10),  # after a stall, catch up at most one second's worth
        (0.3, 10.0, 0, 3),  # 0.3 * 10 is 2.9999... in floats
    ],
)
def test_events_due(elapsed: float, rate: float, sent: int, expected: int) -> None:
    assert events_due(elapsed, rate, sent) == expected


def test_events_due_honours_max_burst_and_rejects_bad_rate() -> None:
    assert events_due(30.0, 10.0, 0, max_burst=1_000) == 300
    with pytest.raises(ValueError, match="rate"):
        events_due(1.0, 0.0, 0)


class _FakeSink:
    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []
        self.flushed = 0

    def send_event(self, event: Mapping[str, Any]) -> str:
        self.events.append(event)
        return str(event["event_id"])

    def flush(self) -> None:
        self.flushed += 1


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_run_simulation_paces_and_stops_after_duration() -> None:
    clock, sink = _FakeClock(), _FakeSink()
    reports: list[tuple[int, float, float]] = []
    sent = run_simulation(
        World(seed=1, n_users=10, n_items=10), sink, rate=200.0, duration=12.0,
        stop=threading.Event(), clock=clock, wall_ms=lambda: START, sleep=clock.sleep,
        progress=lambda *r: reports.append(r), tick=0.05,
    )  # fmt: skip
    assert sent == len(sink.events) == 2_400
    assert sink.flushed == 1
    assert [r[0] for r in reports] == [pytest.approx(n, abs=20) for n in (1_000, 2_000)]
    assert all(r[1] == pytest.approx(200.0, rel=0.02) for r in reports)


def test_run_simulation_stops_when_asked() -> None:
    clock, sink, stop = _FakeClock(), _FakeSink(), threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 102.0:
            stop.set()

    sent = run_simulation(
        World(seed=1, n_users=10, n_items=10), sink, rate=50.0, duration=None, stop=stop,
        clock=clock, wall_ms=lambda: START, sleep=sleep, tick=0.1,
    )  # fmt: skip
    assert sent == pytest.approx(100, abs=5)
    assert sink.flushed == 1


class _FakeProducer(_FakeSink):
    """Stands in for ``pipeline.kafka.producer.EventProducer``; raises SIGTERM after 50 events."""

    instances: list[_FakeProducer] = []

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.items: list[tuple[str, list[str], dict[str, Any]]] = []
        self.closed = False
        _FakeProducer.instances.append(self)

    def __enter__(self) -> _FakeProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def item(self, item_id: str, categories: list[str], **optional: Any) -> None:
        assert not self.events, "the catalogue goes out before the first event"
        self.items.append((item_id, categories, optional))

    def send_event(self, event: Mapping[str, Any]) -> str:
        if len(self.events) == 50:
            signal.raise_signal(signal.SIGTERM)
        return super().send_event(event)


def test_simulate_command_publishes_items_then_events_until_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.cli.simulate_cmd import simulate

    topics: list[object] = []
    monkeypatch.setitem(
        sys.modules, "pipeline.kafka.producer", types.SimpleNamespace(EventProducer=_FakeProducer)
    )
    monkeypatch.setitem(
        sys.modules, "pipeline.kafka.topics", types.SimpleNamespace(ensure_topics=topics.append)
    )
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(
        simulate,
        ["--users", "20", "--items", "30", "--rate", "2000", "--seed", "4",
         "--bootstrap", "kafka.example:9092"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    producer = _FakeProducer.instances[-1]
    assert producer.settings.kafka_bootstrap == "kafka.example:9092"
    assert topics == [producer.settings]
    assert len(producer.items) == 30 and producer.items[0][0] == "i0"
    assert set(producer.items[0][2]) == {"duration_seconds", "published_ts", "creator_id", "title"}
    # stopped within the tick that saw SIGTERM (a tick sends at most one second of events)
    assert 50 < len(producer.events) <= 51 + 2_000
    assert producer.flushed == 2 and producer.closed
    assert "seed=4" in result.output and "done sent=" in result.output
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_simulate_command_no_items(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cli.simulate_cmd import simulate

    monkeypatch.setitem(
        sys.modules, "pipeline.kafka.producer", types.SimpleNamespace(EventProducer=_FakeProducer)
    )
    monkeypatch.setitem(
        sys.modules, "pipeline.kafka.topics", types.SimpleNamespace(ensure_topics=lambda s: None)
    )
    result = CliRunner().invoke(simulate, ["--no-items", "--rate", "100", "--duration", "0.2"])
    assert result.exit_code == 0, result.output
    producer = _FakeProducer.instances[-1]
    assert producer.items == [] and len(producer.events) == 20
