"""A small asyncio TCP proxy put between the gateway and its upstream, to inject faults and to see
exactly what reaches the upstream.

It runs its own event loop in a thread, so synchronous tests (boto3, http.client) drive it with
plain method calls. It parses the HTTP/1.1 requests flowing *to* the upstream (request line,
headers, Content-Length or chunked body) so that it can

- record every request the upstream receives (``requests``: method, target, headers) — the
  security tests count them;
- apply a :class:`Fault` to the requests whose target matches: delay the response, reset the
  connection (RST) after N bytes of the response or of the request body, or stall the response
  after N bytes (forward nothing more, keep the connection open).

Loopback only: it listens on 127.0.0.1 and connects to the given upstream on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Fault:
    """What to do to the requests whose target contains ``match`` (or for which ``match`` is true)."""
    match: "str | Callable[[ProxiedRequest], bool]"
    delay_response: float = 0.0           # seconds before the first byte of the response is relayed
    reset_response_after: int | None = None  # RST both sides after this many response bytes
    reset_request_after: int | None = None   # RST both sides after this many request-body bytes
    stall_response_after: int | None = None  # relay this many response bytes, then nothing more
    times: int = 1                        # how many requests it applies to (-1: all)
    hits: int = 0

    def matches(self, req: "ProxiedRequest") -> bool:
        if self.times != -1 and self.hits >= self.times:
            return False
        if callable(self.match):
            return bool(self.match(req))
        return self.match in req.target


@dataclass
class ProxiedRequest:
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fault | None = None


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close with RST (SO_LINGER 0): the peer sees ECONNRESET, not an orderly end."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class _RequestParser:
    """Incremental HTTP/1.1 request framing (enough for what aiohttp's client sends)."""

    def __init__(self, on_request: Callable[[ProxiedRequest], None]) -> None:
        self._line = b""          # a partial request head, chunk-size line or trailer line
        self._state = "head"
        self._remaining = 0
        self._on_request = on_request

    def _take_line(self, data: bytes, pos: int, sep: bytes) -> tuple[bytes | None, int]:
        """(the completed line or None, bytes of ``data`` used)."""
        combined = self._line + data[pos:]
        end = combined.find(sep)
        if end < 0:
            self._line = combined
            return None, len(data) - pos
        used = end + len(sep) - len(self._line)
        self._line = b""
        return combined[:end], used

    def feed(self, data: bytes) -> list[tuple[str, int]]:
        """Consume bytes; return [(kind, n)] covering ``data`` in order, kind "head" or "body"."""
        out: list[tuple[str, int]] = []
        pos, n = 0, len(data)
        while pos < n:
            state = self._state
            if state == "head":
                head, used = self._take_line(data, pos, b"\r\n\r\n")
                out.append(("head", used))
                pos += used
                if head is None:
                    break
                lines = head.decode("latin-1").split("\r\n")
                method, target = (lines[0].split(" ") + ["", ""])[:2]
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                self._on_request(ProxiedRequest(method, target, headers))
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    self._state = "size"
                else:
                    self._remaining = int(headers.get("content-length", "0") or 0)
                    self._state = "body" if self._remaining else "head"
            elif state in ("body", "data", "crlf"):
                take = min(self._remaining, n - pos)
                out.append(("body", take))
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = {"body": "head", "data": "crlf", "crlf": "size"}[state]
                    if state == "data":
                        self._remaining = 2
            else:  # "size" or "trailer" lines of the chunked transfer coding
                line, used = self._take_line(data, pos, b"\r\n")
                out.append(("body", used))
                pos += used
                if line is None:
                    break
                if state == "size":
                    self._remaining = int(line.split(b";")[0].strip() or b"0", 16)
                    self._state = "data" if self._remaining else "trailer"
                elif not line:
                    self._state = "head"
        return out


class _Conn:
    def __init__(self, proxy: "FaultProxy", cr, cw) -> None:
        self.proxy = proxy
        self.cr, self.cw = cr, cw
        self.ur: asyncio.StreamReader | None = None
        self.uw: asyncio.StreamWriter | None = None
        self.pending_delay = 0.0
        self.down_reset_budget: int | None = None
        self.down_stall_budget: int | None = None
        self.up_reset_after: int | None = None
        self.up_body_count = 0
        self.closed = False

    def kill(self) -> None:
        if not self.closed:
            self.closed = True
            self.proxy.resets += 1
            _rst(self.cw)
            _rst(self.uw)

    def on_request(self, req: ProxiedRequest) -> None:
        self.proxy.requests.append(req)
        self.up_body_count = 0
        for fault in self.proxy.faults:
            if fault.matches(req):
                fault.hits += 1
                req.fault = fault
                self.pending_delay = fault.delay_response
                self.down_reset_budget = fault.reset_response_after
                self.down_stall_budget = fault.stall_response_after
                self.up_reset_after = fault.reset_request_after
                return
        self.pending_delay = 0.0
        self.down_reset_budget = self.down_stall_budget = self.up_reset_after = None

    async def run(self) -> None:
        proxy = self.proxy
        if proxy.refuse:
            _rst(self.cw)
            return
        try:
            self.ur, self.uw = await asyncio.open_connection(*proxy.target)
        except OSError:
            _rst(self.cw)
            return
        proxy.open_connections += 1
        try:
            await asyncio.gather(self._up(), self._down())
        finally:
            proxy.open_connections -= 1
            for w in (self.cw, self.uw):
                try:
                    w.close()
                except Exception:
                    pass

    async def _up(self) -> None:
        parser = _RequestParser(self.on_request)
        try:
            while not self.closed:
                data = await self.cr.read(65536)
                if not data:
                    break
                segments = parser.feed(data)  # may arm a fault through on_request
                if self.up_reset_after is None:
                    self.uw.write(data)
                    await self.uw.drain()
                    continue
                # a request-body reset is armed: forward up to the budget, then RST
                pos = 0
                for kind, n in segments:
                    if kind == "body" and self.up_reset_after is not None \
                            and self.up_body_count + n > self.up_reset_after:
                        allowed = self.up_reset_after - self.up_body_count
                        self.uw.write(data[pos:pos + allowed])
                        await self.uw.drain()
                        await asyncio.sleep(0.05)
                        self.kill()
                        return
                    if kind == "body":
                        self.up_body_count += n
                    self.uw.write(data[pos:pos + n])
                    pos += n
                await self.uw.drain()
            if not self.closed and self.uw.can_write_eof():
                self.uw.write_eof()
        except (ConnectionError, OSError):
            self.kill()

    async def _down(self) -> None:
        try:
            while not self.closed:
                data = await self.ur.read(65536)
                if not data:
                    break
                if self.pending_delay:
                    delay, self.pending_delay = self.pending_delay, 0.0
                    await asyncio.sleep(delay)
                if self.down_stall_budget is not None:
                    if len(data) >= self.down_stall_budget:
                        data = data[:self.down_stall_budget]
                        self.cw.write(data)
                        await self.cw.drain()
                        self.down_stall_budget = 0
                        self.proxy.stalls += 1
                        while not self.closed and not self.cr.at_eof():  # until the gateway gives up
                            await asyncio.sleep(0.05)
                        self.kill()
                        return
                    self.down_stall_budget -= len(data)
                if self.down_reset_budget is not None:
                    if len(data) >= self.down_reset_budget:
                        self.cw.write(data[:self.down_reset_budget])
                        await self.cw.drain()
                        await asyncio.sleep(0.05)
                        self.kill()
                        return
                    self.down_reset_budget -= len(data)
                self.cw.write(data)
                await self.cw.drain()
            if not self.closed and self.cw.can_write_eof():
                self.cw.write_eof()
        except (ConnectionError, OSError):
            self.kill()


class FaultProxy:
    """``FaultProxy(("127.0.0.1", port)).start()``; ``endpoint`` is what the gateway connects to."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.requests: list[ProxiedRequest] = []
        self.faults: list[Fault] = []
        self.refuse = False
        self.open_connections = 0
        self.resets = 0
        self.stalls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[_Conn] = set()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
                self.port = self._server.sockets[0].getsockname()[1]
                ready.set()

            loop.run_until_complete(serve())
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _accept(self, reader, writer) -> None:
        conn = _Conn(self, reader, writer)
        self._conns.add(conn)
        try:
            await conn.run()
        finally:
            self._conns.discard(conn)

    def _call(self, fn) -> None:
        if self._loop is not None:
            done = threading.Event()

            def wrapped():
                try:
                    fn()
                finally:
                    done.set()
            self._loop.call_soon_threadsafe(wrapped)
            done.wait(5)

    def add(self, fault: Fault) -> Fault:
        self._call(lambda: self.faults.append(fault))
        return fault

    def clear(self) -> None:
        self._call(self.faults.clear)

    def reset_log(self) -> None:
        self._call(self.requests.clear)

    def kill_all(self) -> None:
        """RST every open connection (what an upstream crash looks like to the gateway)."""
        self._call(lambda: [c.kill() for c in list(self._conns)])

    def stop(self) -> None:
        if self._loop is None:
            return

        def shutdown():
            for c in list(self._conns):
                c.kill()
            if self._server is not None:
                self._server.close()
            self._loop.stop()
        self._loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
