"""The lean upstream transport (gateway/upstream/pool.py, connection.py, stream.py) against a scripted loopback server."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.errors import S3Error
from gateway.upstream.client import Upstream, UpstreamRequest
from gateway.upstream.pool import ConnectError, LeanPool


def run(coro, timeout: float = 20.0):
    async def main():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(main())


class Server:
    """Loopback HTTP/1.1: ``handler(reader, writer, request)`` answers each request; requests are
    read (head and Content-Length body) by the server itself."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.accepted = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.short_bodies: list[int] = []   # bytes received of bodies cut short
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        self.server.close()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode().split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                try:
                    body = await reader.readexactly(length)
                except asyncio.IncompleteReadError as e:
                    self.short_bodies.append(len(e.partial))
                    return
                self.requests.append((lines[0], headers, body))
                if await self.handler(reader, writer, (lines[0], headers, body)) is False:
                    return
        finally:
            self.open -= 1
            writer.close()


def ok(body: bytes = b"hello", extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def echo_ok(reader, writer, req):
    writer.write(ok(b"got " + str(len(req[2])).encode()))
    await writer.drain()


async def with_pool(handler, test, **kw):
    srv = Server(handler)
    endpoint = await srv.start()
    pool = LeanPool(endpoint, **kw)
    try:
        return await test(srv, pool)
    finally:
        await pool.close()
        await srv.stop()


def test_keep_alive_reuse_and_lifo():
    async def test(srv, pool):
        for i in range(3):
            resp = await pool.request("GET", f"/b/k{i}?x=1", {"host": "h"})
            assert resp.status == 200 and resp.reason == "OK"
            assert resp.headers.get("content-length") == "5"
            assert await resp.read() == b"got 0"
            resp.release()
        assert srv.accepted == 1 and pool.size == 1
        assert srv.requests[0][0] == "GET /b/k0?x=1 HTTP/1.1"
        # two at once need two connections; the one used last is reused first
        r1, r2 = await asyncio.gather(pool.request("GET", "/a", {}), pool.request("GET", "/b", {}))
        assert srv.accepted == 2
        await r1.read()
        await r2.read()
        r1.release()
        r2.release()
        assert pool._idle[-1] is r2._conn
        r3 = await pool.request("GET", "/c", {})
        assert r3._conn is r2._conn
        await r3.read()
        r3.release()
    run(with_pool(echo_ok, test))


def test_body_bytes_and_headers():
    async def test(srv, pool):
        resp = await pool.request("PUT", "/b/k", {"host": "up", "content-length": "3", "x-amz-meta-a": "v"},
                                  b"abc")
        assert await resp.read() == b"got 3"
        resp.release()
        line, headers, body = srv.requests[0]
        assert line == "PUT /b/k HTTP/1.1" and body == b"abc"
        assert headers["x-amz-meta-a"] == "v" and headers["host"] == "up"
        with pytest.raises(ValueError):
            await pool.request("GET", "/", {"x-bad": "a\r\nInjected: 1"})
    run(with_pool(echo_ok, test))


def test_chunked_response_and_reuse():
    async def handler(reader, writer, req):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
        for piece in (b"5\r\nhello\r\n", b"6;ext=1\r", b"\n world\r\n", b"0\r\n", b"Trailer: x\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)

    async def test(srv, pool):
        for _ in range(2):
            resp = await pool.request("GET", "/", {})
            assert resp.headers.getall("x-a") == ["1", "2"]
            parts = [p async for p in resp.content.iter_any()]
            assert b"".join(parts) == b"hello world"
            resp.release()
        assert srv.accepted == 1
    run(with_pool(handler, test))


def test_head_and_204_have_no_body():
    async def handler(reader, writer, req):
        if req[0].startswith("HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nETag: \"e\"\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async def test(srv, pool):
        for method in ("HEAD", "DELETE", "HEAD"):
            resp = await pool.request(method, "/b/k", {})
            assert resp.status == (200 if method == "HEAD" else 204)
            assert await resp.read() == b""
            resp.release()
        assert srv.accepted == 1 and pool.size == 1
    run(with_pool(handler, test))


def test_early_eof_raises_from_iter_any():
    async def handler(reader, writer, req):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        return False   # close mid-body

    async def test(srv, pool):
        resp = await pool.request("GET", "/", {})
        got = 0
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in resp.content.iter_any():
                got += len(data)
        assert got == 1000
        resp.release()
        assert pool.size == 0
    run(with_pool(handler, test))


def test_malformed_response_is_an_error():
    async def handler(reader, writer, req):
        writer.write(b"HTTP/1.1 2x0 Nope\r\n\r\n")
        await writer.drain()

    async def test(srv, pool):
        with pytest.raises(aiohttp.ClientError):
            await pool.request("GET", "/", {})
        assert pool.size == 0
    run(with_pool(handler, test))


def test_slow_reader_backpressure():
    total = 16 * 1024 * 1024
    sent = []

    async def handler(reader, writer, req):
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        block = b"z" * 65536
        for _ in range(total // len(block)):
            writer.write(block)
            await writer.drain()
            sent.append(len(block))

    async def test(srv, pool):
        resp = await pool.request("GET", "/", {})
        got = 0
        paused_seen = False
        async for data in resp.content.iter_any():
            got += len(data)
            if got < 2 * 1024 * 1024:
                await asyncio.sleep(0.05)
                paused_seen = paused_seen or resp.reading_paused
                # the server is held back: it cannot be far ahead of what was read
                assert sum(sent) - got < 6 * 1024 * 1024
        assert got == total and paused_seen
        resp.release()
        assert pool.size == 1
    run(with_pool(handler, test))


def test_request_abort_closes_the_socket():
    async def handler(reader, writer, req):
        writer.write(ok())
        await writer.drain()

    class Refused:
        """Ingest-like: some bytes, then its own S3Error."""
        length = 100_000
        error = None

        def __aiter__(self):
            return self._it()

        async def _it(self):
            yield b"a" * 1000
            await asyncio.sleep(0.05)
            self.error = S3Error("BadDigest")
            raise self.error

    async def test(srv, pool):
        with pytest.raises(aiohttp.ClientOSError) as info:
            await pool.request("PUT", "/b/k", {"content-length": "100000"}, Refused())
        assert isinstance(info.value.__cause__, S3Error)
        await asyncio.sleep(0.1)
        assert srv.short_bodies == [1000] and srv.requests == []
        assert pool.size == 0
        # and through Upstream: the body's own error answers
        up = Upstream(f"http://127.0.0.1:{pool.port}", "ak", "sk", "us-east-1", transport="lean")
        await up.start()
        try:
            with pytest.raises(S3Error) as info:
                await up.send(UpstreamRequest("PUT", "/b/k", body=Refused(), content_length=100_000))
            assert info.value.code == "BadDigest"
        finally:
            await up.close()
    run(with_pool(handler, test))


def test_streaming_body_with_write_backpressure():
    async def handler(reader, writer, req):
        writer.write(ok(str(len(req[2])).encode()))
        await writer.drain()

    class Body:
        def __aiter__(self):
            return self._it()

        async def _it(self):
            for _ in range(64):
                yield b"q" * (256 * 1024)

    async def test(srv, pool):
        resp = await pool.request("PUT", "/b/k", {"content-length": str(64 * 256 * 1024)}, Body())
        assert await resp.read() == str(64 * 256 * 1024).encode()
        resp.release()
        assert pool.size == 1
    run(with_pool(handler, test))


def test_stale_connection_retry():
    n = {"req": 0}

    async def handler(reader, writer, req):
        n["req"] += 1
        if n["req"] == 2:
            return False       # the second request finds the connection gone: no answer at all
        writer.write(ok())
        await writer.drain()

    async def test(srv, pool):
        up = Upstream(f"http://127.0.0.1:{pool.port}", "ak", "sk", "us-east-1", transport="lean")
        await up.start()
        try:
            resp = await up.send(UpstreamRequest("GET", "/b/k"))
            assert await resp.read() == b"hello"
            resp.release()
            resp = await up.send(UpstreamRequest("PUT", "/b/k", body=b"abc"))   # replayable: retried
            assert resp.status == 200 and await resp.read() == b"hello"
            resp.release()
            assert srv.accepted == 2

            class Body:
                length = 3
                error = None

                def __aiter__(self):
                    return self._it()

                async def _it(self):
                    yield b"abc"
            n["req"] = 1
            with pytest.raises(S3Error) as info:  # a streaming body is not sent twice
                await up.send(UpstreamRequest("PUT", "/b/k", body=Body(), content_length=3))
            assert info.value.code == "ServiceUnavailable"
        finally:
            await up.close()
    run(with_pool(handler, test))


def test_pool_bound():
    async def handler(reader, writer, req):
        await asyncio.sleep(0.05)
        writer.write(ok())
        await writer.drain()

    async def test(srv, pool):
        async def one(i):
            resp = await pool.request("GET", f"/{i}", {})
            data = await resp.read()
            resp.release()
            return data
        out = await asyncio.gather(*(one(i) for i in range(10)))
        assert out == [b"hello"] * 10
        assert srv.max_open <= 2 and pool.size <= 2
    run(with_pool(handler, test, max_connections=2))


def test_released_early_is_not_reused():
    async def handler(reader, writer, req):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"x" * 100_000)
        await writer.drain()

    async def test(srv, pool):
        resp = await pool.request("GET", "/", {})
        resp.release()            # body unread: the connection cannot be reused
        resp = await pool.request("GET", "/", {})
        assert len(await resp.read()) == 100_000
        resp.release()
        assert srv.accepted == 2 and pool.size == 1
    run(with_pool(handler, test))


def test_errors_map_like_aiohttp():
    async def silent(reader, writer, req):
        await asyncio.sleep(5)

    async def test(srv, pool):
        up = Upstream(f"http://127.0.0.1:{pool.port}", "ak", "sk", "us-east-1", transport="lean",
                      read_timeout=0.2)
        await up.start()
        try:
            with pytest.raises(S3Error) as info:
                await up.send(UpstreamRequest("GET", "/b/k"))
            assert info.value.code == "GatewayTimeout"
        finally:
            await up.close()
    run(with_pool(silent, test))

    async def refused():
        pool = LeanPool("http://127.0.0.1:1")
        with pytest.raises(ConnectError):
            await pool.request("GET", "/", {})
        assert pool.size == 0
        up = Upstream("http://127.0.0.1:1", "ak", "sk", "us-east-1", transport="lean")
        await up.start()
        with pytest.raises(S3Error) as info:
            await up.send(UpstreamRequest("GET", "/"))
        assert info.value.code == "ServiceUnavailable" and up.pool_size == 0
        await up.close()
    run(refused())


def test_idle_connections_expire():
    async def test(srv, pool):
        resp = await pool.request("GET", "/", {})
        await resp.read()
        resp.release()
        assert pool.size == 1
        await asyncio.sleep(0.35)
        assert pool.size == 0
        resp = await pool.request("GET", "/", {})
        await resp.read()
        resp.release()
        assert srv.accepted == 2
    run(with_pool(echo_ok, test, keepalive_timeout=0.2))


def test_upstream_closing_idle_connection_is_dropped():
    async def handler(reader, writer, req):
        writer.write(ok(extra="Connection: close\r\n"))
        await writer.drain()
        return False

    async def test(srv, pool):
        for _ in range(2):
            resp = await pool.request("GET", "/", {})
            assert await resp.read() == b"hello"
            resp.release()
            assert pool.size == 0
        assert srv.accepted == 2
    run(with_pool(handler, test))


# strict framing (llhttp): each of these answers is refused as malformed, never half-believed
@pytest.mark.parametrize("head, body", [
    ("HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n", b"x" * 10),                       # int() would take it
    ("HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\n", b"xx"),                         # isdigit() would
    ("HTTP/1.1 200 OK\r\nContent-Length: \u0661\r\n", b"x"),                          # Arabic-Indic 1
    ("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n", b"hello"),
    ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
    ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"),
    ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n"),    # no CRLF after data
    ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n", b"hello"),
    ("HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n", b""),
    ("HTTP/1.x 200 OK\r\nContent-Length: 0\r\n", b""),
])
def test_malformed_framing_is_refused(head, body):
    async def handler(reader, writer, req):
        writer.write(head.encode("utf-8") + b"\r\n" + body)
        await writer.drain()

    async def test(srv, pool):
        with pytest.raises(aiohttp.ClientPayloadError):
            resp = await pool.request("GET", "/b/k", {"host": "h"})
            try:
                await resp.read()
            finally:
                resp.release()
        assert pool.size == 0          # a connection that framed an answer wrongly is never reused

    asyncio.run(with_pool(handler, test))


def test_interim_100_then_the_answer_and_reason_phrase():
    async def handler(reader, writer, req):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created Here\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async def test(srv, pool):
        resp = await pool.request("PUT", "/b/k", {"host": "h", "content-length": "0"})
        assert (resp.status, resp.reason, await resp.read()) == (201, "Created Here", b"ok")
        resp.release()
        assert pool.size == 1

    asyncio.run(with_pool(handler, test))


def test_bytes_after_a_complete_answer_end_the_connection():
    async def handler(reader, writer, req):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n")
        await writer.drain()

    async def test(srv, pool):
        resp = await pool.request("GET", "/b/k", {"host": "h"})
        assert await resp.read() == b"ok"
        resp.release()
        await asyncio.sleep(0.01)
        assert pool.size == 0          # never reused: what followed would be read as the next answer

    asyncio.run(with_pool(handler, test))
