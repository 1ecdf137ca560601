"""A counting TCP proxy: put it between the gateway and its upstream to see what reaches the upstream.

It forwards bytes both ways unchanged and, on the way to the upstream, reads HTTP/1.1 request
heads (skipping Content-Length bodies) to record every request as (method, target). A request is
recorded when its head arrives, before it is forwarded: by the time the gateway has answered a
client, whatever it asked the upstream for that request has been recorded.
"""
from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit


class CountingProxy:
    def __init__(self, upstream_endpoint: str) -> None:
        u = urlsplit(upstream_endpoint)
        self._target = (u.hostname, u.port)
        self._lock = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- what the upstream was asked ---------------------------------------------------------------
    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.requests[mark:])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> "CountingProxy":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="counting-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("counting proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # -- the proxy -----------------------------------------------------------------------------------
    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._pipe(client_r, up_w, self._RequestParser(self)),
                             self._pipe(up_r, client_w, None), return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if parser is not None:
                    parser.feed(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except (ConnectionError, OSError, RuntimeError):
                pass

    class _RequestParser:
        """Request heads out of a client→upstream byte stream (Content-Length bodies skipped)."""

        def __init__(self, proxy: "CountingProxy") -> None:
            self._proxy = proxy
            self._buf = b""
            self._skip = 0
            self._opaque = False

        def feed(self, data: bytes) -> None:
            if self._opaque:
                return
            self._buf += data
            while True:
                if self._skip:
                    n = min(self._skip, len(self._buf))
                    self._buf = self._buf[n:]
                    self._skip -= n
                    if self._skip:
                        return
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4:]
                lines = head.split("\r\n")
                method, target = (lines[0].split(" ") + ["", ""])[:2]
                with self._proxy._lock:
                    self._proxy.requests.append((method, target))
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value.strip())
                    elif name == "transfer-encoding":
                        self._opaque = True  # the gateway never sends chunked; stop parsing if it did
                        return
                self._skip = length
