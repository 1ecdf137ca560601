"""A streaming request body on its way to the upstream: the head leaves with the first piece, then
each piece with the connection's back-pressure; a body that fails (its signature or checksum, or a
client that went away) cuts the upstream connection off mid-body, so the upstream commits nothing.

A body with a ``splice_into(conn, head)`` coroutine may send itself (the head included) by other
means — the kernel moving another connection's bytes into this one — and says True; False (nothing
written) and it is iterated as any other."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from .connection import UpstreamConnection


async def write_body(conn: "UpstreamConnection", head: bytes | None, body) -> None:
    """Send the request head with the body's first piece, then the rest, with back-pressure."""
    transport = conn.transport
    try:
        splice_into = getattr(body, "splice_into", None)
        if splice_into is not None and await splice_into(conn, head):
            return
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
            if conn.write_paused:
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


def retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()   # reported through the response (or deliberately dropped), never logged
