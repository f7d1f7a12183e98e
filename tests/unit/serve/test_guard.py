"""The browser rules of ``recloop serve`` (``pipeline.serve.guard``), without a server."""

from __future__ import annotations

import pytest

from pipeline.config import Settings
from pipeline.serve.guard import (
    BrowserGuard,
    allowed_hosts,
    check_content_type,
    check_host,
    check_origin,
    cors_origins,
    host_name,
    same_origin,
)

DEFAULT = allowed_hosts(Settings().api_allowed_hosts)
LISTED = cors_origins("https://console.example")


@pytest.mark.parametrize(
    "host",
    [b"localhost", b"localhost:8000", b"127.0.0.1", b"127.0.0.1:51234", b"[::1]", b"[::1]:8000",
     b"LOCALHOST:8000", b"localhost.:8000"],
)  # fmt: skip
def test_loopback_names_are_allowed_by_default_with_or_without_a_port(host: bytes) -> None:
    assert check_host(host, DEFAULT) is None


@pytest.mark.parametrize(
    "host",
    [b"evil.example", b"evil.example:8000", b"127.0.0.1.evil.example", b"localhost.evil.example",
     b"0.0.0.0:8000", b"127.0.0.2", b"[::2]:8000", b"", None, b"localhost:8000:9",
     b"[::1", b"::1"],
)  # fmt: skip
def test_other_hosts_are_refused_with_400(host: bytes | None) -> None:
    refusal = check_host(host, DEFAULT)
    assert refusal is not None and (refusal.status, refusal.code) == (400, "host_not_allowed")
    assert "RECLOOP_API_ALLOWED_HOSTS" in refusal.detail


def test_configured_hosts_and_any() -> None:
    hosts = allowed_hosts("api.example.com, ::1")
    assert check_host(b"API.example.com:443", hosts) is None
    assert check_host(b"[::1]:80", hosts) is None
    assert check_host(b"localhost", hosts) is not None
    assert check_host(b"anything.at.all", allowed_hosts("*")) is None


def test_a_refused_host_is_echoed_only_in_part() -> None:
    refusal = check_host(b"x" * 10_000, DEFAULT)
    assert refusal is not None and len(refusal.detail) < 300


