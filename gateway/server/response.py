"""Answers: ``Response`` (a small body, sent in one write) and ``StreamResponse`` (headers, then the
body as it arrives, with back-pressure). The names and methods follow aiohttp's, so a handler reads
the same; the head is rendered here, once, straight into bytes."""
from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import orjson
from multidict import CIMultiDict

if TYPE_CHECKING:
    from .request import Request

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_NO_BODY_STATUS = frozenset({204, 304})
_FRAMING = ("Content-Length", "Transfer-Encoding", "Connection", "Date")
_SMALL = 16 * 1024   # a first body piece up to this size leaves in the same write as the head


class _Date:
    """The ``Date`` header, formatted once a second."""
    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True)
        return self._value


http_date = _Date()


class StreamResponse:
    """Status and headers, then ``write()`` pieces and ``write_eof()``. The head leaves with the first
    body piece (or at the end), so a small answer is one socket write. Without ``content_length`` the
    body is chunked (HTTP/1.1) or ends the connection (HTTP/1.0)."""

    __slots__ = ("status", "reason", "headers", "content_length", "_keep_alive", "_req", "_head_sent",
                 "_chunked", "_eof", "_no_body", "body_length")

    def __init__(self, *, status: int = 200, reason: str | None = None, headers=None) -> None:
        self.status = status
        self.reason = reason
        self.headers: CIMultiDict[str] = CIMultiDict(headers) if headers else CIMultiDict()
        self.content_length: int | None = None
        self._keep_alive = True
        self._req: "Request | None" = None
        self._head_sent = False
        self._chunked = False
        self._eof = False
        self._no_body = False
        self.body_length = 0

    # -- state ------------------------------------------------------------------------------------
    @property
    def prepared(self) -> bool:
        return self._req is not None

    @property
    def finished(self) -> bool:
        return self._eof

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive

    def force_close(self) -> None:
        """Close the connection after this answer (``Connection: close``)."""
        self._keep_alive = False

    # -- the head ---------------------------------------------------------------------------------
    def _render_head(self, req: "Request", length: int | None) -> bytes:
        status = self.status
        keep = self._keep_alive and req.keep_alive and req.channel.may_keep_alive
        headers = self.headers
        for name in _FRAMING:              # the server's to set
            if name in headers:
                del headers[name]
        lines = [f"HTTP/1.1 {status} {self.reason or _REASONS.get(status, 'Unknown')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if status in _NO_BODY_STATUS or 100 <= status < 200:
            pass
        elif length is not None:
            lines.append(f"Content-Length: {length}")
        elif req.version >= (1, 1):
            lines.append("Transfer-Encoding: chunked")
            self._chunked = True
        else:
            keep = False   # an HTTP/1.0 body of unknown length ends with the connection
        lines.append("Date: " + http_date())
        if not keep:
            lines.append("Connection: close")
        elif req.version < (1, 1):
            lines.append("Connection: keep-alive")
        self._keep_alive = keep
        lines.append("\r\n")
        text = "\r\n".join(lines)
        n = len(lines)
        if text.count("\n") != n or text.count("\r") != n:
            raise ValueError("newline in a response header")   # no header may smuggle in another
        return text.encode("utf-8", "surrogateescape")

    # -- streaming --------------------------------------------------------------------------------
    async def prepare(self, request: "Request") -> None:
        if self._req is not None:
            return
        self._req = request
        self._no_body = request.method == "HEAD" or self.status in _NO_BODY_STATUS

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        req = self._req
        assert req is not None, "prepare() first"
        if not data or self._no_body:
            return
        conn = req.channel
        n = len(data)
        self.body_length += n
        if not self._head_sent:
            self._head_sent = True
            head = self._render_head(req, self.content_length)
            if self._chunked:
                conn.write_many((head, b"%x\r\n" % n, data, b"\r\n"))
            elif n <= _SMALL:
                conn.write(head + data)
            else:
                conn.write_many((head, data))
        elif self._chunked:
            conn.write_many((b"%x\r\n" % n, data, b"\r\n"))
        else:
            conn.write(data)
        if conn.write_paused:
            await conn.drain()

    async def send_head(self) -> None:
        """Send the head now and wait until everything written so far has left the transport's
        buffer: the body follows by other means (``upstream.splice`` writes to the socket)."""
        req = self._req
        assert req is not None, "prepare() first"
        if not self._head_sent:
            self._head_sent = True
            req.channel.write(self._render_head(req, self.content_length))
        await req.channel.flushed()

    async def write_eof(self) -> None:
        if self._eof:
            return
        req = self._req
        assert req is not None, "prepare() first"
        self._eof = True
        conn = req.channel
        if not self._head_sent:
            self._head_sent = True
            length = self.content_length
            if length is None and self._no_body:
                length = 0 if self.status not in _NO_BODY_STATUS else None
            head = self._render_head(req, length)
            conn.write(head + b"0\r\n\r\n" if self._chunked else head)
        elif self._chunked:
            conn.write(b"0\r\n\r\n")
        if conn.write_paused:
            await conn.drain()


class Response(StreamResponse):
    """A whole answer with a small body (XML, JSON, nothing): one write, with a Content-Length."""

    __slots__ = ("body",)

    def __init__(self, *, status: int = 200, reason: str | None = None, headers=None,
                 body: bytes | None = None, content_type: str | None = None) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self.body = body or b""
        if content_type is not None:
            self.headers["Content-Type"] = content_type

    def render(self, request: "Request") -> bytes:
        """Head and body, as bytes (the server writes them once the handler returns)."""
        self._req = request
        self._eof = True
        body = self.body
        if body and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "application/octet-stream"
        if self.status in _NO_BODY_STATUS:
            return self._render_head(request, None)
        head = self._render_head(request, len(body))
        return head if request.method == "HEAD" or not body else head + body


def json_response(data, *, status: int = 200) -> Response:
    return Response(status=status, body=orjson.dumps(data), content_type="application/json")
