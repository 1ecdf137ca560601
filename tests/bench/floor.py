"""The floor under the gateway's CPU per request: a pass-through proxy built from the gateway's own
parts (client-facing server, lean upstream transport, re-signer, relay) with nothing else — no
SigV4 verification, operation, rules, extensions, access log or metrics — measured side by side
with the gateway against one RGW (1 KiB GET, c=16, alternating slices).

    .venv/bin/python -m tests.bench.floor [--rounds 3] [--seconds 4]

What the gateway costs above the floor is what its S3 work costs; the floor itself is Python,
uvloop and the socket calls of one proxied request.
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from . import loadgen as lg
from . import procstat
from .run import BUCKET, RGW_CONF


async def _serve(upstream: str, access_key: str, secret_key: str, port: int) -> None:
    from gateway.server import Response, Server, StreamResponse
    from gateway.upstream.signer import EMPTY_SHA256, UpstreamSigner
    from gateway.upstream.pool import LeanPool

    pool = LeanPool(upstream, max_connections=64, connect_timeout=5, read_timeout=30, verify_tls=False,
                    keepalive_timeout=30)
    signer = UpstreamSigner(access_key, secret_key, "us-east-1")
    host = upstream.split("//", 1)[1]
    drop = ("content-length", "date", "connection", "server")

    async def handler(req):
        headers = {"host": host}
        signer.sign("GET", req.raw_path, "", headers, EMPTY_SHA256)
        resp = await pool.request("GET", req.raw_path, headers, None)
        out = StreamResponse(status=resp.status, reason=resp.reason)
        for k, v in resp.headers.items():
            if k.lower() not in drop:
                out.headers.add(k, v)
        out.content_length = int(resp.headers.get("Content-Length", 0))
        await out.prepare(req)
        async for data in resp.content.iter_any():
            await out.write(data)
        await out.write_eof()
        resp.release()
        return out

    await asyncio.get_running_loop().create_server(Server(handler, lambda e: Response(status=400)),
                                                   "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.floor")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--serve", nargs=4, metavar=("UPSTREAM", "AK", "SK", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import uvloop
    if args.serve:
        up, ak, sk, port = args.serve
        uvloop.run(_serve(up, ak, sk, int(port)))
        return 0
    from ..gateway_process import GatewayProcess, free_port
    from ..upstreams.rgw import CephRGW
    workdir = Path(tempfile.mkdtemp(prefix="r2gw-floor-"))
    rgw = CephRGW(workdir / "rgw", memstore_bytes=2 << 30, extra_conf=RGW_CONF)
    rgw.start()
    gw = floor = None
    try:
        gw = GatewayProcess(workdir / "gateway", upstream=rgw, tls=False)
        gw.start()
        port = free_port()
        floor = subprocess.Popen([sys.executable, "-m", "tests.bench.floor", "--serve", rgw.endpoint,
                                  rgw.access_key, rgw.secret_key, str(port)], stdout=subprocess.PIPE)
        floor.stdout.readline()
        sg = lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto")
        sf = lg.SigV4(f"http://127.0.0.1:{port}", "unused", "unused", "us-east-1")
        body = lg.RepeatBody(1024, seed=1)

        async def populate() -> None:
            await lg.simple(sg.addr, sg.head("PUT", f"/{BUCKET}", lg.EMPTY_SHA256, 0))
            for i in range(64):
                await lg.simple(sg.addr, sg.head("PUT", f"/{BUCKET}/small/{i:04d}", body.sha256(), 1024), body.block)

        async def slice_(s: lg.SigV4, pids: list[int]) -> tuple[float, float]:
            marks: dict[str, float] = {}
            r = await lg.run_load(s.addr, lambda w, n: (s.head("GET", f"/{BUCKET}/small/{(w * 7 + n) % 64:04d}"), None),
                                  concurrency=16, duration=args.seconds, warmup=0.5,
                                  on_window=lambda e: marks.__setitem__(e, procstat.tree_cpu_seconds(pids)))
            if r.errors:
                raise RuntimeError(f"errors: {r.errors} {r.first_error}")
            return r.ops_per_s, (marks["end"] - marks["start"]) / r.requests * 1e6

        uvloop.run(populate())
        for i in range(args.rounds):
            a = uvloop.run(slice_(sg, procstat.tree(gw.pid)))
            b = uvloop.run(slice_(sf, [floor.pid]))
            print(f"round {i + 1}: gateway {a[0]:,.0f} ops/s {a[1]:.0f} µs CPU/req | floor proxy {b[0]:,.0f} ops/s "
                  f"{b[1]:.0f} µs CPU/req | load {procstat.loadavg()}", flush=True)
        return 0
    finally:
        if floor is not None:
            floor.kill()
        if gw is not None:
            gw.stop()
        rgw.stop()


if __name__ == "__main__":
    sys.exit(main())
