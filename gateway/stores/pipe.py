"""A request body fed by another task, bounded: what lets one stream go to two places (the client
and a write to a store) without holding more than ``limit`` bytes of it."""
from __future__ import annotations

import asyncio
import collections

MiB = 1024 * 1024


class Pipe:
    """An async request body fed by ``send()`` from another task: ``send`` waits while more than
    ``limit`` bytes are buffered (back-pressure), ``close()`` ends the body, ``fail()`` makes the
    reader raise (the PUT is cut off mid-body and stores nothing). Once the reader has gone
    (``abandon()``: the PUT answered or failed), ``send`` returns False and buffers nothing."""

    __slots__ = ("length", "_chunks", "_size", "_limit", "_ended", "_error", "_gone", "_space",
                 "_data", "sent")

    def __init__(self, length: int, limit: int = 8 * MiB) -> None:
        self.length = length
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._limit = limit
        self._ended = False
        self._error: BaseException | None = None
        self._gone = False
        self._space: asyncio.Future | None = None
        self._data: asyncio.Future | None = None
        self.sent = 0

    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def failed(self) -> bool:
        return self._error is not None

    async def send(self, data: bytes) -> bool:
        if self._gone:
            return False
        self._chunks.append(data)
        self._size += len(data)
        self.sent += len(data)
        _wake(self._data)
        while self._size > self._limit and not self._gone:
            self._space = asyncio.get_running_loop().create_future()
            try:
                await self._space
            finally:
                self._space = None
        return not self._gone

    def close(self) -> None:
        self._ended = True
        _wake(self._data)

    def fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._ended = True
        _wake(self._data)

    def abandon(self) -> None:
        self._gone = True
        self._chunks.clear()
        self._size = 0
        _wake(self._space)

    def __aiter__(self) -> "Pipe":
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._error is not None:
                raise self._error
            if self._chunks:
                data = self._chunks.popleft()
                self._size -= len(data)
                if self._size <= self._limit:
                    _wake(self._space)
                return data
            if self._ended:
                raise StopAsyncIteration
            self._data = asyncio.get_running_loop().create_future()
            try:
                await self._data
            finally:
                self._data = None


def _wake(f: asyncio.Future | None) -> None:
    if f is not None and not f.done():
        f.set_result(None)
