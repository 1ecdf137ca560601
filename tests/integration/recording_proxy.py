"""A recording TCP proxy: the counting proxy that also keeps each request's headers and the status
the upstream answered it with — what a store executed, seen from outside the gateway.

``exchanges`` lists (method, target, headers, status) in the order the answers came back; the
answers of one connection are matched to its requests in order (HTTP/1.1 has no other way).
"""
from __future__ import annotations

import asyncio
import collections

from .counting_proxy import CountingProxy


class RecordingProxy(CountingProxy):
    def __init__(self, upstream_endpoint: str, upload_bytes_per_s: float | None = None) -> None:
        super().__init__(upstream_endpoint)
        self.exchanges: list[tuple[str, str, dict[str, str], int]] = []
        self.upload_bytes_per_s = upload_bytes_per_s   # a slow store: requests forwarded at this rate

    def answered(self, method: str, target_prefix: str, status: int | None = None) -> list:
        with self._lock:
            return [x for x in self.exchanges if x[0] == method and x[1].split("?")[0] == target_prefix
                    and (status is None or x[3] == status)]

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        sent: collections.deque = collections.deque()
        upload = self._pipe if self.upload_bytes_per_s is None else self._slow_pipe
        await asyncio.gather(upload(client_r, up_w, _Requests(self, sent)),
                             self._pipe(up_r, client_w, _Responses(self, sent)), return_exceptions=True)

    async def _slow_pipe(self, reader, writer, parser) -> None:
        try:
            while True:
                data = await reader.read(16384)
                if not data:
                    break
                parser.feed(data)
                writer.write(data)
                await writer.drain()
                await asyncio.sleep(len(data) / self.upload_bytes_per_s)
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except (ConnectionError, OSError, RuntimeError):
                pass


def _head(buf: bytes):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, buf[end + 4:]


class _Requests:
    def __init__(self, proxy: RecordingProxy, sent: collections.deque) -> None:
        self.proxy, self.sent, self.buf, self.skip = proxy, sent, b"", 0

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf, self.skip = self.buf[n:], self.skip - n
                if self.skip:
                    return
            parsed = _head(self.buf)
            if parsed is None:
                return
            line, headers, self.buf = parsed
            method, target = (line.split(" ") + ["", ""])[:2]
            with self.proxy._lock:
                self.proxy.requests.append((method, target))
            self.sent.append((method, target, headers))
            self.skip = int(headers.get("content-length", "0") or 0)


class _Responses:
    def __init__(self, proxy: RecordingProxy, sent: collections.deque) -> None:
        self.proxy, self.sent, self.buf = proxy, sent, b""
        self.skip = 0
        self.chunked = False
        self.opaque = False

    def feed(self, data: bytes) -> None:
        if self.opaque:
            return
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf, self.skip = self.buf[n:], self.skip - n
                if self.skip:
                    return
            if self.chunked:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(self.buf[:end].split(b";")[0] or b"0", 16)
                self.buf = self.buf[end + 2:]
                if size == 0:
                    self.chunked = False
                    self.skip = 2          # the empty trailer's CRLF
                else:
                    self.skip = size + 2
                continue
            parsed = _head(self.buf)
            if parsed is None:
                return
            line, headers, self.buf = parsed
            status = int(line.split(" ")[1])
            if status == 100:
                continue
            method, target, req_headers = self.sent.popleft() if self.sent else ("?", "?", {})
            with self.proxy._lock:
                self.proxy.exchanges.append((method, target, req_headers, status))
            if method == "HEAD" or status in (204, 304):
                continue
            if headers.get("transfer-encoding", "").lower() == "chunked":
                self.chunked = True
            elif "content-length" in headers:
                self.skip = int(headers["content-length"])
            else:
                self.opaque = True
                return
