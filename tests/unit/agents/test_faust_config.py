"""One source of Faust settings: the worker and the bench's ceiling app run on the same ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.sensors import Monitor

from agents import faust_config
from agents.app import create_app
from agents.faust_config import QuietMonitor, event_loop_policy, faust_settings
from pipeline.config import Settings
from pipeline.errors import ConfigError
from tests.unit.agents.apps import ceiling_module


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", **overrides)


def _conf(app: faust.App, keys: Any) -> dict[str, Any]:
    return {key: getattr(app.conf, key) for key in keys}


def test_defaults_are_fausts_own(tmp_path: Path) -> None:
    """Today's behaviour unless a setting says otherwise: the knobs default to Faust's values."""
    plain = faust.App("plain", broker="kafka://127.0.0.1:1", datadir=tmp_path / "plain")
    ours = faust.App("ours", **faust_settings(_settings(tmp_path)))
    knobs = (
        "cython_optimizations",
        "Monitor",
        "stream_buffer_maxsize",
        "broker_max_poll_records",
        "producer_linger",
    )
    assert _conf(ours, knobs) == _conf(plain, knobs)
    assert ours.conf.Monitor is Monitor


def test_settings_reach_faust(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        faust_cython_optimizations=True,
        faust_monitor=False,
        faust_stream_buffer_maxsize=1024,
        broker_max_poll_records=250,
        producer_linger_seconds=0.005,
    )
    conf = faust.App("x", **faust_settings(settings)).conf
    assert conf.cython_optimizations is True
    assert conf.Monitor is QuietMonitor
    assert conf.stream_buffer_maxsize == 1024
    assert conf.broker_max_poll_records == 250
    assert conf.producer_linger == pytest.approx(0.005)


@pytest.mark.parametrize("monitor", [True, False])
def test_worker_and_ceiling_app_share_every_faust_setting(tmp_path: Path, monitor: bool) -> None:
    """The ratio worker/ceiling is honest only on identical framework settings."""
    settings = _settings(tmp_path, faust_monitor=monitor, producer_linger_seconds=0.002)
    keys = faust_settings(settings).keys()
    worker = create_app(settings)
    ceiling = ceiling_module().create_app(settings, "sink")
    assert _conf(ceiling, keys) == _conf(worker, keys)
    assert ceiling.conf.id == worker.conf.id == settings.app_id


def test_quiet_monitor_keeps_no_per_message_state() -> None:
    monitor = QuietMonitor()
    tp = faust.types.TP("t", 0)
    message: Any = object()  # never touched
    monitor.on_message_in(tp, 1, message)
    assert monitor.on_stream_event_in(tp, 1, None, None) is None  # type: ignore[arg-type]
    monitor.on_stream_event_out(tp, 1, None, None, None)  # type: ignore[arg-type]
    monitor.on_message_out(tp, 1, message)
    monitor.on_send_initiated(None, "t", None, 1, 1)
    monitor.on_send_completed(None, None, None)
    assert monitor.messages_received_total == monitor.events_total == monitor.messages_sent == 0
    assert not monitor.events_runtime and not monitor.send_latency


def test_event_loop_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert event_loop_policy(_settings(tmp_path, worker_uvloop="off")) is None
    policy = event_loop_policy(_settings(tmp_path, worker_uvloop="auto"))
    assert policy is not None and type(policy).__module__.startswith("uvloop")
    loop = policy.new_event_loop()
    try:
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()
    monkeypatch.setattr(faust_config.importlib.util, "find_spec", lambda name: None)
    assert event_loop_policy(_settings(tmp_path, worker_uvloop="auto")) is None
    with pytest.raises(ConfigError, match="pip install uvloop"):
        event_loop_policy(_settings(tmp_path, worker_uvloop="on"))
