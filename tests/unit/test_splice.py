"""upstream/splice.py: a body moved socket → pipe → socket inside the kernel, with real sockets."""
from __future__ import annotations

import asyncio
import os
import socket

import aiohttp
import pytest

from gateway.upstream import splice

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="Linux splice only")


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection (the wake-up threshold is a TCP matter)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        a = socket.create_connection(listener.getsockname())
        b, _ = listener.accept()
    return a, b


def pairs():
    src_a, src_b = _tcp_pair()
    dst_a, dst_b = _tcp_pair()
    for s in (src_a, src_b, dst_a, dst_b):
        s.setblocking(False)
    return src_a, src_b, dst_a, dst_b


async def _feed(loop, sock, data: bytes, close: bool) -> None:
    for i in range(0, len(data), 65536):
        await loop.sock_sendall(sock, data[i:i + 65536])
    if close:
        sock.close()


async def _drain(loop, sock, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        data = await loop.sock_recv(sock, 1 << 20)
        if not data:
            break
        out += data
    return bytes(out)


def test_moves_exactly_the_length_and_leaves_the_rest():
    async def t():
        loop = asyncio.get_running_loop()
        src_a, src_b, dst_a, dst_b = pairs()
        body = os.urandom(3 * 1024 * 1024 + 17)
        extra = b"NEXT RESPONSE"
        feeder = loop.create_task(_feed(loop, src_b, body + extra, close=False))
        reader = loop.create_task(_drain(loop, dst_b, len(body)))
        moved = await splice.relay(loop, src_a, dst_a, len(body), read_timeout=5)
        assert moved == len(body)
        assert await reader == body
        await feeder
        assert await loop.sock_recv(src_a, 100) == extra   # not one byte beyond the length was taken
        for s in (src_a, src_b, dst_a, dst_b):
            s.close()
    asyncio.run(t())


def test_upstream_ending_early_is_an_error():
    async def t():
        loop = asyncio.get_running_loop()
        src_a, src_b, dst_a, dst_b = pairs()
        loop.create_task(_feed(loop, src_b, b"x" * 100_000, close=True))
        reader = loop.create_task(_drain(loop, dst_b, 10**9))
        with pytest.raises(aiohttp.ClientPayloadError):
            await splice.relay(loop, src_a, dst_a, 1_000_000, read_timeout=5)
        dst_a.close()
        assert len(await reader) == 100_000
        for s in (src_a, dst_b):
            s.close()
    asyncio.run(t())


def test_upstream_stalling_times_out():
    async def t():
        loop = asyncio.get_running_loop()
        src_a, src_b, dst_a, dst_b = pairs()
        await loop.sock_sendall(src_b, b"y" * 1000)
        with pytest.raises(aiohttp.ClientPayloadError):
            await splice.relay(loop, src_a, dst_a, 5000, read_timeout=0.3)
        for s in (src_a, src_b, dst_a, dst_b):
            s.close()
    asyncio.run(t())


def test_client_gone_is_a_connection_reset():
    async def t():
        loop = asyncio.get_running_loop()
        src_a, src_b, dst_a, dst_b = pairs()
        dst_b.close()
        size = 32 * 1024 * 1024   # more than the socket buffers take: the client's reset shows
        loop.create_task(_feed(loop, src_b, b"z" * size, close=False))
        with pytest.raises(ConnectionResetError):
            await splice.relay(loop, src_a, dst_a, size, read_timeout=5)
        for s in (src_a, src_b, dst_a):
            s.close()
    asyncio.run(t())


def test_no_descriptor_leaks():
    async def t():
        loop = asyncio.get_running_loop()
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            src_a, src_b, dst_a, dst_b = pairs()
            await loop.sock_sendall(src_b, b"q" * 10)
            src_b.close()
            with pytest.raises(aiohttp.ClientPayloadError):
                await splice.relay(loop, src_a, dst_a, 100, read_timeout=5)
            for s in (src_a, dst_a, dst_b):
                s.close()
        assert len(os.listdir("/proc/self/fd")) == before
    asyncio.run(t())


def test_a_body_smaller_than_the_wake_threshold_and_nothing_after_it():
    """A body that trickles in and ends below the socket's wake-up threshold (SO_RCVLOWAT), with
    nothing after it: the relay finishes at once, never waiting for the read timeout."""
    async def t():
        loop = asyncio.get_running_loop()
        src_a, src_b, dst_a, dst_b = pairs()
        body = os.urandom(400 * 1024)   # the first wake at 300 KiB; the last 100 KiB come later

        async def slow_feed() -> None:
            for i in range(0, len(body), 50 * 1024):
                await loop.sock_sendall(src_b, body[i:i + 50 * 1024])
                await asyncio.sleep(0.02)
        feeder = loop.create_task(slow_feed())
        reader = loop.create_task(_drain(loop, dst_b, len(body)))
        t0 = loop.time()
        assert await splice.relay(loop, src_a, dst_a, len(body), read_timeout=5) == len(body)
        assert loop.time() - t0 < 2
        assert await reader == body
        await feeder
        for s in (src_a, src_b, dst_a, dst_b):
            s.close()
    asyncio.run(t())