def test_host_name_parsing() -> None:
    assert host_name("Example.COM:8080") == "example.com"
    assert host_name("[::1]") == "[::1]"
    assert host_name("[::1]:x") == "[::1]"
    assert host_name("host:notaport") == "host:notaport"


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://localhost:8000", "127.0.0.1:8000", False),  # another origin to a browser
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("https://api.example.com", "api.example.com", True),  # TLS ended by a proxy
        ("https://api.example.com:443", "api.example.com", True),
        ("http://API.example.com:80", "api.example.com", True),
        ("null", "127.0.0.1:8000", False),  # sandboxed frame, file://
        ("file://", "", False),
        ("ftp://127.0.0.1:8000", "127.0.0.1:8000", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


def test_cors_origins_are_normalised() -> None:
    assert cors_origins(" https://A.example/ ,http://b.example:80,,") == {
        "https://a.example",
        "http://b.example",
    }


# --------------------------------------------------------------------------- writes
HOST = b"127.0.0.1:8000"
SAME = b"http://127.0.0.1:8000"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reads_and_preflights_are_not_origin_checked(method: str) -> None:
    assert check_origin(method, b"http://evil.example", HOST, LISTED) is None


@pytest.mark.parametrize(
    ("method", "origin"),
    [
        ("POST", None),  # curl, SDKs: no Origin
        ("POST", SAME),  # the console
        ("POST", b"https://console.example"),  # listed in CORS
        ("POST", b"HTTPS://Console.Example:443"),
        ("DELETE", None),
        ("DELETE", SAME),
    ],
)
def test_writes_from_allowed_or_absent_origins_pass(method: str, origin: bytes | None) -> None:
    assert check_origin(method, origin, HOST, LISTED) is None


@pytest.mark.parametrize(
    ("method", "origin"),
    [
        ("POST", b"http://evil.example"),
        ("POST", b"null"),  # sandboxed frame, file://
        ("POST", b"http://localhost:8000"),  # another origin, as far as a browser knows
        ("DELETE", b"http://evil.example"),
        ("PUT", b"http://evil.example"),
        ("POST", b"https://console.example.evil"),
    ],
)
def test_writes_from_foreign_origins_are_refused(method: str, origin: bytes) -> None:
    refusal = check_origin(method, origin, HOST, LISTED)
    assert refusal is not None and (refusal.status, refusal.code) == (403, "origin_not_allowed")


def test_cors_star_lets_any_origin_write() -> None:
    assert check_origin("POST", b"http://x.example", HOST, cors_origins("*")) is None


@pytest.mark.parametrize(
    ("method", "content_type"),
    [
        ("POST", "application/json"),
        ("POST", "application/json; charset=utf-8"),
        ("POST", "Application/JSON"),
        ("DELETE", None),
        ("DELETE", "application/json"),
    ],
)
def test_json_writes_pass(method: str, content_type: str | None) -> None:
    assert check_content_type(method, content_type) is None


@pytest.mark.parametrize(
    ("method", "content_type"),
    [
        # what a page can send cross-site without a preflight
        ("POST", "text/plain"),
        ("POST", "text/plain;charset=UTF-8"),
        ("POST", "application/x-www-form-urlencoded"),
        ("POST", "multipart/form-data; boundary=x"),
        ("POST", None),
        ("POST", ""),
        ("POST", "application/jsonx"),
        ("POST", "application/merge-patch+json"),
        ("DELETE", "text/plain"),
        ("DELETE", "application/x-www-form-urlencoded"),
        ("DELETE", "multipart/form-data"),
    ],
)
def test_other_bodies_are_refused_with_415(method: str, content_type: str | None) -> None:
    refusal = check_content_type(method, content_type)
    assert refusal is not None and (refusal.status, refusal.code) == (415, "unsupported_media_type")


# --------------------------------------------------------------------------- middleware
class Recorder:
    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        self.called = True


def _scope(method: str, path: str, headers: dict[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "headers": list(headers.items())}


@pytest.mark.parametrize(
    ("method", "path", "headers", "refused"),
    [
        ("GET", "/v1/users/u/recommendations", {b"host": b"evil.example:8000"}, 400),
        ("GET", "/v1/dead-letters", {b"host": b"evil.example"}, 400),
        ("GET", "/", {}, 400),
        ("GET", "/health", {b"host": b"10.0.0.7:8000"}, None),  # probes answer any Host
        ("GET", "/ready", {}, None),
        ("POST", "/health", {b"host": b"evil", b"origin": b"http://other"}, 403),  # Host only
        ("GET", "/v1/users/u", {b"host": b"localhost:8000"}, None),
        ("POST", "/v1/controls", {b"host": HOST, b"content-type": b"text/plain",
                                  b"origin": b"http://evil.example"}, 403),
        ("POST", "/v1/events", {b"host": HOST, b"content-type": b"application/json",
                                b"origin": SAME}, None),
        ("POST", "/v1/events", {b"host": HOST, b"content-type": b"text/plain"}, None),  # route
    ],
)  # fmt: skip
def test_middleware_refuses_before_the_app(
    method: str, path: str, headers: dict[bytes, bytes], refused: int | None
) -> None:
    import asyncio

    inner = Recorder()
    guard = BrowserGuard(inner, hosts=Settings().api_allowed_hosts, origins="")
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(guard(_scope(method, path, headers), receive, send))  # type: ignore[arg-type]
    if refused is None:
        assert inner.called and not sent
    else:
        assert not inner.called
        assert sent[0]["status"] == refused
        assert b'"error"' in sent[1]["body"]  # type: ignore[operator]
