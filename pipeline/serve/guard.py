"""Requests a browser could be tricked into sending are refused before anything runs.

Two attacks reach an API on loopback from a web page the user merely visits:

* **DNS rebinding**: a page on ``evil.example`` re-points that name at 127.0.0.1 and reads
  the API as "its own" origin. Its requests carry ``Host: evil.example``, so every request
  whose ``Host`` is not in ``Settings.api_allowed_hosts`` (loopback names by default; the
  port is ignored) is refused with ``400``. The probes ``/health`` and ``/ready`` and the
  Prometheus page ``/metrics`` are exempt: load balancers, orchestrators and Prometheus call
  them by address (``serve:8000``), and they reveal nothing about any user.
* **Cross-site request forgery**: a page may send a "simple" request without a CORS
  preflight: ``POST`` with a ``text/plain``, ``application/x-www-form-urlencoded`` or
  ``multipart/form-data`` body (a ``<form>`` or a ``fetch``). A write (any method but
  ``GET``/``HEAD``/``OPTIONS``) is therefore refused with ``403`` when it carries an
  ``Origin`` that is neither the server's own (same host and port as ``Host``) nor listed in
  ``Settings.api_cors_origins``, and with ``415`` when its ``Content-Type`` is not
  ``application/json`` (only a bodiless write, such as ``DELETE``, may send none). A
  browser never sends ``application/json`` cross-site without a preflight, which the CORS
  middleware answers only for listed origins, so either rule alone stops the attack; both
  hold with and without API keys.

Clients that are not browsers (curl, SDKs, other services) send no ``Origin`` and are not
affected beyond naming the JSON they send. The rules are pure functions. :class:`BrowserGuard`
applies the ``Host`` and ``Origin`` rules as the outermost ASGI middleware after the access
log, so the list read answered below the framework (``pipeline.serve.fastpath``) obeys them
too; :func:`require_json` is a dependency of the write routes, so a method no route takes
is still ``405``.

>>> hosts = allowed_hosts("localhost,127.0.0.1,[::1]")
>>> check_host(b"127.0.0.1:8000", hosts) is None, check_host(b"evil.example", hosts).status
(True, 400)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.serve.services import ApiError, error_response

log = logging.getLogger(__name__)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROBES = frozenset({"/health", "/ready", "/metrics"})
JSON_MEDIA_TYPE = "application/json"
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_SHOWN = 64  # at most this much of a refused header is echoed back


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: status, stable ``error`` code, and a sentence for people."""

    status: int
    code: str
    detail: str


