"""A lean HTTP/1.1 client for the upstream (``upstream.transport: lean``): the keep-alive pool and
the sending of one request (this module); each connection and its llhttp response parser
(:mod:`.connection`); the response as it streams (:mod:`.stream`); a request body's writer
(:mod:`.body_writer`).

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
import socket
import ssl as ssl_module
from typing import AsyncIterator

import aiohttp
from yarl import URL

from .body_writer import retrieve, write_body
from .connection import UpstreamConnection
from .stream import LeanResponse, timeout_waiter

__all__ = ["ConnectError", "LeanPool", "LeanResponse"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_ESTABLISHED = 1


class ConnectError(aiohttp.ClientConnectionError):
    """The upstream could not be connected to (refused, unreachable, TLS handshake failed)."""


class LeanPool:
    """Keep-alive connections to one ``http(s)://host:port``: at most ``max_connections`` open (idle
    and busy), idle ones reused last-in first-out and closed after ``keepalive_timeout``."""

    def __init__(self, endpoint: str, *, max_connections: int = 256, connect_timeout: float = 5.0,
                 read_timeout: float = 300.0, verify_tls: bool = True,
                 keepalive_timeout: float = 30.0) -> None:
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
        self._idle: list[UpstreamConnection] = []
        self._busy: set[UpstreamConnection] = set()
        self._connecting = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def size(self) -> int:
        """Connections open now, idle and busy (and being opened)."""
        return len(self._idle) + len(self._busy) + self._connecting

    # -- the pool -------------------------------------------------------------------------------
    async def _acquire(self, check_open: bool = False) -> UpstreamConnection:
        """A connection: the most recently used idle one, else a new one. ``check_open``: a pooled
        connection is first checked for an end the upstream already sent, so that a request that
        must not be sent twice is not written on a connection that is closing."""
        idle = self._idle
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if now - conn.idle_since > self.keepalive_timeout or (check_open and not _still_open(conn)):
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
                    return await self._acquire(check_open)
            if self._closed:
                raise aiohttp.ClientConnectionError("upstream pool closed")
            self._connecting += 1
            try:
                _, conn = await self.loop.create_connection(
                    lambda: UpstreamConnection(self), self.host, self.port, ssl=self.ssl,
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

    def release(self, conn: UpstreamConnection) -> None:
        """A response is done with its connection: back to the pool if reusable, else closed."""
        self._busy.discard(conn)
        if conn.keep_alive and not conn.closed and not self._closed and conn.response_done:
            conn.idle_since = self.loop.time()
            conn.reset()
            self._idle.append(conn)
            if self._sweeper is None:
                self._sweeper = self.loop.call_later(self.keepalive_timeout / 2, self._sweep)
        else:
            conn.abort()
        self._wake()

    def lost(self, conn: UpstreamConnection) -> None:
        """The connection closed (the upstream hung up, or we aborted it)."""
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
        conn = await self._acquire(method not in _IDEMPOTENT)
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
                writer = self.loop.create_task(write_body(conn, head, body))
                writer.add_done_callback(retrieve)
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
                timer = self.loop.call_later(self.read_timeout, timeout_waiter, waiter)
                try:
                    resp = await waiter
                finally:
                    timer.cancel()
            resp.writer = writer
        except BaseException:
            if writer is not None and not writer.done():
                writer.cancel()
            conn.abort()
            self.release(conn)
            raise
        return resp


def _still_open(conn: UpstreamConnection) -> bool:
    """The upstream has not ended this idle connection: its TCP state is still ESTABLISHED (not
    CLOSE_WAIT: a FIN the event loop has not read yet). Linux's TCP_INFO; elsewhere, assumed open."""
    sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
    if sock is None:
        return False
    if _TCP_INFO is None:
        return True
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0] == _TCP_ESTABLISHED
    except OSError:
        return False
