"""A lean HTTP/1.1 client for the upstream (``upstream.transport: lean``): asyncio Protocols, a
keep-alive pool, and a response object with exactly the subset of ``aiohttp.ClientResponse`` the
gateway uses (``status``, ``reason``, ``headers``, ``content.iter_any()``, ``read()``,
``release()``, ``close()``).

It exists because aiohttp's client (ClientSession.request, its connector, ClientResponse and
StreamReader) was a third of the gateway's CPU per small request. What it leaves out: redirects,
cookies, compression, proxies, 100-continue, request bodies of unknown length (every body here has
a Content-Length).

Errors are aiohttp's own exception classes (or ``ConnectError``, an ``aiohttp.ClientConnectionError``),
so the callers' ``except (aiohttp.ClientError, OSError)`` see no difference:

- connecting failed → ``ConnectError``; connecting (or waiting for a pool slot) took longer than
  the connect timeout → ``asyncio.TimeoutError``;
- the connection closed before any byte of the response → ``aiohttp.ServerDisconnectedError``
  (a stale pooled connection: the caller may send a replayable request again);
- no byte for ``read_timeout`` while waiting → ``aiohttp.ServerTimeoutError`` (a TimeoutError);
- the body ended early or was malformed → ``aiohttp.ClientPayloadError`` from ``iter_any()``;
- the request body iterator raised → the socket is aborted (the upstream sees a short body) and
  ``aiohttp.ClientOSError`` is raised *from* the iterator's exception.
"""
from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
from typing import AsyncIterator

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["ConnectError", "LeanPool", "LeanResponse"]

_MAX_HEAD = 1024 * 1024          # status line + headers (metadata makes long lines: 64 KiB each)
_READ_HIGH = 512 * 1024          # response bytes buffered before the socket's reading is paused
_READ_LOW = 128 * 1024           # … and resumed
_WRITE_HIGH = 256 * 1024         # request bytes in the transport's buffer before the body waits
_NO_BODY_STATUS = frozenset({204, 304})

# parser states
_HEAD, _BODY_LENGTH, _BODY_CHUNKED, _BODY_EOF, _DONE = range(5)


class ConnectError(aiohttp.ClientConnectionError):
    """The upstream could not be connected to (refused, unreachable, TLS handshake failed)."""