def allowed_hosts(setting: str) -> frozenset[str] | None:
    """The host names of ``Settings.api_allowed_hosts``; None when it allows any (``*``).

    IPv6 addresses may be given with or without brackets; names are compared in lower case.

    >>> sorted(allowed_hosts("LocalHost, ::1"))
    ['[::1]', 'localhost']
    >>> allowed_hosts("*") is None
    True
    """
    names: set[str] = set()
    for raw in setting.split(","):
        name = raw.strip().lower().rstrip(".")
        if name == "*":
            return None
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        if name:
            names.add(name)
    return frozenset(names)


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (port dropped), lower case.

    >>> host_name("LocalHost:8000"), host_name("[::1]:8000"), host_name("evil.example.")
    ('localhost', '[::1]', 'evil.example')
    """
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else ""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        host = name
    return host.rstrip(".")


def check_host(header: bytes | None, allowed: frozenset[str] | None) -> Refusal | None:
    """Refuse a ``Host`` outside the allow-list (None: allowed)."""
    if allowed is None:
        return None
    host = (header or b"").decode("latin-1")
    if host and host_name(host) in allowed:
        return None
    shown = host[:_SHOWN] or "(none)"
    detail = (
        f"Host {shown!r} is not served here; allowed: {', '.join(sorted(allowed))} "
        "(RECLOOP_API_ALLOWED_HOSTS)"
    )
    return Refusal(400, "host_not_allowed", detail)


def cors_origins(setting: str) -> frozenset[str]:
    """The normalised origins of ``Settings.api_cors_origins`` (``*`` kept as is).

    >>> sorted(cors_origins("https://Console.example/, http://localhost:3000"))
    ['http://localhost:3000', 'https://console.example']
    """
    return frozenset(filter(None, (_origin(o) for o in setting.split(","))))


def _origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case without a default port or a trailing slash."""
    value = value.strip().lower().rstrip("/")
    for scheme, port in _DEFAULT_PORTS.items():
        if value.startswith(f"{scheme}://") and value.endswith(port):
            return value[: -len(port)]
    return value


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` names the server itself (same host and port as ``Host``).

    The scheme is not compared: a proxy in front may terminate TLS.

    >>> same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    True
    >>> same_origin("http://evil.example:8000", "127.0.0.1:8000")
    False
    """
    parts = urlsplit(_origin(origin))
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False
    return parts.netloc == _origin(f"{parts.scheme}://{host}").partition("://")[2]


def check_origin(
    method: str, origin: bytes | None, host: bytes | None, listed: frozenset[str]
) -> Refusal | None:
    """Refuse a write from a foreign browser ``Origin`` (None: allowed).

    >>> listed = frozenset({"https://console.example"})
    >>> check_origin("POST", b"https://console.example", b"h", listed) is None
    True
    >>> check_origin("POST", b"http://evil.example", b"h", listed).code
    'origin_not_allowed'
    >>> check_origin("DELETE", None, b"h", listed) is None  # not a browser
    True
    """
    if method in SAFE_METHODS or origin is None:
        return None
    sent = origin.decode("latin-1")
    if "*" in listed or _origin(sent) in listed:
        return None
    if same_origin(sent, (host or b"").decode("latin-1")):
        return None
    detail = (
        f"Origin {sent[:_SHOWN]!r} may not write here: only the server's own origin and "
        "those in RECLOOP_API_CORS_ORIGINS may"
    )
    return Refusal(403, "origin_not_allowed", detail)


def check_content_type(method: str, content_type: str | None) -> Refusal | None:
    """Refuse a write whose body is not JSON (None: allowed).

    Only ``application/json`` (any parameters) is accepted; a write without a body (a
    ``DELETE``) may send no ``Content-Type``, a ``POST`` must send one.

    >>> check_content_type("POST", "application/json; charset=utf-8") is None
    True
    >>> check_content_type("POST", "text/plain").status, check_content_type("POST", None).status
    (415, 415)
    >>> check_content_type("DELETE", None) is None, check_content_type("DELETE", "text/plain").code
    (True, 'unsupported_media_type')
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON_MEDIA_TYPE or (not media and method != "POST"):
        return None
    detail = f"writes take Content-Type: {JSON_MEDIA_TYPE} (got {media[:_SHOWN] or 'none'})"
    return Refusal(415, "unsupported_media_type", detail)


async def require_json(request: Request) -> None:
    """Dependency of every write route: :func:`check_content_type`.

    A route dependency rather than middleware, so a method no route takes is still ``405``.
    """
    refusal = check_content_type(request.method, request.headers.get("content-type"))
    if refusal is not None:
        raise ApiError(refusal.status, refusal.code, refusal.detail)


class BrowserGuard:
    """ASGI middleware applying :func:`check_host` and :func:`check_origin` (module doc)."""

    def __init__(self, app: ASGIApp, *, hosts: str, origins: str) -> None:
        self.app = app
        self.hosts = allowed_hosts(hosts)
        self.origins = cors_origins(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request with an ``ErrorBody``, or pass it on untouched."""
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                log.info("refused request reason=%s method=%s", refusal.code, scope["method"])
                response = error_response(refusal.status, refusal.code, refusal.detail)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> Refusal | None:
        """The first rule the request breaks, if any."""
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
        if scope["path"] not in PROBES:
            refused = check_host(host, self.hosts)
            if refused is not None:
                return refused
        return check_origin(scope["method"], origin, host, self.origins)
