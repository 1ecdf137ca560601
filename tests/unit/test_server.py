"""The client-facing HTTP/1.1 server (gateway/server/), driven without sockets: bytes go in through
``data_received``, answers come out of a recording transport."""
from __future__ import annotations

import asyncio

import pytest

from gateway.errors import S3Error
from gateway.exchange import error_response
from gateway.server import Request, Response, Server, StreamResponse


class RecordingTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.out = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.conn = None

    def write(self, data) -> None:
        assert not self.closed, "write after close"
        self.out += data

    def writelines(self, parts) -> None:
        for p in parts:
            self.write(p)

    def is_closing(self) -> bool:
        return self.closed

    def _lost(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.conn.connection_lost, None)

    def close(self) -> None:
        self._lost()

    def abort(self) -> None:
        self.aborted = True
        self._lost()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name, default=None):
        return default


async def echo(req: Request):
    """Answers with what it saw: method, target, a header, and the body's length."""
    body = await req.content.read() if req.content_length or "transfer-encoding" in req.header_dict else b""
    text = f"{req.method} {req.raw_path} x={req.header_dict.get('x-test', '-')} body={len(body)}"
    return Response(status=200, body=text.encode(), headers={"Content-Type": "text/plain"})


def reject(err: S3Error) -> Response:
    return error_response("GET", err, "REQID")


def connect(handler=echo, **kw):
    loop = asyncio.get_running_loop()
    server = Server(handler, reject, **kw)
    conn = server()
    t = RecordingTransport(loop)
    t.conn = conn
    conn.connection_made(t)
    return server, conn, t


async def settle(t: RecordingTransport, n: float = 0.05) -> None:
    await asyncio.sleep(n)


