"""The upstream's answer as it streams in: ``LeanResponse``, with exactly the subset of
``aiohttp.ClientResponse`` the gateway uses (``status``, ``reason``, ``headers``,
``content.iter_any()``, ``read()``, ``release()``, ``close()``), read-side flow control, and the hand
over of the rest of a body to the kernel (``splice_to``, gateway/upstream/splice.py)."""
from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, AsyncIterator

import aiohttp
from multidict import CIMultiDictProxy

from ..reading import read_up_to
from . import splice

if TYPE_CHECKING:
    from .connection import UpstreamConnection

READ_HIGH = 512 * 1024          # response bytes buffered before the socket's reading is paused


def timeout_waiter(w: asyncio.Future) -> None:
    if not w.done():
        w.set_exception(aiohttp.ServerTimeoutError("Timeout on reading data from the upstream"))


class LeanResponse:
    """The upstream's answer; ``content`` is the response itself (``iter_any``, ``read``)."""

    __slots__ = ("_conn", "status", "reason", "headers", "_chunks", "_size", "_eof", "_exc",
                 "_waiter", "_released", "writer")

    def __init__(self, conn: "UpstreamConnection", status: int, reason: str, headers: CIMultiDictProxy) -> None:
        self._conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._released = False
        self.writer: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"<LeanResponse {self.status} {self.reason}>"

    @property
    def content(self) -> "LeanResponse":
        """The body stream (the response itself; a property, not an attribute, so that a response
        is no reference cycle and is freed when its last reference goes, without the collector)."""
        return self

    # fed by the connection
    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > READ_HIGH:
            self._conn.pause_reading()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def complete(self) -> None:
        self._eof = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def error(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- reading --------------------------------------------------------------------------------
    async def _wait(self) -> None:
        conn = self._conn
        if conn.read_paused:
            conn.resume_reading()
        loop = conn.loop
        w = self._waiter = loop.create_future()
        timer = loop.call_later(conn.pool.read_timeout, timeout_waiter, w)
        try:
            await w
        finally:
            timer.cancel()
            self._waiter = None

    async def readany(self) -> bytes:
        """The bytes buffered now (waiting for some); b"" at the end of the body."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._size = 0
                conn = self._conn
                if conn.read_paused:
                    conn.resume_reading()
                return data
            if self._exc is not None:
                raise self._exc
            if self._eof:
                return b""
            if self._released:
                raise aiohttp.ClientConnectionError("response already released")
            await self._wait()

    def iter_any(self) -> AsyncIterator[bytes]:
        return _IterAny(self)

    # -- relaying the rest of the body inside the kernel (upstream/splice.py) --------------------
    @property
    def reading_paused(self) -> bool:
        """The socket's reading is paused: the client is slower than the upstream."""
        return self._conn.read_paused

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._conn.transport

    def can_splice(self) -> bool:
        """The body has a length and is still arriving on a healthy connection."""
        conn = self._conn
        return conn.splice_ready() and self._exc is None and not self._released

    async def splice_to(self, client_sock, before, send_timeout: float | None = None, tally=None) -> int:
        """Send the rest of the body to ``client_sock`` through a pipe. ``before(pieces)`` first
        sends the pieces already read (and must leave nothing buffered on the client side);
        ``tally(n)`` is told of every ``n`` bytes the kernel moves, also on a failure.
        Returns the bytes moved by the kernel; on failure the upstream connection is dropped."""
        conn = self._conn
        conn.pause_reading()   # from now on the socket is read by splice only
        pieces = list(self._chunks)
        self._chunks.clear()
        self._size = 0
        try:
            await before(pieces)
            moved = await splice.relay(conn.loop, conn.transport.get_extra_info("socket"), client_sock,
                                       conn.remaining, conn.pool.read_timeout, send_timeout, tally)
        except BaseException:
            conn.keep_alive = False
            conn.abort()
            raise
        conn.remaining = 0
        conn.finish_body()
        conn.resume_reading()
        return moved

    async def read(self, n: int = -1) -> bytes:
        """``n`` < 0: the whole (rest of the) body; else up to ``n`` bytes (b"" at the end)."""
        return await read_up_to(self, n)

    def unread_data(self, data: bytes) -> None:
        """Put bytes back at the front (for ``read(n)``)."""
        if data:
            self._chunks.appendleft(bytes(data))
            self._size += len(data)

    # -- ending ---------------------------------------------------------------------------------
    def release(self) -> None:
        """Done with the response: the connection goes back to the pool if the whole body arrived
        (and the request was sent whole), else it is closed."""
        if self._released:
            return
        self._released = True
        self._chunks.clear()
        conn = self._conn
        writer = self.writer
        if writer is not None and not writer.done():
            writer.cancel()
            conn.abort()
        elif not conn.response_done or self._exc is not None:
            conn.abort()
        conn.pool.release(conn)

    def close(self) -> None:
        if self._released:
            return
        self._conn.abort()
        self.release()

    async def __aenter__(self) -> "LeanResponse":
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()


class _IterAny:
    __slots__ = ("_resp",)

    def __init__(self, resp: LeanResponse) -> None:
        self._resp = resp

    def __aiter__(self) -> "_IterAny":
        return self

    async def __anext__(self) -> bytes:
        data = await self._resp.readany()
        if not data:
            raise StopAsyncIteration
        return data
