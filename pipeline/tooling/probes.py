"""Loopback network probes: free ports, and whether Kafka or Redis answer yet.

Used by the local stack, the test fixtures and the benchmarks; plain sockets (and one
librdkafka metadata call) so they work before any client library is configured.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Tests start their own broker on such ports so they never collide with a demo on
    9092/6379. The port is released before returning, so a race is possible but rare.
    """
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_ping(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    """Whether a Redis server on ``host:port`` answers PING (not LOADING, not an error)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def kafka_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    """Whether the broker at ``bootstrap`` answers a metadata request.

    An open port is not enough: a KRaft broker accepts connections seconds before it has
    joined its own quorum and can serve metadata, and clients started in that window fail.
    """
    from confluent_kafka.admin import AdminClient  # lazy: only the stack and tests probe

    # log_level 0: "connection refused" while the broker starts is the expected answer
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": "recloop-stack",
        "logger": logger,
        "log_level": 0,
    }
    admin = AdminClient(config)
    try:
        admin.list_topics(timeout=timeout)
    except Exception as exc:  # any failure means "not ready yet": the caller retries
        logger.debug("kafka metadata failed bootstrap=%s error=%r", bootstrap, exc)
        return False
    finally:
        admin.poll(0)
    return True
