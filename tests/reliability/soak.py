"""Soak: many concurrent connections of mixed small GET / PUT / LIST through the gateway for a
while; then zero errors, flat memory and file descriptors, and no growth of the upstream pool.

    python -m tests.reliability.soak --seconds 600            # starts its own RGW and gateway
    python -m tests.reliability.soak --seconds 60 --json out.json
    python -m tests.reliability.soak --endpoint http://127.0.0.1:8080 --pid 1234 \\
        --access-key AK --secret-key SK --bucket b     # against a gateway already running

Loopback only, bounded in time and in connections. Every GET is checked end to end: the body's
MD5 must equal the ETag it came with (single-part objects), and its length the Content-Length.
Prints a JSON summary; exit status 1 when a check failed.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.upstream.signer import UpstreamSigner  # noqa: E402  (a lean SigV4 signer; the gateway checks it)

KEYS = 400
PREFIXES = 16


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    pool: float
    in_flight: float
    requests: int


@dataclass
class Report:
    seconds: float
    connections: int
    requests: int = 0
    by_op: dict = field(default_factory=lambda: {"GET": 0, "PUT": 0, "LIST": 0})
    errors: int = 0
    error_kinds: dict = field(default_factory=dict)
    latency_ms: dict = field(default_factory=dict)
    rss_kib: dict = field(default_factory=dict)
    fds: dict = field(default_factory=dict)
    pool: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _proc(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def _metrics(session: aiohttp.ClientSession, endpoint: str) -> dict[str, float]:
    async with session.get(endpoint + "/metrics") as r:
        text = await r.text()
    out = {}
    for name in ("r2gw_upstream_connections", "r2gw_requests_in_flight"):
        found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.M)   # summed over the stores
        out[name] = sum(map(float, found)) if found else -1.0
    return out


class Load:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, connections: int) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = URL(self.endpoint).raw_authority
        self.signer = UpstreamSigner(access_key, secret_key, "auto")
        self.bucket = bucket
        self.connections = connections
        self.latencies: list[float] = []
        self.report = Report(0, connections)
        self.measuring = False

    def _headers(self, method: str, path: str, query: str, extra: dict | None = None) -> dict[str, str]:
        h = {"host": self.host, **(extra or {})}
        self.signer.sign(method, path, query, h, "UNSIGNED-PAYLOAD")
        return h

    def _url(self, path: str, query: str = "") -> URL:
        return URL(f"{self.endpoint}{path}{'?' + query if query else ''}", encoded=True)

    def _key(self, i: int) -> str:
        return f"p{i % PREFIXES:02d}/obj-{i:04d} ä+.bin"

    def _path(self, key: str) -> str:
        return f"/{quote(self.bucket, safe='')}/{quote(key, safe='/~')}"

    async def put(self, session, key: str) -> None:
        body = os.urandom(random.randint(1024, 16 * 1024))
        path = self._path(key)
        h = self._headers("PUT", path, "", {"content-length": str(len(body))})
        async with session.put(self._url(path), data=body, headers=h) as r:
            data = await r.read()
            if r.status != 200:
                raise RuntimeError(f"PUT {r.status} {data[:120]!r}")
            if r.headers.get("ETag", "").strip('"') != hashlib.md5(body).hexdigest():
                raise RuntimeError("PUT ETag is not the body's MD5")

    async def get(self, session, key: str) -> None:
        path = self._path(key)
        async with session.get(self._url(path), headers=self._headers("GET", path, "")) as r:
            data = await r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {r.status} {data[:120]!r}")
            if int(r.headers["Content-Length"]) != len(data):
                raise RuntimeError("GET short body")
            if r.headers.get("ETag", "").strip('"') != hashlib.md5(data).hexdigest():
                raise RuntimeError("GET body does not match its ETag")

    async def list(self, session) -> None:
        prefix = f"p{random.randrange(PREFIXES):02d}/"
        query = f"list-type=2&max-keys=50&prefix={quote(prefix, safe='')}"
        path = f"/{quote(self.bucket, safe='')}"
        async with session.get(self._url(path, query), headers=self._headers("GET", path, query)) as r:
            data = await r.read()
            if r.status != 200 or b"<ListBucketResult" not in data:
                raise RuntimeError(f"LIST {r.status} {data[:120]!r}")

    async def populate(self, session) -> None:
        sem = asyncio.Semaphore(32)

        async def one(i):
            async with sem:
                await self.put(session, self._key(i))
        await asyncio.gather(*(one(i) for i in range(KEYS)))

    async def worker(self, session, deadline: float) -> None:
        rep = self.report
        while time.monotonic() < deadline:
            roll = random.random()
            op = "GET" if roll < 0.5 else "PUT" if roll < 0.8 else "LIST"
            t0 = time.perf_counter()
            try:
                if op == "GET":
                    await self.get(session, self._key(random.randrange(KEYS)))
                elif op == "PUT":
                    await self.put(session, self._key(random.randrange(KEYS)))
                else:
                    await self.list(session)
            except Exception as e:  # noqa: BLE001 - every failure is counted and classified
                kind = f"{op}: {type(e).__name__}: {str(e)[:80]}"
                rep.error_kinds[kind] = rep.error_kinds.get(kind, 0) + 1
                rep.errors += 1
            else:
                if self.measuring:
                    self.latencies.append(time.perf_counter() - t0)
            rep.requests += 1
            rep.by_op[op] += 1


async def run_load(endpoint: str, access_key: str, secret_key: str, bucket: str, pid: int, seconds: float,
                   connections: int = 200, warmup: float | None = None, sample_every: float = 5.0,
                   log=None) -> Report:
    """Run the soak against a running gateway (process ``pid``) and judge it."""
    warmup = min(30.0, seconds / 4) if warmup is None else warmup
    load = Load(endpoint, access_key, secret_key, bucket, connections)
    rep = load.report
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                     skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                                     cookie_jar=aiohttp.DummyCookieJar()) as session, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as side:
        await load.populate(session)
        start = time.monotonic()
        deadline = start + seconds
        workers = [asyncio.create_task(load.worker(session, deadline)) for _ in range(connections)]
        samples: list[Sample] = []
        measured_from = start + warmup
        while time.monotonic() < deadline:
            await asyncio.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))
            now = time.monotonic()
            if now >= measured_from and not load.measuring:
                load.measuring = True
            rss, fds = _proc(pid)
            m = await _metrics(side, endpoint)
            s = Sample(round(now - start, 1), rss, fds, m["r2gw_upstream_connections"],
                       m["r2gw_requests_in_flight"], rep.requests)
            samples.append(s)
            if log:
                log(f"t={s.t:6.1f}s requests={s.requests:7d} errors={rep.errors} rss={rss / 1024:6.1f}MiB "
                    f"fds={fds} pool={s.pool:.0f} in_flight={s.in_flight:.0f}")
        await asyncio.gather(*workers)
        await asyncio.sleep(1.0)  # let the last connections settle before the final reading
        rss, fds = _proc(pid)
        m = await _metrics(side, endpoint)
        samples.append(Sample(round(time.monotonic() - start, 1), rss, fds, m["r2gw_upstream_connections"],
                              m["r2gw_requests_in_flight"], rep.requests))
    rep.seconds = round(time.monotonic() - start, 1)
    rep.samples = [asdict(s) for s in samples]
    _judge(rep, samples, warmup, load.latencies)
    return rep


def _judge(rep: Report, samples: list[Sample], warmup: float, latencies: list[float]) -> None:
    steady = [s for s in samples if s.t >= warmup] or samples[-1:]
    first, last = steady[0], samples[-1]
    rep.rss_kib = {"after_warmup": first.rss_kib, "end": last.rss_kib, "peak": max(s.rss_kib for s in samples),
                   "min_steady": min(s.rss_kib for s in steady)}
    rep.fds = {"after_warmup": first.fds, "end": last.fds, "peak": max(s.fds for s in samples)}
    rep.pool = {"after_warmup": first.pool, "end": last.pool, "peak": max(s.pool for s in samples),
                "peak_steady": max(s.pool for s in steady)}
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        rep.latency_ms = {"p50": round(q[49] * 1000, 1), "p99": round(q[98] * 1000, 1),
                          "max": round(max(latencies) * 1000, 1)}
    rate = rep.requests / rep.seconds if rep.seconds else 0
    rep.latency_ms["requests_per_second"] = round(rate, 1)
    if rep.errors:
        rep.failures.append(f"{rep.errors} errors: {rep.error_kinds}")
    # flat memory: no more than 24 MiB (or 15 %) above the steady state's first reading
    allowance = max(24 * 1024, first.rss_kib * 0.15)
    if last.rss_kib > first.rss_kib + allowance:
        rep.failures.append(f"RSS grew {first.rss_kib} -> {last.rss_kib} KiB")
    # a steadily rising RSS over the steady part (slope per minute) is a leak even under the allowance
    if len(steady) >= 6:
        xs = [s.t for s in steady]
        ys = [s.rss_kib for s in steady]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-9)
        rep.rss_kib["slope_kib_per_min"] = round(slope * 60, 1)
        if slope * 60 > 1024 and (last.t - first.t) >= 300:
            rep.failures.append(f"RSS rising {slope * 60:.0f} KiB/min")
    if last.fds > first.fds + 16:
        rep.failures.append(f"fds grew {first.fds} -> {last.fds}")
    if max(s.pool for s in steady) > first.pool + 32 or last.pool > rep.connections + 16:
        rep.failures.append(f"upstream pool grew {first.pool} -> peak {max(s.pool for s in steady)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--warmup", type=float, default=None, help="seconds before the steady state (default: min(30, 1/4))")
    ap.add_argument("--json", type=Path, default=None, help="write the report here too")
    ap.add_argument("--endpoint"), ap.add_argument("--pid", type=int), ap.add_argument("--bucket")
    ap.add_argument("--access-key"), ap.add_argument("--secret-key")
    args = ap.parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if not 1 <= args.connections <= 1000 or not 0 < args.seconds <= 3600:
        ap.error("bounded: 1..1000 connections, at most an hour")
    if args.endpoint:
        if not re.match(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$", args.endpoint):
            ap.error("loopback endpoints only")
        rep = asyncio.run(run_load(args.endpoint, args.access_key, args.secret_key, args.bucket, args.pid,
                                   args.seconds, args.connections, args.warmup, log=log))
    else:
        rep = _self_contained(args, log)
    out = json.dumps({**asdict(rep), "ok": rep.ok}, indent=2)
    summary = {k: v for k, v in asdict(rep).items() if k != "samples"}
    print(json.dumps({**summary, "ok": rep.ok}, indent=2))
    if args.json:
        args.json.write_text(out)
    return 0 if rep.ok else 1


def _self_contained(args, log) -> Report:
    """Start a throwaway Ceph RGW and a gateway in front of it, soak, stop both."""
    from tests.gateway_process import GatewayProcess
    from tests.upstreams.fixtures import s3_client
    from tests.upstreams.rgw import CephRGW
    work = Path(tempfile.mkdtemp(prefix="r2gw-soak-"))
    rgw = CephRGW(work / "rgw")
    log(f"starting Ceph RGW in {work} ...")
    rgw.start()
    gw = None
    try:
        gw = GatewayProcess(work / "gw", upstream=rgw, tls=False, name="gateway-soak").start()
        bucket = "soak-" + uuid.uuid4().hex[:8]
        s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region).create_bucket(Bucket=bucket)
        log(f"gateway pid {gw.pid} at {gw.endpoint}; soaking {args.seconds:.0f}s with {args.connections} connections")
        return asyncio.run(run_load(gw.endpoint, gw.access_key, gw.secret_key, bucket, gw.pid, args.seconds,
                                    args.connections, args.warmup, log=log))
    finally:
        if gw is not None:
            gw.stop()
        rgw.stop()


if __name__ == "__main__":
    sys.exit(main())
