"""One client connection (``Connection``: parse, queue, answer in order); the ``Server`` that owns
them all (limits, idle sweeping, graceful shutdown) is :mod:`.server`.

Per connection: httptools parses whatever arrives; each complete head becomes a ``Request`` queued
for the connection's one task, which hands requests to the handler one at a time and writes their
answers in order (pipelining works; no task per request). A body streams into the request's
``BodyStream`` (gateway/server/body.py); when it is full, the socket stops being read. When a
handler answers without reading the whole body (an upload refused early), the rest is read and
dropped for up to ``lingering_time`` so the answer is not destroyed by a reset, and the connection
is kept — unless the client waits for ``100 Continue`` it was never sent: then the connection closes.

Limits (defaults in gateway/config.py ``limits``): a header field and the request line up to
``max_field_bytes``, the whole head up to ``max_head_bytes`` and ``max_header_fields`` fields
(``RequestHeaderSectionTooLarge``, 431); a head must complete within ``head_timeout`` of the
connection's opening or of its previous answer (slow-loris); an idle connection closes after
``keepalive_timeout``; a client that stops reading its answer for ``send_timeout`` is cut off;
past ``max_connections`` a new connection is answered 503 SlowDown and closed. Repeated singleton
headers (``Host``, ``Content-Length``, ``Authorization``, ``x-amz-date``, ...) are refused (400):
joined, they could be read one way here and another upstream. ``Expect`` other than
``100-continue`` is refused with 417.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import httptools

from ..errors import ClientClosed, S3Error
from ..observability import log
from .body import EMPTY, BodyStream
from .request import SINGLETON_HEADERS, Request

if TYPE_CHECKING:
    from .server import Server


_BODY_LIMIT = 128 * 1024     # body bytes buffered per request before the socket stops being read
_MAX_QUEUED = 8              # pipelined requests parsed ahead of the one being answered
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Connection(asyncio.Protocol):
    """One client connection (plain or TLS)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.scheme = "http"
        self.pending: deque[Request | S3Error] = deque()
        self.parsing: Request | None = None   # the request whose head or body is arriving
        self.busy = False
        self.closed = False
        self.upgrade = False
        self.write_paused = False
        self.last_active = 0.0
        self._task: asyncio.Task | None = None
        self._waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None
        self._broken = False                # the parser gave up: nothing more is read
        self._reading_paused = False        # by a body's flow control
        self._queue_paused = False          # by too many pipelined requests
        self._in_head = False
        self._began = False                 # a message began during the current feed
        self._head_bytes = 0                # bytes of the head being parsed, counted exactly
        self._head_chunks = 0               # bytes of reads that were wholly head (bounds memory)
        self._head_started = 0.0
        self._served = 0
        self._url = b""
        self._raw: list[tuple[str, str]] = []

    @property
    def idle(self) -> bool:
        return not self.busy and not self.pending and not self._in_head

    # -- asyncio protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        server = self.server
        self.last_active = self._head_started = self.loop.time()
        if len(server.connections) >= server.max_connections:
            # over the cap: a clear answer, then the connection closes (nothing is parsed)
            self._broken = True
            transport.write(server.reject(S3Error("SlowDown", "Too many connections to the gateway; "
                                                  "reduce your request rate.")).render(_ErrorRequest(self)))
            transport.close()
            return
        server.connections.add(self)
        self._task = self.loop.create_task(self._run())

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._broken = True   # nothing more is parsed; the parser (holding our callbacks) goes
        self.parser = None    # now, not with the next pass of the cycle collector
        self.server.connections.discard(self)
        req = self.parsing
        if req is not None and not req.complete and req.content is not EMPTY:
            req.content.set_exception(ClientClosed("Connection lost"))
        if req is not None and req.done_waiter is not None and not req.done_waiter.done():
            req.done_waiter.set_result(None)
        self._wake()
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_exception(ClientClosed("Connection lost"))

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        was_in_head = self._in_head
        self._began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # an Upgrade (h2c, websocket) is not taken: answered as HTTP/1.1, then closed
            self.upgrade = True
            self._broken = True
        except httptools.HttpParserError as e:
            self._parse_failed(e)
            return
        if self._in_head and was_in_head and not self._began and not self._broken:
            # a read that was head from end to end (llhttp buffers an unfinished field): counted
            # whole, so a head that never ends cannot grow without bound; a read that also held
            # the end of a previous body is not, so pipelining is not mistaken for a big head
            self._head_chunks += len(data)
            if self._head_chunks > self.server.max_head_bytes + self.server.max_field_bytes:
                self._refuse(S3Error("RequestHeaderSectionTooLarge"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        w = self._drain_waiter
        if w is not None and not w.done():
            w.set_result(None)

    # the body stream's flow control (aiohttp's StreamReader calls these)
    @property
    def connected(self) -> bool:
        return not self.closed

    def pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            self._set_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._set_reading()

    def _set_reading(self) -> None:
        t = self.transport
        if t is None or self.closed:
            return
        try:
            if self._reading_paused or self._queue_paused:
                t.pause_reading()
            else:
                t.resume_reading()
        except RuntimeError:
            pass

    # -- httptools callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._began = True
        self._head_bytes = self._head_chunks = 0
        if self._served or self.busy or self.pending:
            self._head_started = self.loop.time()   # the first head's clock runs from connecting
        self._url = b""
        self._raw = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if len(self._url) > self.server.max_field_bytes:
            self._refuse(S3Error("RequestHeaderSectionTooLarge", "The request line is too long."))

    def on_header(self, name: bytes, value: bytes) -> None:
        server = self.server
        n = len(name) + len(value)
        self._head_bytes += n + 4
        if n > server.max_field_bytes or self._head_bytes > server.max_head_bytes \
                or len(self._raw) >= server.max_header_fields:
            self._refuse(S3Error("RequestHeaderSectionTooLarge"))
            return
        self._raw.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._broken:
            return
        p = self.parser
        raw = self._raw
        headers: dict[str, str] = {}
        for k, v in raw:
            k = k.lower()
            if k in headers:
                if k in SINGLETON_HEADERS:
                    self._refuse(S3Error("InvalidArgument", f"The header {k} may appear only once.",
                                         ArgumentName=k))
                    return
                headers[k] = f"{headers[k]},{v}"
            else:
                headers[k] = v
        expect = headers.get("expect")
        continue_wanted = False
        if expect is not None:
            if expect.strip().lower() != "100-continue":
                self._refuse(S3Error("ExpectationFailed", ArgumentName="Expect"))
                return
            continue_wanted = p.get_http_version() == "1.1"
        length = headers.get("content-length")
        content_length = int(length) if length is not None else None
        if content_length or "transfer-encoding" in headers:
            content = BodyStream(self, self.loop, high=_BODY_LIMIT,
                                 on_first_read=self._send_continue if continue_wanted else None)
        else:
            content = EMPTY
        target = self._url.decode("utf-8", "surrogateescape")
        if target[:1] != "/" and "://" in target:     # absolute-form: http://host/path
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        req = Request(self, p.get_method().decode("ascii"), target, _version(p.get_http_version()), raw,
                      headers, content, content_length, p.should_keep_alive())
        self.parsing = req
        self._queue(req)

    def on_body(self, body: bytes) -> None:
        req = self.parsing
        if req is not None and not req.discard:
            req.content.feed_data(body)
        elif req is not None and req.content.continue_pending:
            # the body came without waiting for 100 Continue, to be dropped: never say it now
            req.content.read_nowait()

    def on_message_complete(self) -> None:
        req = self.parsing
        if req is None:
            return
        self.parsing = None
        req.complete = True
        if req.content is not EMPTY:
            req.content.feed_eof()
        if req.done_waiter is not None and not req.done_waiter.done():
            req.done_waiter.set_result(None)

    # -- refusing what cannot be parsed ------------------------------------------------------------
    def _parse_failed(self, e: Exception) -> None:
        req = self.parsing
        if req is not None and not self._in_head:
            # a broken body (bad chunk framing): the request's reader fails; no second answer
            self._broken = True
            if req.content is not EMPTY:
                req.content.set_exception(ConnectionResetError("malformed request body"))
            if req.done_waiter is not None and not req.done_waiter.done():
                req.done_waiter.set_result(None)
            self.parsing = None
            self._stop_reading()
            return
        self._refuse(S3Error("BadRequest"))

    def _refuse(self, err: S3Error) -> None:
        """Answer ``err`` after whatever is already queued, then close; parse nothing more."""
        if self._broken:
            return
        self._broken = True
        self._in_head = False
        self._stop_reading()
        self._queue(err)

    def _stop_reading(self) -> None:
        self._queue_paused = True
        self._set_reading()

    def _queue(self, item: Request | S3Error) -> None:
        self.pending.append(item)
        if len(self.pending) > _MAX_QUEUED and not self._queue_paused:
            self._queue_paused = True
            self._set_reading()
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- timeouts (the server's sweeper calls this about once a second) ----------------------------
    def check_timeouts(self, now: float) -> None:
        if self.closed:
            return
        if self.busy or self.pending:
            return
        if self._in_head or not self._served:
            # a head that never completes (slow-loris), or a connection that never sends one
            if now - self._head_started > self.server.head_timeout:
                self.abort()
        elif now - self.last_active > self.server.keepalive_timeout:
            self.close()

    # -- writing ---------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        t = self.transport
        if self.closed or t is None or t.is_closing():
            raise ClientClosed("Cannot write to closing transport")
        t.write(data)

    def write_many(self, parts) -> None:
        t = self.transport
        if self.closed or t is None or t.is_closing():
            raise ClientClosed("Cannot write to closing transport")
        t.writelines(parts)

    @property
    def may_keep_alive(self) -> bool:
        """The server would keep this connection after the answer (not shutting down, no Upgrade)."""
        return not self.server.closing and not self.upgrade

    def _send_continue(self) -> None:
        if not self.closed and self.parsing is not None and not self.parsing.complete:
            self.write(_CONTINUE)

    async def drain(self) -> None:
        """Until the transport's buffer is below its high mark; a client that reads nothing for
        ``send_timeout`` is cut off (``ClientClosed``)."""
        if not self.write_paused or self.closed:
            if self.closed:
                raise ClientClosed("Connection lost")
            return
        w = self._drain_waiter = self.loop.create_future()
        timer = self.loop.call_later(self.server.send_timeout, self._send_timed_out, w)
        try:
            await w
        finally:
            timer.cancel()
            self._drain_waiter = None

    def _send_timed_out(self, w: asyncio.Future) -> None:
        if not w.done():
            log.info("client_send_timeout", timeout_seconds=self.server.send_timeout)
            w.set_exception(ClientClosed("the client stopped reading"))
            self.abort()

    async def flushed(self) -> None:
        """Until the transport has handed everything written so far to the kernel."""
        t = self.transport
        if self.closed or t is None:
            raise ClientClosed("Connection lost")
        if not t.get_write_buffer_size():
            return
        t.set_write_buffer_limits(high=0)   # pause_writing now; resume_writing when it is empty
        try:
            await self.drain()
        finally:
            if not self.closed:
                t.set_write_buffer_limits()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # -- the connection's task -------------------------------------------------------------------
    async def _run(self) -> None:
        server = self.server
        handler = server.handler
        pending = self.pending
        try:
            while True:
                if not pending:
                    if self.closed or (server.closing and not self._in_head):
                        return
                    self.last_active = self.loop.time()
                    w = self._waiter = self.loop.create_future()
                    try:
                        await w
                    finally:
                        self._waiter = None
                    continue
                item = pending.popleft()
                if self._queue_paused and not self._broken and len(pending) < _MAX_QUEUED // 2:
                    self._queue_paused = False
                    self._set_reading()
                if isinstance(item, S3Error):
                    if not self.closed:
                        self.write(server.reject(item).render(_ErrorRequest(self)))
                        self.close()
                    return
                req = item
                self.busy = True
                resp = await handler(req)
                if not resp.prepared:
                    self.write(resp.render(req))    # type: ignore[attr-defined]
                elif not resp.finished:
                    self.abort()            # a streamed answer that did not end: never pass it as whole
                    return
                keep = resp.keep_alive
                self.busy = False
                self._served += 1
                if keep and not req.complete:
                    # a client still waiting for 100 Continue sends no body: nothing to linger for
                    keep = not req.content.continue_pending and await self._linger(req)
                if not keep or self.upgrade:
                    self.close()
                    return
                self.last_active = self.loop.time()
        except (ConnectionError, asyncio.CancelledError):
            self.abort()
        except Exception:
            log.exception("connection_error")
            self.abort()
        finally:
            self.busy = False
            self._task = None   # the task no longer holds itself through us

    async def _linger(self, req: Request) -> bool:
        """Read and drop the rest of a body the handler did not read; True when it all came."""
        req.discard = True
        if self._broken or self.closed:
            return False
        if self._reading_paused:
            self._reading_paused = False
            self._set_reading()
        if req.complete:
            return True
        w = req.done_waiter = self.loop.create_future()
        try:
            await asyncio.wait_for(w, self.server.lingering_time)
        except asyncio.TimeoutError:
            return False
        return req.complete and not self.closed


def _version(v: str) -> tuple[int, int]:
    return (1, 1) if v == "1.1" else (1, 0) if v == "1.0" else tuple(int(x) for x in v.split("."))  # type: ignore[return-value]


class _ErrorRequest:
    """What ``Response.render`` needs to answer a request that could not be parsed."""
    __slots__ = ("channel", "method", "version", "keep_alive")

    def __init__(self, conn: Connection) -> None:
        self.channel = conn
        self.method = "GET"
        self.version = (1, 1)
        self.keep_alive = False
