"""A request body as it arrives: ``BodyStream``, fed by the connection (``feed_data``,
``feed_eof``, ``set_exception``) and read by the handler (``read_nowait``, ``readany``, ``read``,
``readline``, ``unread_data``, ``at_eof`` — what the payload verifier and aiohttp's multipart reader
use), with flow control: past ``high`` buffered bytes the socket stops being read, below ``low``
it is read again.

``100 Continue`` is sent on the first read, as Go's net/http does: a request refused before its
body is read (a bad signature, a key without the right, an operation R2 does not implement) is
answered without the client ever being told to send the body.
"""
from __future__ import annotations

import collections
from typing import Callable, Protocol

from aiohttp.http_exceptions import LineTooLong

from ..reading import read_up_to


class FlowControl(Protocol):
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class BodyStream:
    __slots__ = ("_flow", "_chunks", "_size", "_eof", "_exc", "_waiter", "_on_first_read", "_high",
                 "_low", "_loop")

    def __init__(self, flow: FlowControl, loop, *, high: int = 256 * 1024,
                 on_first_read: Callable[[], None] | None = None) -> None:
        self._flow = flow
        self._loop = loop
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter = None
        self._on_first_read = on_first_read
        self._high = high
        self._low = high // 4

    # -- fed by the connection ------------------------------------------------------------------
    def feed_data(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self._high:
            self._flow.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        self._wake()

    def exception(self) -> BaseException | None:
        return self._exc

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- read by the handler --------------------------------------------------------------------
    @property
    def continue_pending(self) -> bool:
        """The client waits for ``100 Continue`` and has not been told yet."""
        return self._on_first_read is not None

    def _first_read(self) -> None:
        cb = self._on_first_read
        if cb is not None:
            self._on_first_read = None
            cb()

    def at_eof(self) -> bool:
        return self._eof and not self._chunks

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        self._flow.resume_reading()
        return data

    def read_nowait(self) -> bytes:
        """What has arrived (b"" if nothing has, or at the end); never waits."""
        if self._on_first_read is not None:
            self._first_read()
        if self._chunks:
            return self._take()
        if self._exc is not None:
            raise self._exc
        return b""

    async def _wait(self) -> None:
        w = self._waiter = self._loop.create_future()
        try:
            await w
        finally:
            self._waiter = None

    async def readany(self) -> bytes:
        """Some bytes (waiting for them), b"" at the end."""
        if self._on_first_read is not None:
            self._first_read()
        while True:
            if self._chunks:
                return self._take()
            if self._exc is not None:
                raise self._exc
            if self._eof:
                return b""
            await self._wait()

    async def read(self, n: int = -1) -> bytes:
        """``n`` < 0: the whole rest; else up to ``n`` bytes (b"" at the end)."""
        return await read_up_to(self, n)

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        """Up to and including the next b"\\n" (or the rest at the end); longer than
        ``max_line_length`` (default: the buffer's high mark) raises ``LineTooLong``."""
        limit = max_line_length or self._high
        line = b""
        while True:
            data = await self.readany()
            if not data:
                return line
            i = data.find(b"\n")
            if i >= 0:
                line += data[:i + 1]
                if i + 1 < len(data):
                    self.unread_data(data[i + 1:])
                if len(line) > limit:
                    raise LineTooLong(line[:100] + b"...", limit)
                return line
            line += data
            if len(line) > limit:
                raise LineTooLong(line[:100] + b"...", limit)

    def unread_data(self, data: bytes) -> None:
        """Put bytes back at the front (multipart's reader looks ahead)."""
        if data:
            self._chunks.appendleft(bytes(data))
            self._size += len(data)


class _NoFlow:
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


#: The body of every request that has none: at its end from the start (never fed, so shared).
EMPTY = BodyStream(_NoFlow(), None)
EMPTY.feed_eof()
