"""API keys: a read key and an admin (write) key from settings, compared in constant time.

========================  =================================================================
configured                 who may do what
========================  =================================================================
no key                     everyone may do everything, and ``recloop serve`` binds
                           127.0.0.1 only (it says so at start)
read and/or admin key      every ``/v1`` request needs a key (``X-API-Key: KEY`` or
                           ``Authorization: Bearer KEY``); the read key allows reads, the
                           admin key allows everything (writes, forget, dead letters)
========================  =================================================================

A missing or unknown key is ``401``; a valid key without the right is ``403``. Both keys are
always compared (``hmac.compare_digest``), so timing tells nothing about which one matched.

>>> from pydantic import SecretStr
>>> keys = ApiKeys(SecretStr("r"), SecretStr("a"))
>>> keys.role("a"), keys.role("r"), keys.role("x"), keys.role(None)
('admin', 'read', None, None)
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from pipeline.errors import RecloopError

Role = Literal["read", "admin"]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key.")
bearer = HTTPBearer(auto_error=False, description="API key as a bearer token.")


class AuthError(RecloopError):
    """A request without the right key (answered 401 or 403)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(detail)


class ApiKeys:
    """The configured keys; ``enabled`` when at least one is set."""

    def __init__(self, read: SecretStr | None, admin: SecretStr | None) -> None:
        self._read = read.get_secret_value().encode() if read else None
        self._admin = admin.get_secret_value().encode() if admin else None

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return self._read is not None or self._admin is not None

    def role(self, presented: str | None) -> Role | None:
        """The role of a presented key, or None."""
        if not presented:
            return None
        given = presented.encode()
        is_admin = self._admin is not None and hmac.compare_digest(given, self._admin)
        is_read = self._read is not None and hmac.compare_digest(given, self._read)
        if is_admin:
            return "admin"
        if is_read:
            return "read"
        return None

    def check(self, presented: str | None, needed: Role) -> None:
        """Raise :class:`AuthError` unless ``presented`` grants ``needed``."""
        if not self.enabled:
            return
        role = self.role(presented)
        if role is None:
            what = "missing" if not presented else "not a valid key"
            msg = f"API key {what}: send it as X-API-Key or Authorization: Bearer"
            raise AuthError(401, "unauthorized", msg)
        if needed == "admin" and role != "admin":
            msg = "this operation needs the admin key (RECLOOP_API_ADMIN_KEY)"
            raise AuthError(403, "forbidden", msg)


def _presented(header: str | None, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if header:
        return header
    return credentials.credentials if credentials is not None else None


HeaderKey = Annotated[str | None, Security(api_key_header)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


async def require_read(request: Request, header: HeaderKey, credentials: BearerKey) -> None:
    """Dependency of read endpoints."""
    keys: ApiKeys = request.app.state.services.keys
    keys.check(_presented(header, credentials), "read")


async def require_admin(request: Request, header: HeaderKey, credentials: BearerKey) -> None:
    """Dependency of write endpoints (and of the dead letters, which hold raw payloads)."""
    keys: ApiKeys = request.app.state.services.keys
    keys.check(_presented(header, credentials), "admin")