def answers(out: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split recorded output into (status, headers, body) (Content-Length or chunked framing)."""
    res, data = [], bytes(out)
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, _, v in (ln.partition(": ") for ln in lines[1:])}
        if "content-length" in headers:
            n = int(headers["content-length"])
            body, data = data[:n], data[n:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size, _, data = data.partition(b"\r\n")
                n = int(size, 16)
                body += data[:n]
                data = data[n + 2:]
                if n == 0:
                    break
        else:
            body = b""
        res.append((status, headers, body))
    return res


def run(coro):
    return asyncio.run(coro)


def test_a_request_and_its_answer_keep_alive():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"GET /b/k?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: v1\r\n\r\n")
        await settle(tr)
        [(status, headers, body)] = answers(tr.out)
        assert status == 200 and body == b"GET /b/k?x=1 x=v1 body=0"
        assert "date" in headers and headers.get("connection") != "close"
        assert not tr.closed
    run(t())


def test_pipelined_requests_answered_in_order():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPUT /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                           b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(tr)
        bodies = [b for _, _, b in answers(tr.out)]
        assert bodies == [b"GET /1 x=- body=0", b"PUT /2 x=- body=3", b"GET /3 x=- body=0"]
    run(t())


def test_expect_100_continue_before_the_body():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        await settle(tr)
        assert bytes(tr.out) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.data_received(b"hello")
        await settle(tr)
        assert bytes(tr.out).split(b"\r\n\r\n", 1)[1].endswith(b"body=5")
    run(t())


def test_chunked_request_body():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n")
        await settle(tr)
        assert answers(tr.out)[0][2] == b"PUT /b/k x=- body=9"
    run(t())


def test_oversized_header_is_an_s3_error_and_the_connection_closes():
    async def t():
        _, conn, tr = connect(max_field_bytes=1024)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
        await settle(tr)
        [(status, _, body)] = answers(tr.out)
        assert status == 400 and b"<Code>RequestHeaderSectionTooLarge</Code>" in body
        assert tr.closed
    run(t())


def test_endless_head_is_refused():
    async def t():
        _, conn, tr = connect(max_field_bytes=1024, max_head_bytes=4096)
        conn.data_received(b"GET / HTTP/1.1\r\n")
        for i in range(10):
            conn.data_received(b"X-H%d: %s\r\n" % (i, b"a" * 900))
        await settle(tr)
        [(status, _, body)] = answers(tr.out)
        assert status == 400 and b"RequestHeaderSectionTooLarge" in body and tr.closed
    run(t())


def test_garbage_is_a_bad_request_not_a_crash():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"\x00\x01 not http at all\r\n\r\n")
        await settle(tr)
        [(status, headers, body)] = answers(tr.out)
        assert status == 400 and b"<Code>BadRequest</Code>" in body and headers["connection"] == "close"
        assert tr.closed
    run(t())


def test_unread_body_is_drained_and_the_connection_kept():
    async def refuse(req: Request):
        return Response(status=403, body=b"no")

    async def t():
        _, conn, tr = connect(refuse)
        conn.data_received(b"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 300000\r\n\r\n" + b"x" * 1000)
        await settle(tr)
        assert answers(tr.out)[0][0] == 403
        conn.data_received(b"x" * 299000 + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(tr)
        assert [s for s, _, _ in answers(tr.out)] == [403, 403] and not tr.closed
    run(t())


def test_http10_closes_unless_keep_alive():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"GET /x HTTP/1.0\r\n\r\n")
        await settle(tr)
        assert answers(tr.out)[0][1]["connection"] == "close" and tr.closed
        _, conn, tr = connect()
        conn.data_received(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        await settle(tr)
        assert answers(tr.out)[0][1]["connection"] == "keep-alive" and not tr.closed
    run(t())


def test_stream_response_unknown_length_is_chunked_and_head_has_no_body():
    async def stream(req: Request):
        out = StreamResponse(status=200)
        if req.method == "HEAD":
            out.content_length = 10
        await out.prepare(req)
        for piece in (b"abc", b"", b"defg" * 5000):
            await out.write(piece)
        await out.write_eof()
        return out

    async def t():
        _, conn, tr = connect(stream)
        conn.data_received(b"GET /s HTTP/1.1\r\nHost: h\r\n\r\nHEAD /s HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(tr)
        data = bytes(tr.out)
        first, rest = data.split(b"0\r\n\r\n", 1)[0] + b"0\r\n\r\n", data.split(b"0\r\n\r\n", 1)[1]
        [(status, headers, body)] = answers(first)
        assert headers["transfer-encoding"] == "chunked" and body == b"abc" + b"defg" * 5000
        head, _, tail = rest.partition(b"\r\n\r\n")
        assert b"Content-Length: 10" in head and tail == b""
    run(t())


def test_client_gone_mid_body_fails_the_body_read():
    seen = []

    async def reader(req: Request):
        try:
            await req.content.read()
        except ConnectionResetError as e:
            seen.append(e)
            raise
        return Response(status=200)

    async def t():
        _, conn, tr = connect(reader)
        conn.data_received(b"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nxyz")
        await settle(tr)
        tr.abort()
        await settle(tr)
        assert seen and tr.out == b""
    run(t())


def test_full_body_buffer_stops_reading_the_socket():
    async def t():
        gate = asyncio.Event()

        async def slow(req: Request):
            await gate.wait()
            data = await req.content.read()
            return Response(status=200, body=str(len(data)).encode())

        _, conn, tr = connect(slow)
        conn.data_received(b"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n")
        for _ in range(8):
            conn.data_received(b"x" * 65536)
        assert tr.reading is False          # 512 KiB waiting: the socket is no longer read
        gate.set()
        await settle(tr)
        assert tr.reading is True
        conn.data_received(b"x" * (1000000 - 8 * 65536))
        await settle(tr)
        assert answers(tr.out)[0][2] == b"1000000"
    run(t())


def test_idle_connection_closed_after_keepalive_timeout():
    async def t():
        server, conn, tr = connect(keepalive_timeout=0.2)
        conn.data_received(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        await asyncio.sleep(0.6)
        assert answers(tr.out)[0][0] == 200 and tr.closed
        server.abort_all()
    run(t())


def test_shutdown_closes_idle_and_answers_in_flight_with_close():
    gate = []

    async def waits(req: Request):
        await gate[0].wait()
        return Response(status=200, body=b"done")

    async def t():
        gate.append(asyncio.Event())
        server, busy, tb = connect(waits)
        idle = server()
        ti = RecordingTransport(asyncio.get_running_loop())
        ti.conn = idle
        idle.connection_made(ti)
        busy.data_received(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(tb)
        server.begin_shutdown()
        assert ti.closed and not tb.closed
        gate[0].set()
        await settle(tb)
        [(status, headers, body)] = answers(tb.out)
        assert status == 200 and headers["connection"] == "close" and tb.closed
        server.abort_all()
    run(t())


@pytest.mark.parametrize("value", [b"a\xffb", "é".encode()])
def test_header_values_are_surrogate_escaped_utf8(value):
    async def t():
        got = []

        async def h(req: Request):
            got.append(req.header_dict["x-v"])
            return Response(status=204)

        _, conn, tr = connect(h)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-V: " + value + b"\r\n\r\n")
        await settle(tr)
        assert got[0].encode("utf-8", "surrogateescape") == value
        assert answers(tr.out)[0][0] == 204
    run(t())


def test_a_head_that_never_completes_is_cut_off():
    async def t():
        server, conn, tr = connect(head_timeout=0.2, keepalive_timeout=5)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
        await asyncio.sleep(0.7)
        assert tr.aborted and tr.out == b""
        server.abort_all()
    run(t())


def test_a_slow_but_steady_head_is_still_cut_off():
    async def t():
        server, conn, tr = connect(head_timeout=0.3, keepalive_timeout=5)
        conn.data_received(b"GET / HTTP/1.1\r\n")
        for i in range(8):             # a header line every 0.1 s: the head as a whole is late
            await asyncio.sleep(0.1)
            if tr.closed:
                break
            conn.data_received(b"X-%d: y\r\n" % i)
        assert tr.aborted
        server.abort_all()
    run(t())


# -- the edges: limits, timeouts, Expect, singletons --------------------------------------------

async def refuses_body(req: Request):
    """A handler that answers without reading the body (as a refused request is answered)."""
    return Response(status=403, body=b"no")


def test_100_continue_only_once_the_body_is_read():
    async def t():
        _, conn, tr = connect(refuses_body)
        conn.data_received(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        await settle(tr)
        out = bytes(tr.out)
        assert b"100 Continue" not in out and answers(out)[0][0] == 403
        assert tr.closed          # the client waits for a 100 it will not get: no body will come
    run(t())


def test_expectations_other_than_100_continue_are_417():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\nhello")
        await settle(tr)
        [(status, _, body)] = answers(tr.out)
        assert status == 417 and b"<Code>ExpectationFailed</Code>" in body and tr.closed
    run(t())


@pytest.mark.parametrize("name", [b"Host", b"Content-Length", b"Authorization", b"X-Amz-Date",
                                  b"x-amz-content-sha256", b"X-Amz-Copy-Source", b"Range"])
def test_repeated_singleton_headers_are_refused(name):
    async def t():
        seen = []

        async def h(req: Request):
            seen.append(req)
            return Response(status=200)

        _, conn, tr = connect(h)
        value = b"5" if name == b"Content-Length" else b"a"
        conn.data_received(b"PUT /b/k HTTP/1.1\r\n" + name + b": " + value + b"\r\n" + name.lower()
                           + b": " + value + b"\r\nHost: h\r\n\r\n" if name != b"Host" else
                           b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
        await settle(tr)
        assert not seen
        assert answers(tr.out)[0][0] == 400 and tr.closed
    run(t())


def test_repeated_ordinary_headers_are_joined():
    async def t():
        _, conn, tr = connect()
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Test: a\r\nX-Test: b\r\n\r\n")
        await settle(tr)
        assert answers(tr.out)[0][2] == b"GET / x=a,b body=0"
    run(t())


def test_header_section_and_field_count_limits():
    async def t():
        _, conn, tr = connect(max_head_bytes=4096, max_field_bytes=1024, max_header_fields=100)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100)
                                                                      for i in range(60)) + b"\r\n")
        await settle(tr)
        assert answers(tr.out)[0][0] == 400 and b"RequestHeaderSectionTooLarge" in tr.out
        _, conn, tr = connect(max_head_bytes=64 * 1024, max_header_fields=100)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150))
                           + b"\r\n")
        await settle(tr)
        assert answers(tr.out)[0][0] == 400 and b"RequestHeaderSectionTooLarge" in tr.out
    run(t())


def test_a_request_pipelined_behind_a_big_body_is_not_a_big_head():
    async def t():
        _, conn, tr = connect(max_head_bytes=4096, max_field_bytes=1024)
        body = b"x" * 100_000
        conn.data_received(b"PUT /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + body[:50_000])
        await settle(tr)
        # the rest of the body and the next request's head arrive in one read
        conn.data_received(body[50_000:] + b"GET /2 HTTP/1.1\r\nHost: h\r\n")
        conn.data_received(b"X-Test: y\r\n\r\n")
        await settle(tr)
        assert [b for _, _, b in answers(tr.out)] == [b"PUT /1 x=- body=100000", b"GET /2 x=y body=0"]
    run(t())


def test_an_endless_header_line_is_refused_with_bounded_memory():
    async def t():
        _, conn, tr = connect(max_head_bytes=8192, max_field_bytes=4096)
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ")
        for _ in range(64):
            if tr.closed:
                break
            conn.data_received(b"a" * 1024)
        await settle(tr)
        assert tr.closed and answers(tr.out)[0][0] == 400
    run(t())


def test_a_silent_connection_is_closed_after_the_head_timeout_not_keepalive():
    async def t():
        server, conn, tr = connect(head_timeout=0.2, keepalive_timeout=30)
        await asyncio.sleep(0.7)
        assert tr.closed
        server.abort_all()
    run(t())


def test_keepalive_after_an_answer_is_not_cut_by_the_head_timeout():
    async def t():
        server, conn, tr = connect(head_timeout=0.3, keepalive_timeout=5)
        conn.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        await asyncio.sleep(0.6)           # idle, but within keepalive
        assert not tr.closed
        conn.data_received(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(tr)
        assert [s for s, _, _ in answers(tr.out)] == [200, 200]
        server.abort_all()
    run(t())


def test_connections_past_the_cap_are_refused_clearly():
    async def t():
        server, first, t1 = connect(max_connections=1)
        extra = server()
        t2 = RecordingTransport(asyncio.get_running_loop())
        t2.conn = extra
        extra.connection_made(t2)
        [(status, _, body)] = answers(t2.out)
        assert status == 503 and b"<Code>SlowDown</Code>" in body and t2.closed and not t1.closed
        server.abort_all()
    run(t())


def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout():
    async def big(req: Request):
        resp = StreamResponse(status=200)
        resp.content_length = 10 * 1024 * 1024
        await resp.prepare(req)
        for _ in range(10):
            await resp.write(b"x" * 1024 * 1024)
        await resp.write_eof()
        return resp

    async def t():
        server, conn, tr = connect(big, send_timeout=0.3)
        conn.pause_writing()                # the client's window is full and stays full
        conn.data_received(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        await asyncio.sleep(0.15)
        assert not tr.aborted
        await asyncio.sleep(0.6)
        assert tr.aborted and len(tr.out) < 2 * 1024 * 1024
        server.abort_all()
    run(t())
