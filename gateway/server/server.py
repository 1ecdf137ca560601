"""The client-facing server: the handler, the limits every connection applies (see
:mod:`.protocol` for what each means), every open connection (for sweeping idle and slow ones) and
graceful shutdown. ``Server()`` is the protocol factory for ``loop.create_server``."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from ..errors import S3Error
from .protocol import Connection
from .request import Request
from .response import Response, StreamResponse

Handler = Callable[[Request], Awaitable[StreamResponse]]
Reject = Callable[[S3Error], Response]


class Server:
    """The handler, the limits, and every open connection (for sweeping and shutdown)."""

    def __init__(self, handler: Handler, reject: Reject, *, max_field_bytes: int = 16 * 1024,
                 max_head_bytes: int = 32 * 1024, max_header_fields: int = 100,
                 keepalive_timeout: float = 75.0, head_timeout: float = 60.0,
                 send_timeout: float = 60.0, max_connections: int = 4096,
                 lingering_time: float = 10.0) -> None:
        self.handler = handler
        self.reject = reject
        self.max_field_bytes = max_field_bytes
        self.max_head_bytes = max(max_head_bytes, max_field_bytes)
        self.max_header_fields = max_header_fields
        self.keepalive_timeout = keepalive_timeout
        self.head_timeout = head_timeout
        self.send_timeout = send_timeout
        self.max_connections = max_connections
        self.lingering_time = lingering_time
        self.connections: set[Connection] = set()
        self.closing = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> "Connection":
        """The protocol factory for ``loop.create_server``."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self._sweep_later()
        return Connection(self)

    # -- idle and slow connections ---------------------------------------------------------------
    def _sweep_later(self) -> None:
        period = max(0.05, min(1.0, self.keepalive_timeout / 4, self.head_timeout / 4))
        self._sweeper = self.loop.call_later(period, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            conn.check_timeouts(now)
        if not self.closing:
            self._sweep_later()

    # -- shutdown --------------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        """Every connection closes after the answer it is writing; idle ones close now."""
        self.closing = True
        for conn in list(self.connections):
            if conn.idle:
                conn.close()

    def abort_all(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.abort()
