"""One keep-alive connection to the upstream (an asyncio Protocol): writes a request, parses one
response at a time with llhttp (``httptools.HttpResponseParser``, the parser of Node.js) and feeds
its body to the :class:`~.stream.LeanResponse`, with flow control both ways.

Strict framing: llhttp refuses malformed status lines, header names, Content-Length values
(``1_0``, non-ASCII digits, two different values), chunk sizes, and Content-Length together with
Transfer-Encoding; any byte after a complete response (or on an idle connection) closes the
connection. Errors are aiohttp's own classes, as :mod:`.pool` documents.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .stream import LeanResponse, timeout_waiter

if TYPE_CHECKING:
    from .pool import LeanPool

__all__ = ["UpstreamConnection", "HEAD", "BODY_LENGTH", "BODY_CHUNKED", "BODY_EOF", "DONE"]

MAX_HEAD = 1024 * 1024          # status line + headers (metadata makes long lines: 64 KiB each)
_WRITE_HIGH = 256 * 1024         # request bytes in the transport's buffer before the body waits
_NO_BODY_STATUS = frozenset({204, 304})

# states of the response being read
HEAD, BODY_LENGTH, BODY_CHUNKED, BODY_EOF, DONE = range(5)


class _ProtocolError(Exception):
    pass


class UpstreamConnection(asyncio.Protocol):
    """One connection to the upstream: writes requests, parses one response at a time."""

    __slots__ = ("pool", "transport", "loop", "reused", "idle_since", "closed", "state", "remaining",
                 "_parser", "_pairs", "_reason", "_head_bytes", "_interim", "_head_waiter", "_resp", "_is_head",
                 "_write_paused", "_drain_waiter", "_got_bytes", "read_paused", "keep_alive", "writing")

    def __init__(self, pool: "LeanPool") -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.idle_since = 0.0
        self.closed = False
        self.state = DONE
        self.remaining = 0             # body bytes still expected (BODY_LENGTH)
        self._parser: httptools.HttpResponseParser | None = None
        self._pairs: list[tuple[str, str]] = []
        self._reason = ""
        self._head_bytes = 0
        self._interim = False          # a 1xx head is being read: the real response follows
        self._head_waiter: asyncio.Future | None = None
        self._resp: LeanResponse | None = None
        self._is_head = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self._got_bytes = False
        self.read_paused = False
        self.keep_alive = True
        self.writing = False

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.keep_alive = False
        self.pool.lost(self)
        if self.state == BODY_EOF:      # a body delimited by the connection's end: complete
            self.finish_body()
        self._fail(exc)
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def eof_received(self):
        return False   # close the transport: connection_lost follows

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        parser = self._parser
        if self.state == DONE or parser is None:
            # bytes nobody asked for (after a complete response, or on an idle connection)
            self.keep_alive = False
            self.abort()
            return
        try:
            parser.feed_data(data)
        except Exception as e:   # llhttp's HttpParserError, or one of ours from a callback
            cause = e.__context__ if isinstance(e.__context__, _ProtocolError) else e
            self._fail(aiohttp.ClientPayloadError(f"malformed upstream response: {cause}"))
            self.abort()

    # -- llhttp callbacks -----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.state != HEAD:
            raise _ProtocolError("bytes after the response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD:
            raise _ProtocolError("response head too large")
        self._pairs.append((name.decode("utf-8", "surrogateescape"),
                            value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 200:
            self._interim = True       # 100 Continue and the like: the real response follows
            self._pairs = []
            self._reason = ""
            return
        headers = CIMultiDict(self._pairs)
        self._pairs = []
        if not parser.should_keep_alive():
            self.keep_alive = False
        lengths = headers.getall("content-length", ())
        length = int(lengths[0]) if lengths else None      # llhttp has checked the digits
        chunked = False
        if "transfer-encoding" in headers:
            te = ",".join(headers.getall("transfer-encoding")).lower()
            chunked = te.rsplit(",", 1)[-1].strip() == "chunked"
            if not chunked:
                raise _ProtocolError("unsupported Transfer-Encoding")
        resp = self._resp = LeanResponse(self, status, self._reason, CIMultiDictProxy(headers))
        if self._is_head or status in _NO_BODY_STATUS:
            self.finish_body()
        elif chunked:
            self.state = BODY_CHUNKED
        elif length is not None:
            if length == 0:
                self.finish_body()
            else:
                self.state = BODY_LENGTH
                self.remaining = length
        else:
            self.keep_alive = False
            self.state = BODY_EOF
        w = self._head_waiter
        if w is not None and not w.done():
            w.set_result(resp)

    def on_status(self, reason: bytes) -> None:
        self._head_bytes += len(reason)
        self._reason += reason.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        state = self.state
        if state == DONE or state == HEAD:
            raise _ProtocolError("bytes after the response body")
        if state == BODY_LENGTH:
            self.remaining -= len(body)
        self._resp.feed(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self.state != DONE:
            self.remaining = 0
            self.finish_body()

    @property
    def response_done(self) -> bool:
        """The response has been read to its end (the connection may serve another)."""
        return self.state == DONE

    def splice_ready(self) -> bool:
        """A body with a length is still arriving on a healthy connection (the kernel can move it)."""
        return self.state == BODY_LENGTH and self.remaining > 0 and not self.closed

    # -- ending a response ----------------------------------------------------------------------
    def finish_body(self) -> None:
        self.state = DONE
        resp = self._resp
        if resp is not None:
            resp.complete()

    def _fail(self, exc: BaseException | None) -> None:
        """The connection ended (or broke) while a response was expected or streaming."""
        state = self.state
        if state == DONE:
            return
        self.state = DONE
        self.keep_alive = False
        if state == HEAD:
            if isinstance(exc, aiohttp.ClientError):
                err: BaseException = exc
            elif not self._got_bytes:
                # nothing at all came back: a pooled connection the upstream had already closed
                # (the caller may send a replayable request again)
                err = aiohttp.ServerDisconnectedError()
            else:
                err = aiohttp.ClientPayloadError("connection closed in the response head")
            w = self._head_waiter
            if w is not None and not w.done():
                w.set_exception(err)
        else:
            err = exc if isinstance(exc, aiohttp.ClientError) else aiohttp.ClientPayloadError(
                "Response payload is not completed" + (f": {exc!r}" if exc else ""))
            if self._resp is not None:
                self._resp.error(err)

    # -- flow control ---------------------------------------------------------------------------
    def pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def flushed(self) -> None:
        """Until the transport has handed everything written so far to the kernel (before the
        kernel writes to the socket itself: ``splice``)."""
        t = self.transport
        if self.closed or t is None:
            raise aiohttp.ClientOSError("connection lost while sending the request")
        if not t.get_write_buffer_size():
            return
        t.set_write_buffer_limits(high=0)   # pause_writing now; resume_writing once it is empty
        try:
            await self.drain()
        finally:
            if not self.closed:
                t.set_write_buffer_limits(high=_WRITE_HIGH)

    async def drain(self) -> None:
        if self.closed:
            raise aiohttp.ClientOSError("connection lost while sending the request")
        if self._write_paused:
            w = self._drain_waiter = self.loop.create_future()
            # an upstream that stops reading our body for read_timeout is given up on
            timer = self.loop.call_later(self.pool.read_timeout, timeout_waiter, w)
            try:
                await w
            finally:
                timer.cancel()
                self._drain_waiter = None
            if self.closed:
                raise aiohttp.ClientOSError("connection lost while sending the request")

    def abort(self) -> None:
        self.keep_alive = False
        t = self.transport
        if t is not None and not self.closed and not t.is_closing():
            t.abort()

    # -- one exchange ---------------------------------------------------------------------------
    def begin(self, is_head: bool) -> asyncio.Future:
        """Ready for the response to a request about to be written; returns the future of its head."""
        self.state = HEAD
        self._parser = httptools.HttpResponseParser(self)
        self._pairs = []
        self._reason = ""
        self._head_bytes = 0
        self._interim = False
        self._resp = None
        self._is_head = is_head
        self._got_bytes = False
        w = self._head_waiter = self.loop.create_future()
        return w

    def reset(self) -> None:
        """Back in the pool: forget the last exchange."""
        self._resp = None
        self._head_waiter = None
        self._parser = None
        if self.read_paused:
            self.resume_reading()
