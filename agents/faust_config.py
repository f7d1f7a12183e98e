"""How recloop configures Faust: one source for the worker and the benchmark's ceiling app.

``bench/throughput.py`` compares the worker with a minimal Faust app that only decodes and
forwards (``bench/ceiling_app.py``); the ratio is honest only when both run on the same
framework settings and event loop. So the ``faust.App`` keyword arguments live here, in
:func:`faust_settings`, and the event loop in :func:`event_loop_policy`: ``create_app`` and
the ceiling app both call them, and may differ only in what their agents do.

The framework knobs are settings (``RECLOOP_FAUST_*``, ``RECLOOP_BROKER_MAX_POLL_RECORDS``,
``RECLOOP_PRODUCER_LINGER_SECONDS``, ``RECLOOP_WORKER_UVLOOP``) with Faust's own defaults,
so a change of default is a measured decision (README, Results).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

import faust
from faust.sensors import Monitor
from faust.types import TP, EventT, Message, StreamT

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.kafka.options import security_options
from pipeline.worker.datadir import prepare_data_dir

log = logging.getLogger(__name__)


class QuietMonitor(Monitor):
    """Faust's Monitor without its per-message bookkeeping.

    Faust's default sensor counts and times every message, stream event and send (dict
    updates, clock reads, a state dict per event) for its own stats pages; recloop exports
    its metrics through ``pipeline.worker.metrics`` and never reads them. The hooks that run
    per message do nothing here; the rare ones (commits, rebalances, assignments) are kept.
    """

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        """Nothing per received message."""

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        """Nothing per stream event (no state for ``on_stream_event_out``)."""
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        """Nothing per processed event."""

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        """Nothing per acknowledged message."""

    def on_send_initiated(self, *args: Any, **kwargs: Any) -> None:
        """Nothing per send (no state for ``on_send_completed``)."""

    def on_send_completed(self, *args: Any, **kwargs: Any) -> None:
        """Nothing per acknowledged send."""


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials for SASL/SSL clusters (``None`` for PLAINTEXT).

    Rendered from the validated ``pipeline.kafka.options.security_options`` that every other
    client uses too.
    """
    o = security_options(settings)
    if o.uses_sasl:
        return faust.SASLCredentials(
            username=o.username or "",
            password=o.password or "",
            mechanism=o.sasl_mechanism or "PLAIN",
            ssl_context=o.ssl_context(),
        )
    context = o.ssl_context()
    return faust.SSLCredentials(context) if context is not None else None


def faust_settings(settings: Settings) -> dict[str, Any]:
    """The ``faust.App`` keyword arguments of a recloop worker (the app id aside).

    Raw serializers (recloop decodes and validates itself), one memory store (state lives in
    Redis), acks from all replicas, the web server on the loop, and the framework knobs.
    Creates the data folder (:func:`pipeline.worker.datadir.prepare_data_dir`): a bad
    ``RECLOOP_DATA_DIR`` fails here, before anything connects.
    """
    return {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "broker_credentials": broker_credentials(settings),
        "value_serializer": "raw",
        "key_serializer": "raw",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "consumer_auto_offset_reset": "earliest",
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_in_thread": False,
        "producer_acks": -1,
        "broker_session_timeout": settings.broker_session_timeout_seconds,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval_seconds,
        "store": "memory://",
        "datadir": prepare_data_dir(settings),
        # framework knobs (issue #15): Faust's defaults unless the settings say otherwise
        "cython_optimizations": settings.faust_cython_optimizations,
        "Monitor": Monitor if settings.faust_monitor else QuietMonitor,
        "stream_buffer_maxsize": settings.faust_stream_buffer_maxsize,
        "broker_max_poll_records": settings.broker_max_poll_records,
        "producer_linger": settings.producer_linger_seconds,
    }


def event_loop_policy(settings: Settings) -> asyncio.AbstractEventLoopPolicy | None:
    """The event loop policy ``RECLOOP_WORKER_UVLOOP`` asks for: uvloop's, or ``None``.

    The caller installs it (``asyncio.set_event_loop_policy``) before the app touches a
    loop; ``None`` keeps asyncio's own loop. ``auto`` uses uvloop when it is installed (a
    dependency of the package except on Windows), ``on`` requires it.

    Raises
    ------
    ConfigError
        ``on`` without uvloop installed.
    """
    mode = settings.worker_uvloop
    if mode == "off":
        return None
    if importlib.util.find_spec("uvloop") is None:
        if mode == "on":
            msg = "RECLOOP_WORKER_UVLOOP=on but uvloop is not installed: pip install uvloop"
            raise ConfigError(msg)
        return None
    import uvloop

    policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
    return policy
