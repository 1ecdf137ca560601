"""The source body as the destination's request body: read whole, streamed through the process
(counted and digested), moved by the kernel (:class:`Spliced`), or cut into part buffers
(:class:`Parts`). A source that fails, or sends more or fewer bytes than it announced, makes the
body fail: the destination's request is cut mid-body and stores nothing."""
from __future__ import annotations

import aiohttp

from ..errors import ClientClosed
from ..upstream import splice
from ..upstream.stream import LeanResponse
from . import verify
from .stores import StoreError


class CopyError(Exception):
    """A copy that failed for a reason that retrying will not change (the report's ``reason``)."""


async def stream(resp, size: int, tap: verify.Tap, failure: list):
    """The source body, counted and digested. If it fails (or sends more or fewer bytes than it
    announced) the PUT is cut mid-body, so the destination stores nothing; ``failure`` keeps why."""
    try:
        async for data in source_chunks(resp):
            tap.feed(data)
            if tap.size > size:
                raise CopyError("the source sent more bytes than its Content-Length")
            yield data
        if tap.size != size:
            raise CopyError(f"the source body ended after {tap.size} of {size} bytes")
    except (CopyError, StoreError) as e:
        failure.append(e)
        raise


class Spliced:
    """A one-PUT copy's body moved by the kernel: source socket → pipe → destination socket
    (``upstream.splice``, as the gateway relays big GETs), so its bytes are never copied into the
    process. Counted, not digested: only for a PUT whose Content-MD5 (the source's ETag) makes the
    destination check the bytes. A destination connection that cannot splice (TLS) gets the body
    streamed through the process instead. The source ending early or stalling raises: the PUT is
    cut mid-body and stores nothing."""

    def __init__(self, resp, size: int, tap: verify.Tap, failure: list) -> None:
        self.resp, self.size, self.tap, self.failure = resp, size, tap, failure

    @staticmethod
    def possible(resp) -> bool:
        return splice.AVAILABLE and isinstance(resp, LeanResponse) and resp.can_splice() \
            and splice.usable(resp.transport, resp.transport)

    def __aiter__(self):
        return stream(self.resp, self.size, self.tap, self.failure).__aiter__()

    async def splice_into(self, conn, head: bytes | None) -> bool:
        if not splice.usable(conn.transport, self.resp.transport):
            return False

        async def before(pieces: list[bytes]) -> None:
            data = b"".join(pieces)
            conn.transport.write(head + data if head else data)
            self.tap.moved(len(data))
            await conn.flushed()

        try:
            await self.resp.splice_to(conn.transport.get_extra_info("socket"), before, tally=self.tap.moved)
        except aiohttp.ClientPayloadError as e:      # the source ended early or stalled
            err = StoreError(503, "SourceReadError", f"the source body broke off: {type(e).__name__}")
            self.failure.append(err)
            raise err from None
        except ClientClosed:                          # the destination took nothing, or went away
            raise aiohttp.ClientOSError("the destination stopped taking the body") from None
        if self.tap.size != self.size:
            raise CopyError(f"moved {self.tap.size} of {self.size} bytes")
        return True


async def read_whole(resp, size: int) -> bytes:
    parts, n = [], 0
    async for data in source_chunks(resp):
        n += len(data)
        if n > size:
            raise CopyError("the source sent more bytes than its Content-Length")
        parts.append(data)
    if n != size:
        raise CopyError(f"the source body ended after {n} of {size} bytes")
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def source_chunks(resp):
    try:
        async for data in resp.content.iter_any():
            yield data
    except (aiohttp.ClientError, OSError) as e:
        raise StoreError(503, "SourceReadError", f"the source body broke off: {type(e).__name__}") from None


class Parts:
    """The source body cut into buffers of exactly the requested sizes (one copy of each byte)."""

    def __init__(self, resp, size: int, part: int, tap: verify.Tap) -> None:
        self._it = source_chunks(resp).__aiter__()
        self._size = size
        self._tap = tap
        self._carry = memoryview(b"")
        self.offset = 0

    @property
    def done(self) -> bool:
        return self.offset >= self._size

    async def next(self, n: int) -> bytearray:
        buf = bytearray(n)
        filled = 0
        while filled < n:
            if not self._carry:
                try:
                    data = await self._it.__anext__()
                except StopAsyncIteration:
                    raise CopyError(f"the source body ended after {self.offset + filled} of {self._size} bytes") from None
                self._tap.feed(data)
                self._carry = memoryview(data)
            take = min(len(self._carry), n - filled)
            buf[filled:filled + take] = self._carry[:take]
            self._carry = self._carry[take:]
            filled += take
        self.offset += n
        if self.done and self._carry:
            raise CopyError("the source sent more bytes than its Content-Length")
        return buf
