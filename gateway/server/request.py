"""A client's request as the server parsed it: method, target, headers and the body stream."""
from __future__ import annotations

from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy

if TYPE_CHECKING:
    import asyncio

    from aiohttp import StreamReader

    from .protocol import Connection


class Request:
    """One request. ``raw_path`` is the target as sent (path and query, still percent-encoded);
    ``header_dict`` has lowercase names with repeated headers joined by ``,``; ``headers`` is the
    same as received (case-insensitive multidict), built only when asked for."""

    __slots__ = ("method", "raw_path", "version", "raw_headers", "header_dict", "content", "content_length",
                 "keep_alive", "transport", "scheme", "complete", "discard", "_conn", "_headers", "_done")

    def __init__(self, conn: "Connection", method: str, raw_path: str, version: tuple[int, int],
                 raw_headers: list[tuple[str, str]], header_dict: dict[str, str], content: "StreamReader",
                 content_length: int | None, keep_alive: bool) -> None:
        self._conn = conn
        self.method = method
        self.raw_path = raw_path
        self.version = version
        self.raw_headers = raw_headers
        self.header_dict = header_dict
        self.content = content
        self.content_length = content_length
        self.keep_alive = keep_alive
        self.transport: "asyncio.Transport | None" = conn.transport
        self.scheme = conn.scheme
        self.complete = False       # the whole message (body included) has been received
        self.discard = False        # the answer is out: the rest of the body is read and dropped
        self._headers: CIMultiDictProxy[str] | None = None
        self._done: "asyncio.Future[None] | None" = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        h = self._headers
        if h is None:
            h = self._headers = CIMultiDictProxy(CIMultiDict(self.raw_headers))
        return h

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path[:64]!r}>"
