"""Faust's Kafka transport, the consumer's fetch wait set by a setting.

``RECLOOP_CONSUMER_FETCH_MAX_WAIT_MS`` (500 ms by default, Kafka's own default) replaces Faust's
fixed 1500 ms.

**Why.** Faust's aiokafka driver builds the worker's consumer with ``fetch_max_wait_ms=1500``,
fixed. aiokafka keeps at most one fetch request in flight per broker, and a request names only
the partitions whose fetched records were all handed to the app. A worker's consumer reads the
events topic *and* the quiet items and controls topics: when a fetch goes out while the events
partitions still hold undelivered records, which is the usual case once the worker is busy, it
names only quiet partitions, and the broker holds it for the full wait because no data comes.
Until it returns, no fetch of events can go out. Measured at 1,000 events/s with one worker
(``bench/freshness.py``, README "Results"): every fetch took ~450 ms, records were 0.3-1.3 s old
when fetched while a separate librdkafka consumer read the same topic at 60 ms, and the worker
sat a third idle with lists 1.6 s (p50) behind their events. A shorter wait bounds that: a
fetch that finds nothing returns within it. Shorter than 500 ms measured worse, not better: at
100 ms CPU per event rose ~25 % at 1,000 events/s and a worker past its capacity drained ~17 %
fewer events a second (every quiet fetch answered is a round of Faust's hand-over).

``RecloopApp`` is the ``faust.App`` of the worker and of the benchmark's ceiling app (the same
consumer, so the worker/ceiling ratio stays honest).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, cast

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TransportT

log = logging.getLogger(__name__)

FAUST_FETCH_MAX_WAIT_MS = 1500  # what Faust's driver sets


class RecloopApp(faust.App):
    """A ``faust.App`` whose Kafka consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    fetch_max_wait_ms: int = FAUST_FETCH_MAX_WAIT_MS

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)


class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, building its aiokafka consumer with the app's fetch wait."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = cast(RecloopApp, self.app).fetch_max_wait_ms
        # aiokafka keeps the constructor's value and hands it to its fetcher in ``start()``,
        # which has not run yet: setting it here is setting it in the constructor
        if not hasattr(consumer, "_fetch_max_wait_ms"):  # an aiokafka that stores it elsewhere
            log.warning("consumer fetch wait not set: aiokafka has no _fetch_max_wait_ms")
            return consumer
        consumer._fetch_max_wait_ms = wait
        return consumer


class Consumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer on ``ConsumerThread``."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(aiokafka_driver.Transport):
    """Faust's aiokafka transport with ``Consumer``."""

    Consumer: ClassVar[Any] = Consumer


def new_app(app_id: str, fetch_max_wait_ms: int, **settings: Any) -> RecloopApp:
    """A ``RecloopApp`` (``faust.App(app_id, **settings)``) with the consumer's fetch wait."""
    app = RecloopApp(app_id, **settings)
    app.fetch_max_wait_ms = fetch_max_wait_ms
    return app
