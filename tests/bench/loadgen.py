"""A lean S3 load generator: raw asyncio protocol (run it on uvloop), HTTP/1.1 keep-alive, SigV4.

It has to cost less per request than what it measures, on a 2-core machine where it shares the
CPU with the gateway and RGW. So:

* one ``asyncio.Protocol`` per connection with a minimal HTTP/1.1 response parser (status line,
  ``Content-Length``, chunked, ``Connection: close``); bodies that are not kept are only counted;
* SigV4 as SDKs send it (``Authorization`` header over ``host;x-amz-content-sha256;x-amz-date``,
  ``x-amz-date``, ``x-amz-content-sha256``) with the signing key cached per day, the date string
  per second, and payload hashes computed once, before the clock starts;
* request bodies of any size are produced chunk by chunk from one block (``RepeatBody``): a 2 GiB
  upload never exists in memory; responses are read and dropped piece by piece;
* one connection per concurrent worker, kept alive for the whole run (a pool of ``concurrency``).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
MiB = 1024 * 1024


class HTTPError(Exception):
    pass


# ------------------------------------------------------------------------------------ signing
class SigV4:
    """Signs requests for one endpoint (host) with one key pair, the way SDKs do (header form);
    with ``session_token``, a temporary credential's (``x-amz-security-token``, signed)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 session_token: str | None = None) -> None:
        u = urlsplit(endpoint)
        self.host = u.netloc
        self.addr = (u.hostname, u.port or 80)
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self._token = session_token
        self._sec = -1
        self._amz_date = ""
        self._day = ""
        self._key = b""
        self._scope = ""

    def _date(self) -> str:
        now = int(time.time())
        if now != self._sec:
            self._sec = now
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
            day = self._amz_date[:8]
            if day != self._day:
                self._day = day
                k = hmac.digest(("AWS4" + self.secret_key).encode(), day.encode(), "sha256")
                for part in (self.region, "s3", "aws4_request"):
                    k = hmac.digest(k, part.encode(), "sha256")
                self._key = k
                self._scope = f"{day}/{self.region}/s3/aws4_request"
        return self._amz_date

    def head(self, method: str, path: str, payload_hash: str = EMPTY_SHA256,
             content_length: int | None = None) -> bytes:
        """The request head (request line + headers), signed. ``path`` must be canonical already
        (plain ASCII: the benchmark's names need no encoding)."""
        d = self._date()
        host = self.host
        token = self._token
        names = "host;x-amz-content-sha256;x-amz-date" + (";x-amz-security-token" if token else "")
        creq = (f"{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{d}\n"
                + (f"x-amz-security-token:{token}\n" if token else "") + f"\n{names}\n{payload_hash}")
        sts = f"AWS4-HMAC-SHA256\n{d}\n{self._scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
        sig = hmac.digest(self._key, sts.encode(), "sha256").hex()
        cl = "" if content_length is None else f"Content-Length: {content_length}\r\n"
        return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nx-amz-date: {d}\r\n"
                f"x-amz-content-sha256: {payload_hash}\r\n"
                + (f"x-amz-security-token: {token}\r\n" if token else "") +
                f"Authorization: AWS4-HMAC-SHA256 Credential={self.access_key}/{self._scope}, "
                f"SignedHeaders={names}, Signature={sig}\r\n"
                f"{cl}\r\n").encode()


# ------------------------------------------------------------------------------------ bodies
class RepeatBody:
    """``size`` bytes made of one random block repeated: iterated in pieces, hashed once."""

    _hash_cache: dict[tuple[int, int], str] = {}

    def __init__(self, size: int, block: int = MiB, seed: int = 0) -> None:
        self.size = size
        self.block_size = min(block, size) if size else 0
        self.seed = seed
        rnd = hashlib.sha256(f"bench-{seed}".encode()).digest()
        # deterministic, incompressible enough: a SHAKE stream seeded per body
        self.block = hashlib.shake_256(rnd).digest(self.block_size) if self.block_size else b""

    def __iter__(self) -> Iterator[bytes]:
        left = self.size
        blk = self.block
        while left >= len(blk) > 0:
            yield blk
            left -= len(blk)
        if left:
            yield blk[:left]

    def sha256(self) -> str:
        key = (self.size, self.seed)
        cached = self._hash_cache.get(key)
        if cached is None:
            h = hashlib.sha256()
            for piece in self:
                h.update(piece)
            cached = self._hash_cache[key] = h.hexdigest()
        return cached