class _Conn(asyncio.Protocol):
    """One connection to the upstream: writes requests, parses one response at a time."""

    __slots__ = ("pool", "transport", "loop", "reused", "idle_since", "closed", "_buf", "_state",
                 "_remaining", "_chunk_state", "_head_waiter", "_resp", "_is_head", "_write_paused",
                 "_drain_waiter", "_got_bytes", "_read_paused", "keep_alive", "writing")

    def __init__(self, pool: "LeanPool") -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.idle_since = 0.0
        self.closed = False
        self._buf = b""
        self._state = _DONE
        self._remaining = 0
        self._chunk_state = 0
        self._head_waiter: asyncio.Future | None = None
        self._resp: LeanResponse | None = None
        self._is_head = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self._got_bytes = False
        self._read_paused = False
        self.keep_alive = True
        self.writing = False

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.keep_alive = False
        self.pool._lost(self)
        if self._state == _BODY_EOF:      # a body delimited by the connection's end: complete
            self._finish_body()
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
        if self._state == _DONE:
            # bytes nobody asked for (after a complete response, or on an idle connection)
            self.keep_alive = False
            self.abort()
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        try:
            self._feed(data)
        except _ProtocolError as e:
            self._fail(aiohttp.ClientPayloadError(f"malformed upstream response: {e}"))
            self.abort()

    # -- parsing --------------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        while data:
            state = self._state
            if state == _HEAD:
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    if len(data) > _MAX_HEAD:
                        raise _ProtocolError("response head too large")
                    self._buf = data
                    return
                if end > _MAX_HEAD:
                    raise _ProtocolError("response head too large")
                head = data[:end]
                data = data[end + 4:]
                if self._parse_head(head):
                    continue   # a 1xx: the real response follows
            elif state == _BODY_LENGTH:
                n = len(data)
                if n < self._remaining:
                    self._remaining -= n
                    self._resp._feed(data)
                    return
                rest = self._remaining
                if rest:
                    self._resp._feed(data[:rest] if n > rest else data)
                self._remaining = 0
                self._finish_body()
                if n > rest:
                    raise _ProtocolError("bytes after the response body")
                return
            elif state == _BODY_CHUNKED:
                data = self._feed_chunked(data)
            elif state == _BODY_EOF:
                self._resp._feed(data)
                return
            else:
                raise _ProtocolError("bytes after the response")

    def _parse_head(self, head: bytes) -> bool:
        """Status line and headers → the response (returns True for a 1xx to skip)."""
        text = head.decode("utf-8", "surrogateescape")
        lines = text.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise _ProtocolError("malformed status line")
        status = int(code)
        if status < 200:
            return True
        pairs: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name[-1] in " \t" or name[0] in " \t" or " " in name:
                if line and line[0] in " \t" and pairs:   # obsolete line folding
                    pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]} {line.strip()}")
                    continue
                if not line:
                    continue
                raise _ProtocolError("malformed header")
            pairs.append((name, value.strip(" \t")))
        headers = CIMultiDict(pairs)
        length = None
        lengths = headers.getall("content-length", ())
        if lengths:
            if any(not v.isdigit() for v in lengths) or len(set(map(int, lengths))) != 1:
                raise _ProtocolError("bad Content-Length")
            length = int(lengths[0])
        chunked = False
        te = headers.get("transfer-encoding")
        if te is not None:
            chunked = ",".join(headers.getall("transfer-encoding")).lower().rsplit(",", 1)[-1].strip() == "chunked"
            if not chunked:
                raise _ProtocolError("unsupported Transfer-Encoding")
        conn_close = version == "HTTP/1.0"
        connection = headers.get("connection")
        if connection is not None:
            tokens = {t.strip().lower() for t in ",".join(headers.getall("connection")).split(",")}
            if "close" in tokens:
                conn_close = True
            elif "keep-alive" in tokens and version == "HTTP/1.0":
                conn_close = False
        if conn_close:
            self.keep_alive = False
        resp = self._resp = LeanResponse(self, status, reason, CIMultiDictProxy(headers))
        if self._is_head or status in _NO_BODY_STATUS:
            self._finish_body()
        elif chunked:
            if length is not None:
                self.keep_alive = False   # both framings: trust chunked, never reuse the connection
            self._state = _BODY_CHUNKED
            self._chunk_state = 0
        elif length is not None:
            if length == 0:
                self._finish_body()
            else:
                self._state = _BODY_LENGTH
                self._remaining = length
        else:
            self.keep_alive = False
            self._state = _BODY_EOF
        w = self._head_waiter
        if w is not None and not w.done():
            w.set_result(resp)
        return False

    def _feed_chunked(self, data: bytes) -> bytes:
        """One step of the chunked decoder; returns the bytes not yet consumed."""
        st = self._chunk_state
        if st == 0:                                   # chunk-size line
            end = data.find(b"\r\n")
            if end < 0:
                if len(data) > 4096:
                    raise _ProtocolError("chunk size line too long")
                self._buf = data
                return b""
            size_text = data[:end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _ProtocolError("bad chunk size") from None
            if not size_text or size < 0 or size_text[:1] in b"+-":
                raise _ProtocolError("bad chunk size")
            data = data[end + 2:]
            if size == 0:
                self._chunk_state = 3
            else:
                self._remaining = size
                self._chunk_state = 1
            return data
        if st == 1:                                   # chunk data
            n = len(data)
            rem = self._remaining
            if n <= rem:
                self._resp._feed(data)
                self._remaining = rem - n
                if self._remaining == 0:
                    self._chunk_state = 2
                return b""
            self._resp._feed(data[:rem])
            self._remaining = 0
            self._chunk_state = 2
            return data[rem:]
        if st == 2:                                   # CRLF after the chunk
            if len(data) < 2:
                self._buf = data
                return b""
            if data[:2] != b"\r\n":
                raise _ProtocolError("missing CRLF after chunk")
            self._chunk_state = 0
            return data[2:]
        # st == 3: trailer lines until an empty one
        end = data.find(b"\r\n")
        if end < 0:
            if len(data) > _MAX_HEAD:
                raise _ProtocolError("trailer too large")
            self._buf = data
            return b""
        rest = data[end + 2:]
        if end == 0:
            self._finish_body()
            if rest:
                raise _ProtocolError("bytes after the response body")
            return b""
        return rest

    def _finish_body(self) -> None:
        self._state = _DONE
        resp = self._resp
        if resp is not None:
            resp._complete()

    def _fail(self, exc: BaseException | None) -> None:
        """The connection ended (or broke) while a response was expected or streaming."""
        state = self._state
        if state == _DONE:
            return
        if state == _HEAD:
            if isinstance(exc, aiohttp.ClientError):
                err: BaseException = exc
            elif not self._got_bytes:
                # nothing at all came back: a pooled connection the upstream had already closed
                # (the caller may send a replayable request again)
                err = aiohttp.ServerDisconnectedError()
            else:
                err = aiohttp.ClientPayloadError("connection closed in the response head")
            self._state = _DONE
            self.keep_alive = False
            w = self._head_waiter
            if w is not None and not w.done():
                w.set_exception(err)
        elif state != _DONE:
            err = exc if isinstance(exc, aiohttp.ClientError) else aiohttp.ClientPayloadError(
                "Response payload is not completed" + (f": {exc!r}" if exc else ""))
            self._state = _DONE
            self.keep_alive = False
            if self._resp is not None:
                self._resp._error(err)

    # -- flow control ---------------------------------------------------------------------------
    def pause_reading(self) -> None:
        if not self._read_paused and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        if self.closed:
            raise aiohttp.ClientOSError("connection lost while sending the request")
        if self._write_paused:
            w = self._drain_waiter = self.loop.create_future()
            # an upstream that stops reading our body for read_timeout is given up on
            timer = self.loop.call_later(self.pool.read_timeout, _timeout, w)
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
        self._state = _HEAD
        self._buf = b""
        self._resp = None
        self._is_head = is_head
        self._got_bytes = False
        w = self._head_waiter = self.loop.create_future()
        return w


class _ProtocolError(Exception):
    pass


class LeanResponse:
    """The upstream's answer; ``content`` is the response itself (``iter_any``, ``read``)."""

    __slots__ = ("_conn", "status", "reason", "headers", "_chunks", "_size", "_eof", "_exc",
                 "_waiter", "_released", "writer")

    def __init__(self, conn: _Conn, status: int, reason: str, headers: CIMultiDictProxy) -> None:
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
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _READ_HIGH:
            self._conn.pause_reading()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _complete(self) -> None:
        self._eof = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _error(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- reading --------------------------------------------------------------------------------
    async def _wait(self) -> None:
        conn = self._conn
        if conn._read_paused:
            conn.resume_reading()
        loop = conn.loop
        w = self._waiter = loop.create_future()
        timer = loop.call_later(conn.pool.read_timeout, _timeout, w)
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
                if conn._read_paused:
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
    def transport(self) -> asyncio.Transport | None:
        return self._conn.transport

    def can_splice(self) -> bool:
        """The body has a length and is still arriving on a healthy connection."""
        conn = self._conn
        return (conn._state == _BODY_LENGTH and conn._remaining > 0 and not conn.closed
                and self._exc is None and not self._released)

    async def splice_to(self, client_sock, before) -> int:
        """Send the rest of the body to ``client_sock`` through a pipe. ``before(pieces)`` first
        sends the pieces already read (and must leave nothing buffered on the client side).
        Returns the bytes moved by the kernel; on failure the upstream connection is dropped."""
        from . import splice
        conn = self._conn
        conn.pause_reading()   # from now on the socket is read by splice only
        pieces = list(self._chunks)
        self._chunks.clear()
        self._size = 0
        try:
            await before(pieces)
            moved = await splice.relay(conn.loop, conn.transport.get_extra_info("socket"), client_sock,
                                       conn._remaining, conn.pool.read_timeout)
        except BaseException:
            conn.keep_alive = False
            conn.abort()
            raise
        conn._remaining = 0
        conn._finish_body()
        conn.resume_reading()
        return moved

    async def read(self, n: int = -1) -> bytes:
        """``n`` < 0: the whole (rest of the) body; else up to ``n`` bytes (b"" at the end)."""
        if n < 0:
            parts = []
            while True:
                data = await self.readany()
                if not data:
                    return b"".join(parts)
                parts.append(data)
        if n == 0:
            return b""
        data = await self.readany()
        if len(data) > n:
            self._chunks.appendleft(data[n:])
            self._size += len(data) - n
            data = data[:n]
        return data

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
        elif conn._state != _DONE or self._exc is not None:
            conn.abort()
        conn.pool._release(conn)

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


def _timeout(w: asyncio.Future) -> None:
    if not w.done():
        w.set_exception(aiohttp.ServerTimeoutError("Timeout on reading data from the upstream"))


class LeanPool:
    """Keep-alive connections to one ``http(s)://host:port``: at most ``max_connections`` open (idle
    and busy), idle ones reused last-in first-out and closed after ``keepalive_timeout``."""

    def __init__(self, endpoint: str, *, max_connections: int = 256, connect_timeout: float = 5.0,
                 read_timeout: float = 300.0, verify_tls: bool = True,
                 keepalive_timeout: float = 30.0) -> None:
        from yarl import URL
        url = URL(endpoint)
        self.host = url.host
        self.port = url.port
        self.ssl: ssl_module.SSLContext | None = None
        if url.scheme == "https":
            ctx = ssl_module.create_default_context()
            if not verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl_module.CERT_NONE
            self.ssl = ctx
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive_timeout = keepalive_timeout
        self.loop = asyncio.get_running_loop()
        self._idle: list[_Conn] = []
        self._busy: set[_Conn] = set()
        self._connecting = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def size(self) -> int:
        """Connections open now, idle and busy (and being opened)."""
        return len(self._idle) + len(self._busy) + self._connecting

    # -- the pool -------------------------------------------------------------------------------
    async def _acquire(self) -> _Conn:
        idle = self._idle
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if now - conn.idle_since > self.keepalive_timeout:
                conn.abort()
                continue
            conn.reused = True
            self._busy.add(conn)
            return conn
        async with asyncio.timeout(self.connect_timeout):
            while self.size >= self.max_connections:
                w = self.loop.create_future()
                self._waiters.append(w)
                try:
                    await w
                except BaseException:
                    if w.done() and not w.cancelled():
                        self._wake()      # pass the slot on
                    raise
                finally:
                    try:
                        self._waiters.remove(w)
                    except ValueError:
                        pass
                if idle:
                    return await self._acquire()
            if self._closed:
                raise aiohttp.ClientConnectionError("upstream pool closed")
            self._connecting += 1
            try:
                _, conn = await self.loop.create_connection(
                    lambda: _Conn(self), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None)
            except (OSError, ssl_module.SSLError) as e:
                self._connecting -= 1
                self._wake()
                raise ConnectError(f"cannot connect to {self.host}:{self.port}: {e}") from e
            except BaseException:
                self._connecting -= 1
                self._wake()
                raise
            self._connecting -= 1
        if conn.closed:
            raise ConnectError(f"connection to {self.host}:{self.port} closed at once")
        self._busy.add(conn)
        return conn

    def _release(self, conn: _Conn) -> None:
        self._busy.discard(conn)
        if conn.keep_alive and not conn.closed and not self._closed and conn._state == _DONE:
            conn.idle_since = self.loop.time()
            conn._resp = None
            conn._head_waiter = None
            if conn._read_paused:
                conn.resume_reading()
            self._idle.append(conn)
            if self._sweeper is None:
                self._sweeper = self.loop.call_later(self.keepalive_timeout / 2, self._sweep)
        else:
            conn.abort()
        self._wake()

    def _lost(self, conn: _Conn) -> None:
        if conn in self._busy:
            return       # its response releases it
        try:
            self._idle.remove(conn)
        except ValueError:
            pass
        self._wake()

    def _wake(self) -> None:
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
                return

    def _sweep(self) -> None:
        self._sweeper = None
        deadline = self.loop.time() - self.keepalive_timeout
        idle = self._idle
        while idle and idle[0].idle_since < deadline:   # oldest first
            idle.pop(0).abort()
        if idle:
            self._sweeper = self.loop.call_later(self.keepalive_timeout / 2, self._sweep)

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._idle) + list(self._busy):
            conn.abort()
        self._idle.clear()
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        await asyncio.sleep(0)   # let connection_lost run

    # -- a request ------------------------------------------------------------------------------
    async def request(self, method: str, target: str, headers: dict[str, str],
                      body: "AsyncIterator[bytes] | bytes | None" = None) -> LeanResponse:
        """Send one request (``headers`` complete: Host, Content-Length, signature) and return the
        response once its head has arrived; its body streams through ``iter_any()``."""
        parts = [f"{method} {target} HTTP/1.1"]
        parts += [f"{k}: {v}" for k, v in headers.items()]
        parts.append("\r\n")
        text = "\r\n".join(parts)
        n = len(parts)
        if text.count("\n") != n or text.count("\r") != n:
            raise ValueError("newline in a header")   # no header may smuggle in another
        head = text.encode("utf-8", "surrogateescape")
        conn = await self._acquire()
        writer = None
        try:
            waiter = conn.begin(method == "HEAD")
            transport = conn.transport
            if body is None or isinstance(body, (bytes, bytearray, memoryview)):
                if not body:
                    transport.write(head)
                elif len(body) <= 65536:
                    transport.write(head + body)      # one write, one segment for small bodies
                else:
                    transport.write(head)
                    transport.write(body)
            else:
                # the head leaves with the body's first piece (as aiohttp's client sends it): one
                # write for a small body, and the upstream sees no request before its body starts
                writer = self.loop.create_task(_write_body(conn, head, body))
                writer.add_done_callback(_retrieve)
                # the upstream usually answers once the body is whole; if it answers earlier,
                # or sending fails, that comes first
                await asyncio.wait((waiter, writer), return_when=asyncio.FIRST_COMPLETED)
                if writer.done() and writer.exception() is not None and not (
                        waiter.done() and not waiter.cancelled() and waiter.exception() is None):
                    if not waiter.done():
                        waiter.cancel()
                    elif not waiter.cancelled():
                        waiter.exception()   # retrieved: the body's failure is the one to report
                    raise writer.exception()
            if waiter.done():
                resp = waiter.result()
            else:
                # the read timeout runs from the moment the request has been sent whole
                timer = self.loop.call_later(self.read_timeout, _timeout, waiter)
                try:
                    resp = await waiter
                finally:
                    timer.cancel()
            resp.writer = writer
        except BaseException:
            if writer is not None and not writer.done():
                writer.cancel()
            conn.abort()
            self._release(conn)
            raise
        return resp


async def _write_body(conn: _Conn, head: bytes | None, body) -> None:
    transport = conn.transport
    try:
        async for piece in body:
            if conn.closed:
                raise aiohttp.ClientOSError("connection lost while sending the request")
            if head is not None:
                if len(piece) <= 65536:
                    piece = head + piece
                else:
                    transport.write(head)
                head = None
            transport.write(piece)
            if conn._write_paused:
                await conn.drain()
        if head is not None:
            transport.write(head)
    except asyncio.CancelledError:
        conn.abort()
        raise
    except BaseException as e:
        # the body refused itself (or the client went away): cut the upstream off mid-body, so it
        # sees a short body and commits nothing
        conn.abort()
        if isinstance(e, aiohttp.ClientError):
            raise
        raise aiohttp.ClientOSError(f"request body failed: {e!r}") from e
    finally:
        conn.writing = False


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()   # reported through the response (or deliberately dropped), never logged
