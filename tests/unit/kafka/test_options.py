"""Kafka connection and security options, validated once (``pipeline.kafka.options``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.errors import (
    ConfigError,
)
from pipeline.kafka.options import kafka_client_options
from pipeline.kafka.producer import EventProducer

NOW = 1_700_000_000_000


class FakeFuture:
    def __init__(self) -> None:
        self.errbacks: list[Callable[[BaseException], Any]] = []

    def add_errback(self, fn: Callable[..., Any], *args: Any) -> None:
        self.errbacks.append(lambda exc: fn(*args, exc))

    def fail(self, exc: BaseException) -> None:
        for errback in self.errbacks:
            errback(exc)


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.futures: list[FakeFuture] = []
        self.flushes = 0
        self.closed = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        assert value is not None
        self.sent.append((topic, key, value))
        self.futures.append(FakeFuture())
        return self.futures[-1]

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class Factory:
    def __init__(self) -> None:
        self.calls = 0
        self.client = FakeClient()

    def __call__(self, settings: Settings) -> FakeClient:
        self.calls += 1
        return self.client


@pytest.fixture
def factory() -> Factory:
    return Factory()


@pytest.fixture
def producer(factory: Factory) -> EventProducer:
    return EventProducer(Settings(), client_factory=factory, clock=lambda: NOW)


# --- connection settings ----------------------------------------------------------------------


def test_client_options_plaintext() -> None:
    options = kafka_client_options(Settings(kafka_bootstrap=" a:9092, b:9092 ,"))
    assert options == {"bootstrap_servers": ["a:9092", "b:9092"], "security_protocol": "PLAINTEXT"}


def test_client_options_sasl_ssl() -> None:
    settings = Settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile="/etc/ca.pem",
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "s3cret")
    assert options["ssl_cafile"] == "/etc/ca.pem"


@pytest.mark.parametrize(
    "overrides",
    [
        {"kafka_bootstrap": " , "},
        {"kafka_security_protocol": "TLS"},
        {"kafka_security_protocol": "SASL_PLAINTEXT"},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
    ],
)
def test_inconsistent_security_settings_fail_early(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="RECLOOP_KAFKA_"):
        kafka_client_options(Settings(**overrides))