# ------------------------------------------------------------------------------------ connection
class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = 0            # 0 headers, 1 body by length, 2 chunked, 3 done
        self.remaining = 0
        self.status = 0
        self.keep = False
        self.body = bytearray()
        self.received = 0
        self.close_after = False
        self.closed = False
        self.no_body = False
        self.waiter: asyncio.Future | None = None
        self.first_byte: float = 0.0
        self._paused = False
        self._drain: asyncio.Future | None = None

    @classmethod
    async def open(cls, addr: tuple[str, int]) -> "Connection":
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(cls, addr[0], addr[1])
        proto.transport.set_write_buffer_limits(high=4 * MiB)
        return proto

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        for fut in (self.waiter, self._drain):
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionError(f"connection lost: {exc!r}"))

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.state == 1 and not self.buf:
            n = len(data)
            if n < self.remaining:
                self.remaining -= n
                self.received += n
                if self.keep:
                    self.body += data
                return
        self.buf += data
        self._parse()

    # -- parsing --------------------------------------------------------------------------------
    def _finish(self) -> None:
        self.state = 3
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, why: str) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(HTTPError(why))
        if self.transport is not None:
            self.transport.abort()

    def _parse(self) -> None:
        buf = self.buf
        while buf:
            state = self.state
            if state == 0:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    if len(buf) > 65536:
                        self._fail("response head too large")
                    return
                head = bytes(buf[:i]).lower()
                del buf[:i + 4]
                try:
                    self.status = status = int(head[9:12])
                except ValueError:
                    return self._fail(f"bad status line {head[:40]!r}")
                if status == 100:
                    continue
                self.first_byte = time.perf_counter()
                self.close_after = b"\r\nconnection: close" in head
                if self.no_body or status in (204, 304):
                    self._finish()
                    continue
                j = head.find(b"\r\ncontent-length:")
                if j >= 0:
                    end = head.find(b"\r\n", j + 17)
                    self.remaining = int(head[j + 17:end if end >= 0 else None])
                    if self.remaining == 0:
                        self._finish()
                        continue
                    self.state = 1
                elif b"\r\ntransfer-encoding: chunked" in head:
                    self.state = 2
                    self.remaining = -1
                else:  # body until close
                    self.state = 1
                    self.remaining = 1 << 62
                    self.close_after = True
            elif state == 1:
                n = min(len(buf), self.remaining)
                self.remaining -= n
                self.received += n
                if self.keep:
                    self.body += buf[:n]
                del buf[:n]
                if self.remaining == 0:
                    self._finish()
            elif state == 2:
                if self.remaining > 0:       # inside a chunk's data
                    n = min(len(buf), self.remaining)
                    self.remaining -= n
                    self.received += n
                    if self.keep:
                        self.body += buf[:n]
                    del buf[:n]
                    if self.remaining == 0:
                        self.remaining = -2  # the CRLF after the data
                elif self.remaining == -2:
                    if len(buf) < 2:
                        return
                    del buf[:2]
                    self.remaining = -1
                elif self.remaining == -3:   # after the last chunk: trailers until an empty line
                    i = buf.find(b"\r\n")
                    if i < 0:
                        return
                    del buf[:i + 2]
                    if i == 0:
                        self._finish()
                else:                        # a chunk-size line
                    i = buf.find(b"\r\n")
                    if i < 0:
                        return
                    size = int(bytes(buf[:i]).split(b";")[0], 16)
                    del buf[:i + 2]
                    self.remaining = size if size else -3
            else:
                return self._fail("data after the response")

    # -- requests -------------------------------------------------------------------------------
    async def request(self, head: bytes, body: bytes | RepeatBody | None = None, *, keep_body: bool = True,
                      no_body: bool = False) -> int:
        """Send one request, wait for the whole response; returns the status (body in ``.body``
        when kept, its length in ``.received``)."""
        if self.closed:
            raise ConnectionError("connection closed")
        self.state = 0
        self.status = 0
        self.received = 0
        self.keep = keep_body
        self.no_body = no_body
        if keep_body:
            self.body = bytearray()
        self.buf.clear()
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        t = self.transport
        complete = True
        if body is None:
            t.write(head)
        elif isinstance(body, (bytes, bytearray)):
            t.write(head + body)
        else:
            t.write(head)
            loop = asyncio.get_running_loop()
            for piece in body:
                if waiter.done() or self.closed:
                    complete = False  # answered (or gone) before the body was sent: an error
                    break
                t.write(piece)
                if self._paused:
                    self._drain = loop.create_future()
                    await self._drain
                    self._drain = None
        await waiter
        if self.close_after:
            t.close()
            self.closed = True
        elif not complete:
            t.close()  # the upload was cut short: this connection's state is unknown
            self.closed = True
        return self.status

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


