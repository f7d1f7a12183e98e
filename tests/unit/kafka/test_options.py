"""Kafka connection and security options, validated once (``pipeline.kafka.options``)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.errors import (
    ConfigError,
)
from pipeline.kafka.options import kafka_client_options

NOW = 1_700_000_000_000


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
