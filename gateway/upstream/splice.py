"""A big response body relayed inside the kernel: upstream socket → pipe → client socket (Linux
``splice``), so its bytes are never copied into the gateway, as HAProxy and nginx's ``splice`` do.

Used by ``Exchange.relay`` for a large GET body with a known length when both connections are
plain TCP (TLS must pass through user space) and the upstream transport is the lean one. The head
and whatever body bytes were already read go out through the client transport first; then both
transports stand aside (the upstream's reading paused, the client's write buffer empty) while the
rest moves through a pipe; then the upstream connection goes back to its pool as after any body.

The sockets are waited on through duplicates of their descriptors (the event loop refuses a
reader on a descriptor a transport owns); the duplicates and the pipe are closed on every path.
Errors: the upstream ending early or stalling for the read timeout raises ``aiohttp.ClientPayloadError``
(the caller breaks the client's connection: a short body must never pass for a whole one); the
client going away, or taking nothing for the send timeout, raises ``ClientClosed``. Either way the
bytes already moved have been counted (``tally``), so the access line tells how far it got.
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys

import aiohttp

from ..errors import ClientClosed

_PIPE_BYTES = 1024 * 1024
_LOWAT = 256 * 1024
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)

AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "splice")


def usable(client_transport, upstream_transport) -> bool:
    """Both ends plain TCP sockets (no TLS), on Linux."""
    if not AVAILABLE or client_transport is None or upstream_transport is None:
        return False
    for t in (client_transport, upstream_transport):
        if t.is_closing() or t.get_extra_info("sslcontext") is not None or t.get_extra_info("socket") is None:
            return False
    return True


async def relay(loop: asyncio.AbstractEventLoop, src_sock, dst_sock, length: int, read_timeout: float,
                send_timeout: float | None = None, tally=None) -> int:
    """Move ``length`` bytes from ``src_sock`` to ``dst_sock`` through a pipe; returns bytes moved.
    An upstream silent for ``read_timeout`` is a ``ClientPayloadError``; a client that takes nothing
    for ``send_timeout`` (default: ``read_timeout``) while the pipe is full is ``ClientClosed``.
    ``tally(n)``, if given, is told each time ``n`` more bytes have reached ``dst_sock``."""
    src = os.dup(src_sock.fileno())
    try:
        dst = os.dup(dst_sock.fileno())
    except OSError:
        os.close(src)
        raise
    r, w = os.pipe()
    moved = 0
    lowat = None
    try:
        # wake for the upstream only once a good piece is waiting (or the body's end): fewer rounds
        want = min(length, _LOWAT)
        try:
            lowat = src_sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT)
            src_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
        except OSError:
            lowat = None
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        try:
            import fcntl
            fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
        except OSError:
            pass   # the default pipe size (64 KiB) works, in more rounds
        remaining, in_pipe = length, 0
        while remaining or in_pipe:
            progress = False
            if remaining and in_pipe < _PIPE_BYTES:
                try:
                    n = os.splice(src, w, min(remaining, _PIPE_BYTES - in_pipe), flags=_FLAGS)
                except BlockingIOError:
                    n = -1
                except OSError as e:
                    raise aiohttp.ClientPayloadError(f"upstream body failed: {e.strerror}") from None
                if n == 0:
                    raise aiohttp.ClientPayloadError("upstream closed the connection mid-body")
                if n > 0:
                    remaining -= n
                    in_pipe += n
                    progress = True
            if in_pipe:
                try:
                    m = os.splice(r, dst, in_pipe, flags=_FLAGS)
                except BlockingIOError:
                    m = -1
                except OSError as e:
                    raise ClientClosed("client went away" if e.errno in (errno.EPIPE, errno.ECONNRESET)
                                       else f"client socket failed: {e.strerror}") from None
                if m > 0:
                    in_pipe -= m
                    moved += m
                    progress = True
                    if tally is not None:
                        tally(m)
            if not progress:
                if lowat is not None and remaining and remaining < want:
                    want = remaining   # the body's last bytes must wake us too
                    src_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
                readable = src if remaining and in_pipe < _PIPE_BYTES else None
                await _wait(loop, readable, dst if in_pipe else None,
                            read_timeout if readable is not None or send_timeout is None else send_timeout)
        return moved
    finally:
        if lowat is not None:
            try:
                src_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            except OSError:
                pass
        for fd in (r, w, src, dst):
            try:
                os.close(fd)
            except OSError:
                pass


async def _wait(loop: asyncio.AbstractEventLoop, readable: int | None, writable: int | None,
                timeout: float) -> None:
    """Until ``readable`` can be read or ``writable`` written (whichever comes first)."""
    fut = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    if readable is not None:
        loop.add_reader(readable, ready)
    if writable is not None:
        loop.add_writer(writable, ready)
    try:
        await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        if readable is None:   # only the client could have moved things on
            raise ClientClosed("the client stopped reading") from None
        raise aiohttp.ClientPayloadError("upstream stalled mid-body") from None
    finally:
        if readable is not None:
            loop.remove_reader(readable)
        if writable is not None:
            loop.remove_writer(writable)
