"""``read(n)`` over any body stream that has ``readany()`` and ``unread_data()``: the client's
request body (``server.body.BodyStream``) and an upstream's response (``upstream.stream.LeanResponse``)."""
from __future__ import annotations


async def read_up_to(stream, n: int = -1) -> bytes:
    """``n`` < 0: the whole rest; else up to ``n`` bytes (b"" at the end)."""
    if n < 0:
        parts = []
        while True:
            data = await stream.readany()
            if not data:
                return b"".join(parts)
            parts.append(data)
    if n == 0:
        return b""
    data = await stream.readany()
    if len(data) > n:
        stream.unread_data(data[n:])
        data = data[:n]
    return data
