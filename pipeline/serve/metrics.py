"""Prometheus metrics of ``recloop serve``, in the bounded-labels style of the worker's.

A request is counted by method, route *template* and status code: the template
(``/v1/users/{user_id}/recommendations``) never the path, so no user id becomes a label and
the series stay few whatever clients send. Each ``ServeMetrics`` owns a registry (several
apps in one test process do not collide); the app serves it at ``/metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "(unmatched)"
"""The route label of a request no route matched (a 404): never its path."""


def route_label(scope: Scope) -> str:
    """The matched route's template, or ``(unmatched)``.

    >>> class Route:
    ...     path = "/v1/users/{user_id}"
    >>> route_label({"route": Route(), "path": "/v1/users/alice"})
    '/v1/users/{user_id}'
    >>> route_label({"path": "/v1/users/alice/whatever"})
    '(unmatched)'
    """
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


def method_label(method: str) -> str:
    """The HTTP method, or ``OTHER`` for anything non-standard (a client picks methods).

    >>> method_label("GET"), method_label("BREW")
    ('GET', 'OTHER')
    """
    return method if method in _METHODS else "OTHER"


class ServeMetrics:
    """All ``recloop_api_*`` series of one serve process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "recloop_api_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "recloop_api_request_seconds",
            "Time from request to the end of the response, by method and route template "
            "(a server-sent event stream counts its whole connection).",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter(
            "recloop_api_redis_errors_total",
            "Redis operations that failed, by where (request: answered 503, stream: reported "
            "to the console, ready: the readiness probe).",
            ["where"],
            registry=r,
        )
        for where in ("request", "stream", "ready"):  # present at 0 from the start
            self.redis_errors.labels(where)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template.

    Added outermost, so it sees the answers of the recommendations fast path (which sets
    ``scope["route"]`` itself) and of the error handlers too.
    """

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record its status and duration when it ends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}  # what the server answers if the app raises before a start

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(
                method_label(scope["method"]),
                route_label(scope),
                status["code"],
                time.perf_counter() - started,
            )
