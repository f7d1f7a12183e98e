"""Kafka connection and security options: validated once, for every client recloop opens.

``security_options`` checks the settings (protocol, SASL mechanism and credentials, CA file)
before anything connects, because a broker's answer to a half-configured SASL client is an
opaque timeout. ``client_config`` renders them for confluent-kafka (librdkafka), which every
producer, admin and reader of recloop uses; the Faust app (``agents.app``) renders the same
validated options for Faust's aiokafka.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError

SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    """Validated connection settings: the one mapping every Kafka client is rendered from."""

    servers: tuple[str, ...]
    protocol: str
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    cafile: str | None = None

    @property
    def uses_ssl(self) -> bool:
        """Whether the connection is encrypted (SSL or SASL_SSL)."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether the client authenticates with SASL."""
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (with the configured CA bundle), or None for plaintext."""
        return ssl.create_default_context(cafile=self.cafile) if self.uses_ssl else None


def security_options(settings: Settings) -> SecurityOptions:
    """Validate the Kafka connection settings.

    Raises
    ------
    ConfigError
        When the security settings cannot work together (checked here, before connecting,
        because a broker's answer to a half-configured SASL client is an opaque timeout).

    >>> security_options(Settings()).protocol
    'PLAINTEXT'
    """
    servers = tuple(s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip())
    if not servers:
        msg = "RECLOOP_KAFKA_BOOTSTRAP is empty; set it to host:port[,host:port...]"
        raise ConfigError(msg)
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        msg = (
            f"RECLOOP_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r} is not one"
            f" of {', '.join(sorted(SECURITY_PROTOCOLS))}"
        )
        raise ConfigError(msg)
    if not protocol.startswith("SASL_"):
        return SecurityOptions(servers, protocol, cafile=settings.kafka_ssl_cafile)
    if not settings.kafka_sasl_mechanism:
        msg = f"security protocol {protocol} needs RECLOOP_KAFKA_SASL_MECHANISM (e.g. PLAIN)"
        raise ConfigError(msg)
    mechanism = settings.kafka_sasl_mechanism.upper()
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
        msg = (
            f"SASL mechanism {mechanism} needs RECLOOP_KAFKA_SASL_USERNAME"
            " and RECLOOP_KAFKA_SASL_PASSWORD"
        )
        raise ConfigError(msg)
    return SecurityOptions(
        servers,
        protocol,
        sasl_mechanism=mechanism,
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        cafile=settings.kafka_ssl_cafile,
    )


LIBRDKAFKA_LOGGER = logging.getLogger("pipeline.kafka.librdkafka")
"""Where librdkafka's own log lines go (served by the clients' ``poll``), not stderr."""


def client_config(settings: Settings, *, client_id: str) -> dict[str, Any]:
    """``security_options`` as librdkafka configuration, for every confluent-kafka client.

    librdkafka logs through :data:`LIBRDKAFKA_LOGGER`; idle connections that the broker
    closes (every ``connections.max.idle.ms``) are reconnected silently instead of logged as
    errors.

    >>> client_config(Settings(), client_id="x")["bootstrap.servers"]
    '127.0.0.1:9092'
    """
    o = security_options(settings)
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(o.servers),
        "security.protocol": o.protocol,
        "client.id": client_id,
        "logger": LIBRDKAFKA_LOGGER,
        "log.connection.close": False,
    }
    if o.uses_sasl:
        config["sasl.mechanism"] = o.sasl_mechanism
        config["sasl.username"] = o.username
        config["sasl.password"] = o.password
    if o.cafile:
        config["ssl.ca.location"] = o.cafile
    return config