# ------------------------------------------------------------------------------------ load runs
@dataclass
class RunResult:
    requests: int = 0          # completed inside the measured window
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str | None = None

    @property
    def ops_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        lat = sorted(self.latencies)
        i = min(len(lat) - 1, max(0, int(round(q / 100 * len(lat) + 0.5)) - 1))
        return lat[i] * 1000


RequestFactory = Callable[[int, int], tuple[bytes, "bytes | RepeatBody | None"]]


async def run_load(addr: tuple[str, int], make: RequestFactory, *, concurrency: int, duration: float | None = None,
                   warmup: float = 0.0, count: int | None = None, expect: tuple[int, ...] = (200,),
                   on_window: Callable[[str], None] | None = None, rate: float | None = None,
                   no_body: bool = False) -> RunResult:
    """``concurrency`` workers, one connection each, send ``make(worker, n)`` requests back to back.

    Timed mode (``duration``): requests completing during [warmup, warmup + duration] are counted;
    ``on_window("start"|"end")`` is called at the window's edges (to sample CPU counters). Counted
    mode (``count``): exactly ``count`` requests in all, all measured.

    Paced mode (``rate``, requests/s in all): open loop, the workers take turns on a fixed schedule
    and a request's latency counts from its scheduled time (a late start is the server's delay
    too). Below the server's capacity this measures what a request costs without queueing.
    ``no_body``: the answers carry no body whatever their Content-Length says (HEAD).
    """
    res = RunResult()
    loop = asyncio.get_running_loop()
    conns = [await Connection.open(addr) for _ in range(concurrency)]
    t0 = time.perf_counter()
    if count is None:
        assert duration is not None
        win_start, win_end = t0 + warmup, t0 + warmup + duration
    else:
        win_start, win_end = t0, float("inf")
    remaining = [count if count is not None else -1]
    lat = res.latencies
    statuses = res.statuses

    async def worker(w: int) -> None:
        conn = conns[w]
        n = 0
        while True:
            if count is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            if rate is not None:
                start = t0 + (n * concurrency + w) / rate
                if start >= win_end:
                    return
                delay = start - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                head, body = make(w, n)
            else:
                head, body = make(w, n)
                start = time.perf_counter()
                if count is None and start >= win_end:
                    return
            n += 1
            try:
                if conn.closed:
                    conn = conns[w] = await Connection.open(addr)
                status = await conn.request(head, body, keep_body=True, no_body=no_body)
                ok = status in expect
            except (ConnectionError, HTTPError, OSError) as e:
                status, ok = -1, False
                if res.first_error is None:
                    res.first_error = repr(e)
                conn.close()
            end = time.perf_counter()
            if win_start <= end <= win_end:
                statuses[status] = statuses.get(status, 0) + 1
                if ok:
                    res.requests += 1
                    lat.append(end - start)
                else:
                    res.errors += 1
                    if res.first_error is None:
                        res.first_error = f"HTTP {status}: {bytes(conn.body[:300])!r}"

    async def windows() -> None:
        await asyncio.sleep(max(0.0, win_start - time.perf_counter()))
        if on_window:
            on_window("start")
        await asyncio.sleep(max(0.0, win_end - time.perf_counter()))
        if on_window:
            on_window("end")

    tasks = [loop.create_task(worker(w)) for w in range(concurrency)]
    win_task = loop.create_task(windows()) if count is None else None
    if count is not None and on_window:
        on_window("start")
    await asyncio.gather(*tasks)
    if win_task is not None:
        await win_task
        res.seconds = duration
    else:
        res.seconds = time.perf_counter() - t0
        if on_window:
            on_window("end")
    for c in conns:
        c.close()
    return res


async def transfer(addr: tuple[str, int], head: bytes, body: RepeatBody | None = None,
                   expect: tuple[int, ...] = (200,)) -> tuple[float, int]:
    """One big request on a fresh connection → (seconds, response body bytes). Raises on failure."""
    conn = await Connection.open(addr)
    try:
        t0 = time.perf_counter()
        status = await conn.request(head, body, keep_body=False)
        elapsed = time.perf_counter() - t0
        if status not in expect:
            raise HTTPError(f"HTTP {status}")
        return elapsed, conn.received
    finally:
        conn.close()


async def simple(addr: tuple[str, int], head: bytes, body: bytes | None = None) -> tuple[int, bytes]:
    conn = await Connection.open(addr)
    try:
        status = await conn.request(head, body)
        return status, bytes(conn.body)
    finally:
        conn.close()


def cpu_self() -> float:
    t = os.times()
    return t.user + t.system
