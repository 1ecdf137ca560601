"""A client's request as the server parsed it: method, target, headers and the body stream."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Protocol

from multidict import CIMultiDict, CIMultiDictProxy

if TYPE_CHECKING:
    import asyncio

    from .body import BodyStream


# headers that may appear once: RFC 9110's singletons (as aiohttp's parser refuses them) and the
# ones S3 signs or acts on, whose joined form would mean something else upstream
SINGLETON_HEADERS = frozenset({
    "content-length", "content-location", "content-range", "content-type", "etag", "host",
    "max-forwards", "server", "transfer-encoding", "user-agent", "authorization", "expect",
    "content-md5", "range", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
    "x-amz-copy-source", "x-amz-copy-source-range", "x-amz-decoded-content-length", "x-amz-trailer",
    "x-amz-sdk-checksum-algorithm", "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256", "x-amz-acl",
    "x-amz-storage-class", "x-amz-metadata-directive", "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since",
})


class Channel(Protocol):
    """What an answer needs of its connection (``server/protocol.Connection`` provides it)."""
    write_paused: bool

    @property
    def may_keep_alive(self) -> bool: ...   # not shutting down, no Upgrade pending
    def write(self, data: bytes) -> None: ...
    def write_many(self, parts: Iterable[bytes]) -> None: ...
    async def drain(self) -> None: ...      # below the high mark (or the send timeout)
    async def flushed(self) -> None: ...    # everything written has reached the kernel


class Request:
    """One request. ``raw_path`` is the target as sent (path and query, still percent-encoded);
    ``header_dict`` has lowercase names with repeated headers joined by ``,``; ``headers`` is the
    same as received (case-insensitive multidict), built only when asked for."""

    __slots__ = ("method", "raw_path", "version", "raw_headers", "header_dict", "content", "content_length",
                 "keep_alive", "transport", "scheme", "complete", "discard", "channel", "_headers", "done_waiter")

    def __init__(self, conn, method: str, raw_path: str, version: tuple[int, int],
                 raw_headers: list[tuple[str, str]], header_dict: dict[str, str], content: "BodyStream",
                 content_length: int | None, keep_alive: bool) -> None:
        self.channel: Channel = conn
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
        self.done_waiter: "asyncio.Future[None] | None" = None   # set by the server while it lingers

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        h = self._headers
        if h is None:
            h = self._headers = CIMultiDictProxy(CIMultiDict(self.raw_headers))
        return h

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path[:64]!r}>"
