"""A request body fed by another task that never makes that task wait: what lets a GET's body go
to the client at the client's pace and into a store's PUT at the store's, in one pass, with bounded
memory. The bytes the store has not taken yet are held — up to ``limit`` for one body and up to a
:class:`Budget` shared by every pipe; a piece beyond either is refused, and the writer then gives
the copy up (``fail()``: the PUT is cut off mid-body and stores nothing) rather than slow the reader.
"""
from __future__ import annotations

import asyncio
import collections

MiB = 1024 * 1024


class Budget:
    """Bytes held by all the pipes that share it, at most ``limit``."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class Pipe:
    """An async request body fed with ``offer()``: True if the piece was taken; False (and nothing
    is taken from then on) once the reader has gone (``abandon()``: the PUT answered or failed), or
    if the piece would hold more than ``limit`` bytes of this body or exceed the budget — the pipe
    then fails at once (``overflowed``), so the PUT is cut off. ``close()`` ends the body,
    ``fail()`` makes the reader raise."""

    __slots__ = ("length", "_chunks", "_size", "_limit", "_budget", "_ended", "_error", "_gone", "_data",
                 "sent", "overflowed")

    def __init__(self, length: int, limit: int = 64 * MiB, budget: Budget | None = None) -> None:
        self.length = length
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._limit = limit
        self._budget = budget if budget is not None else Budget(limit)
        self._ended = False
        self._error: BaseException | None = None
        self._gone = False
        self._data: asyncio.Future | None = None
        self.sent = 0
        self.overflowed = False     # a piece was refused for want of room: the body is incomplete

    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def failed(self) -> bool:
        return self._error is not None

    def offer(self, data: bytes) -> bool:
        if self._gone or self.overflowed:
            return False
        n = len(data)
        budget = self._budget
        if self._size + n > self._limit or budget.used + n > budget.limit:
            self.overflowed = True
            self.fail(BufferError("the reader of this body fell too far behind"))
            return False
        self._chunks.append(data)
        self._size += n
        budget.used += n
        self.sent += n
        f = self._data
        if f is not None and not f.done():
            f.set_result(None)
        return True

    def close(self) -> None:
        self._ended = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._ended = True
        self._release()
        self._wake()

    def abandon(self) -> None:
        self._gone = True
        self._release()

    def _release(self) -> None:
        self._budget.used -= self._size
        self._chunks.clear()
        self._size = 0

    def _wake(self) -> None:
        f = self._data
        if f is not None and not f.done():
            f.set_result(None)

    def __aiter__(self) -> "Pipe":
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                data = self._chunks.popleft()
                self._size -= len(data)
                self._budget.used -= len(data)
                return data
            if self._ended:
                raise StopAsyncIteration
            self._data = asyncio.get_running_loop().create_future()
            try:
                await self._data
            finally:
                self._data = None
