"""The hot read, answered below the framework: ``GET /v1/users/{id}/recommendations``.

Reading a list is one Redis GET; FastAPI's routing, dependency solving and middleware cost
several times that in CPU. This ASGI middleware answers the plain case itself (valid query,
valid key or none needed, no CORS request) with exactly the bytes and headers the route
would send, and passes everything else (errors, 401/403, odd queries, preflights, an
exception of any kind) to the app, so every non-trivial answer still comes from the
documented route. The schemathesis test runs through both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.clock import wall_ms
from pipeline.serve.auth import AuthError
from pipeline.serve.services import Services
from pipeline.stores.reads import recommendations
from schemas.limits import MAX_CONTEXT_LENGTH, MAX_ID_LENGTH

log = logging.getLogger(__name__)


_PATH = re.compile(r"/v1/users/([^/]+)/recommendations")
_MAX_N = 200


@dataclass(frozen=True)
class _Route:
    """Stands in for the matched route in ``scope["route"]`` (the access log reads ``path``)."""

    path: str = "/v1/users/{user_id}/recommendations"


FAST_ROUTE = _Route()


def parse_query(raw: bytes) -> dict[str, Any] | None:
    """``n``, ``locale``, ``device`` when the query is plainly valid; None sends it on.

    >>> parse_query(b"n=5&locale=en-GB")
    {'n': 5, 'locale': 'en-GB', 'device': None}
    >>> parse_query(b"n=0") is None, parse_query(b"x=1") is None
    (True, True)
    """
    out: dict[str, Any] = {"n": None, "locale": None, "device": None}
    if not raw:
        return out
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen or name not in out:
            return None
        seen.add(name)
        if name == "n":
            if not value.isdigit() or not 1 <= int(value) <= _MAX_N:
                return None
            out["n"] = int(value)
        elif len(value) > MAX_CONTEXT_LENGTH:
            return None
        else:
            out[name] = value
    return out


class RecommendationsFastPath:
    """ASGI middleware serving the happy path of the list read (see module doc)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.svc = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain list read, or hand the request to the app."""
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.fullmatch(scope["path"])
            if match is not None and await self._answer(match.group(1), scope, send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, user_id: str, scope: Scope, send: Send) -> bool:
        headers = dict(scope["headers"])
        if b"origin" in headers:  # CORS: let the middleware decide
            return False
        query = parse_query(scope["query_string"])
        if query is None or len(user_id) > MAX_ID_LENGTH:
            return False
        presented = headers.get(b"x-api-key")
        if presented is None:
            auth = headers.get(b"authorization", b"")
            presented = auth[7:] if auth[:7].lower() == b"bearer " else None
        try:
            self.svc.keys.check(presented.decode("latin-1") if presented else None, "read")
            body, source = await recommendations(
                self.svc.redis,
                self.svc.keys_layout,
                user_id,
                n=query["n"],
                locale=query["locale"],
                device=query["device"],
                list_size=self.svc.settings.list_size,
                now_ms=wall_ms(),
            )
        except AuthError:
            return False
        except Exception as exc:  # the route will answer it (503 for Redis, ...)
            log.debug("fast path declined error=%r", exc)
            return False
        scope["route"] = FAST_ROUTE
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                    (b"x-recloop-source", source.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return True
