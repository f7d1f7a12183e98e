"""Kafka connection and security options, validated once (``pipeline.kafka.options``)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.errors import (
    ConfigError,
)
from pipeline.kafka.options import LIBRDKAFKA_LOGGER, client_config

NOW = 1_700_000_000_000


# --- connection settings ----------------------------------------------------------------------


def test_client_config_plaintext() -> None:
    config = client_config(Settings(kafka_bootstrap=" a:9092, b:9092 ,"), client_id="c")
    assert config == {
        "bootstrap.servers": "a:9092,b:9092",
        "security.protocol": "PLAINTEXT",
        "client.id": "c",
        "logger": LIBRDKAFKA_LOGGER,
        "log.connection.close": False,
    }


def test_client_config_sasl_ssl() -> None:
    settings = Settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile="/etc/ca.pem",
    )
    config = client_config(settings, client_id="c")
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("svc", "s3cret")
    assert config["ssl.ca.location"] == "/etc/ca.pem"


def test_librdkafka_accepts_the_rendered_config() -> None:
    """Every key is one librdkafka knows (a typo would raise here, not at a customer)."""
    from confluent_kafka import Producer

    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    Producer(client_config(settings, client_id="c"))


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
        client_config(Settings(**overrides), client_id="c")
