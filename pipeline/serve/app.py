"""``create_api(settings) -> FastAPI``: the one place the HTTP API and console are wired.

The process is stateless: it reads what the workers wrote (Redis, Kafka) and produces
events and controls through the same validation as the producer client. Run as many as
needed behind any load balancer (``recloop serve``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import redis.exceptions
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from pipeline.config import Settings
from pipeline.errors import StackError
from pipeline.serve import models, routes
from pipeline.serve.auth import AuthError, require_read
from pipeline.serve.fastpath import RecommendationsFastPath
from pipeline.serve.guard import BrowserGuard
from pipeline.serve.metrics import RequestMetrics, ServeMetrics
from pipeline.serve.openapi import customize_openapi
from pipeline.serve.services import ApiError, Services, error_response, invalid_response
from pipeline.stores.reads import fingerprint

log = logging.getLogger(__name__)
access_log = logging.getLogger("pipeline.serve.access")

STATIC_DIR = Path(__file__).parent / "static"
API_VERSION = "1.1.0"  # 1.1: length limits, Host allow-list, write rules (400/403/415)
HEARTBEAT_SECONDS = 15.0
USER_POLL_SECONDS = 0.25

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessLog:
    """Logs method, route template, status and duration: never the path (user ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; log its outcome when INFO is enabled."""
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            access_log.info(
                "%s %s status=%d ms=%.1f",
                scope["method"],
                template,
                status["code"],
                (time.perf_counter() - started) * 1000,
            )


def allowed_methods(request: Request) -> list[str]:
    """Methods of every route whose path matches the request's (for ``Allow``)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match is not Match.NONE:
                methods |= route.methods
    return sorted(methods)


def sse(event: str, data: Any) -> bytes:
    """One server-sent event."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError | AuthError)
        return error_response(exc.status, exc.code, exc.detail)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            (None, "invalid_value", f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e['msg']}")
            for e in exc.errors()
        ]
        return invalid_response("invalid request parameters", errors)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every route of the path, not only the first one matched
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("dependency unavailable error=%s", type(exc).__name__)
        if isinstance(exc, redis.exceptions.RedisError):
            request.app.state.metrics.redis_errors.labels("request").inc()
        detail = f"a dependency did not answer ({type(exc).__name__}); retry later"
        if isinstance(exc, StackError):
            detail = str(exc)
        return error_response(503, "unavailable", detail)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(AuthError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StackError, on_unavailable)
    app.add_exception_handler(redis.exceptions.RedisError, on_unavailable)


def _add_streams(app: FastAPI) -> None:
    @app.get(
        "/v1/users/{user_id}/stream",
        include_in_schema=False,
        dependencies=[Depends(require_read)],
    )
    async def user_stream(request: Request, user_id: routes.UserId) -> StreamingResponse:
        svc: Services = request.app.state.services

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            last: bytes | None = None
            beat = time.monotonic()
            while not await request.is_disconnected():
                try:
                    current = await fingerprint(svc.redis, svc.keys_layout, user_id)
                    if current != last:
                        last = current
                        doc = await svc.user_view(user_id)
                        yield sse("user", doc or {"user_id": user_id, "unknown": True})
                        beat = time.monotonic()
                except redis.exceptions.RedisError as exc:
                    request.app.state.metrics.redis_errors.labels("stream").inc()
                    yield sse("problem", {"detail": f"redis: {type(exc).__name__}"})
                    await asyncio.sleep(1.0)
                if time.monotonic() - beat > HEARTBEAT_SECONDS:
                    yield b": keep-alive\n\n"
                    beat = time.monotonic()
                await asyncio.sleep(USER_POLL_SECONDS)

        return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)

    @app.get("/v1/overview/stream", include_in_schema=False, dependencies=[Depends(require_read)])
    async def overview_stream(request: Request) -> StreamingResponse:
        svc: Services = request.app.state.services
        sampler = svc.overview

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            latest = sampler.latest()
            if latest is not None:
                yield sse("overview", latest)
            while not await request.is_disconnected():
                async with sampler.changed:
                    try:
                        await asyncio.wait_for(sampler.changed.wait(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                yield sse("overview", sampler.latest())

        return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)


_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _add_probes_and_console(app: FastAPI) -> None:
    @app.get(
        "/health",
        operation_id="getHealth",
        response_model=models.Health,
        tags=["probes"],
        summary="Liveness",
    )
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get(
        "/ready",
        operation_id="getReadiness",
        response_model=models.Ready,
        tags=["probes"],
        summary="Readiness: Redis answers PING and Kafka a metadata request",
        responses={503: {"model": models.Ready, "description": "Redis or Kafka is away."}},
    )
    async def ready(request: Request) -> Response:
        svc: Services = request.app.state.services
        redis_ok, kafka_ok = await svc.ready()
        if not redis_ok:
            request.app.state.metrics.redis_errors.labels("ready").inc()
        body = {"ready": redis_ok and kafka_ok, "redis": redis_ok, "kafka": kafka_ok}
        return Response(
            orjson.dumps(body), status_code=200 if body["ready"] else 503,
            media_type="application/json",
        )  # fmt: skip

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # like the workers' /metrics: no key needed, labels carry no personal data
        body = request.app.state.metrics.render()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def create_api(settings: Settings, *, sample_interval: float = 2.0) -> FastAPI:
    """Build the API and console app (clients are created, not connected).

    Parameters
    ----------
    settings
        Connections, topics, key layout and the ``api_*`` settings.
    sample_interval
        Seconds between overview samples (tests use less).
    """
    services = Services.build(settings, sample_interval=sample_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.resolve_redis()
        services.overview.start()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="recloop API",
        version=API_VERSION,
        summary="Read the lists recloop's pipeline wrote; send events and controls.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.metrics = ServeMetrics()
    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
            expose_headers=["X-Recloop-Source"],
            max_age=600,
        )
    app.add_middleware(RecommendationsFastPath, services=services)
    # outside the fast path, so its answers obey the Host rule too
    app.add_middleware(
        BrowserGuard, hosts=settings.api_allowed_hosts, origins=settings.api_cors_origins
    )
    app.add_middleware(AccessLog)  # outer: sees every answer and refusal
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)  # outermost: times it all
    _install_error_handlers(app)
    _add_streams(app)  # before the /v1/users/{id} routes, whose path would swallow /stream
    app.include_router(routes.read)
    app.include_router(routes.write)
    app.include_router(routes.admin_read)
    _add_probes_and_console(app)
    customize_openapi(app)
    return app
