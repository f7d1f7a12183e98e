"""redis-py connections with the worker's two hot paths in C: packing and buffered replies.

A batch goes out as one pipeline of a few hundred commands of tens of arguments each (one
Lua call per user and per list, ``pipeline.stores.commands``). redis-py's asyncio connection
spends more CPU on that than Redis does (issue #15, py-spy on a draining worker):

* **packing**: every argument of every command goes through an encoder call, a length and
  two joins in Python. ``hiredis.pack_command`` does the same in C and gives the same bytes
  for the types redis-py encodes (str, bytes, int, float; ``tests/unit/stores``); anything
  else (a multi-word command name, a type hiredis refuses) goes through redis-py's packer,
  which also raises redis-py's own errors;
* **replies**: every reply of a pipeline is read under its own ``socket_timeout``, an
  ``asyncio.timeout`` armed and cancelled per reply (a timer on the event loop each), though
  after the first read the rest of the replies are already in the parser's buffer. A reply
  that hiredis finds complete in the buffer is taken without arming one; a read that has to
  wait for the socket still runs under the timeout, through redis-py's own path. The
  buffered reply gets redis-py's treatment: errors raised, a connection error disconnects.

``fast_connection(base)`` wraps any of redis-py's connection classes (plain, TLS, Unix
socket); ``pipeline.stores.client`` builds every client with it.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

from hiredis import pack_command
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

C = TypeVar("C", bound=AbstractConnection)

_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def fast_connection(base: type[C]) -> type[C]:
    """``base`` with hiredis packing and buffered replies (one class per base)."""
    if issubclass(base, _Fast):
        return base
    if base not in _CLASSES:
        _CLASSES[base] = type(f"Fast{base.__name__}", (_Fast, base), {})
    return cast("type[C]", _CLASSES[base])


class _Fast(AbstractConnection):
    """Mixed in before a redis-py connection class (see the module doc)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        """One command in RESP, packed by hiredis."""
        head = args[0] if args else None
        if isinstance(head, str) and " " not in head:
            try:
                return [pack_command(args)]
            except TypeError:
                pass  # a type hiredis does not pack: redis-py packs it or raises its error
        return super().pack_command(*args)

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,
        *,
        disconnect_on_error: bool = True,
        push_request: bool | None = False,
    ) -> Any:
        """The next reply; one already buffered is taken without arming a read timeout."""
        parser = self._parser
        # redis-py's private parser state, read defensively: without it, redis-py's own path
        reader = getattr(parser, "_reader", None)
        if (
            timeout is None
            and not disable_decoding
            and not push_request
            and isinstance(parser, _AsyncHiredisParser)
            and getattr(parser, "_connected", False)
            and reader is not None
        ):
            reply = reader.gets()
            if reply is not NOT_ENOUGH_DATA:
                return await self._buffered(reply, parser, disconnect_on_error)
        return await super().read_response(
            disable_decoding,
            timeout,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )

    async def _buffered(
        self, reply: Any, parser: _AsyncHiredisParser, disconnect_on_error: bool
    ) -> Any:
        """What redis-py's read path does with a reply (parser, then connection)."""
        push = getattr(parser, "_hiredis_PushNotificationType", None)
        if push is not None and isinstance(reply, push):
            await cast("Any", parser).handle_push_response(reply)
            return await self.read_response(disconnect_on_error=disconnect_on_error)
        failed = reply if isinstance(reply, RedisConnectionError) else None
        if isinstance(reply, list) and reply and isinstance(reply[0], RedisConnectionError):
            failed = reply[0]
        if failed is not None:
            if disconnect_on_error:
                await self.disconnect(nowait=True)
            raise failed
        if self.health_check_interval:
            self.next_health_check = asyncio.get_running_loop().time() + self.health_check_interval
        if isinstance(reply, ResponseError):
            raise reply from None
        return reply
