"""A/B of the client-facing HTTP server: the gateway's own (gateway/server/, httptools) against
aiohttp's low-level ``web.Server`` (``tests/bench/aiohttp_front.py``), the same gateway behind each.

    PYTHONPATH=. .venv/bin/python -m tests.bench.server_ab [--ops GET,PUT,HEAD] [--rounds 6] [--seconds 4] [--pin]

One Ceph RGW, two gateway processes from this tree on the same settings (kernel splice relay off
in both: the aiohttp front does not adapt it), 1 KiB objects, closed loop at ``--concurrency``
(16). The load generator drives the two in alternating slices (A, B, B, A, …) per operation, so
that load from elsewhere on the machine falls on both alike. Prints, per slice and as medians,
the gateway's CPU µs per request (/proc, the process tree) and ops/s, then own/aiohttp and the
share of CPU per request the own server saves.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from . import loadgen as lg
from . import procstat
from .ab import _populate
from .run import BUCKET, RGW_CONF
from ..gateway_process import GatewayProcess
from ..upstreams.rgw import CephRGW

OWN, AIO = "own server", "aiohttp web.Server"


async def _slice(gw: GatewayProcess, op: str, seconds: float, concurrency: int):
    s = lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto")
    body = lg.RepeatBody(1024, seed=1)
    block, ph = body.block, body.sha256()
    if op in ("GET", "HEAD"):
        make = lambda w, n: (s.head(op, f"/{BUCKET}/small/{(w * 7 + n) % 64:04d}"), None)  # noqa: E731
    else:
        make = lambda w, n: (s.head("PUT", f"/{BUCKET}/p/{w:03d}-{n % 32:02d}", ph, len(block)), block)  # noqa: E731
    pids = procstat.tree(gw.pid)
    marks = {}
    r = await lg.run_load(s.addr, make, concurrency=concurrency, duration=seconds, warmup=0.5,
                          no_body=op == "HEAD",
                          on_window=lambda e: marks.__setitem__(e, procstat.tree_cpu_seconds(pids)))
    if r.errors:
        raise RuntimeError(f"{op}: errors: {r.errors} {r.first_error}")
    return r.ops_per_s, (marks["end"] - marks["start"]) / max(1, r.requests) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.server_ab")
    ap.add_argument("--ops", default="GET,PUT,HEAD", help="comma-separated subset of GET,PUT,HEAD")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--pin", action="store_true",
                    help="every RGW daemon and the load generator on CPU 0, both gateways on CPU 1")
    args = ap.parse_args(argv)
    ops = [o.strip().upper() for o in args.ops.split(",") if o.strip()]
    import uvloop

    workdir = Path(tempfile.mkdtemp(prefix="r2gw-server-ab-"))
    rgw = CephRGW(workdir / "rgw", memstore_bytes=2 << 30, extra_conf=RGW_CONF)
    gws: dict[str, GatewayProcess] = {}
    try:
        rgw.start()
        env = {"R2GW_SPLICE": "false"}
        own = GatewayProcess(workdir / "own", upstream=rgw, tls=False, name="own", env=env)
        aio = GatewayProcess(workdir / "aio", upstream=rgw, tls=False, name="aiohttp", env=env)
        aio.env.pop("AIOHTTP_NO_EXTENSIONS", None)
        aio.args = [aio.args[0], "-m", "tests.bench.aiohttp_front"]
        gws = {OWN: own, AIO: aio}
        own.start()
        aio.start()
        front = [line for line in aio.log_path.read_text(errors="replace").splitlines()
                 if line.startswith("aiohttp_front:")]
        print(front[0] if front else "aiohttp_front: (no banner)", flush=True)
        if args.pin:
            pinned = procstat.pin_apart(rgw.live_pids(), [p for g in gws.values() for p in procstat.tree(g.pid)])
            print(f"pinned: RGW and the load generator on CPU 0, the gateways on CPU 1 {pinned}", flush=True)
        print(f"load average before: {procstat.loadavg()}", flush=True)
        uvloop.run(_populate(own))
        res: dict[tuple[str, str], list[tuple[float, float]]] = {(o, n): [] for o in ops for n in gws}
        names = list(gws)
        for i in range(args.rounds):
            for op in ops:
                order = names if i % 2 == 0 else names[::-1]
                for name in order:
                    r = uvloop.run(_slice(gws[name], op, args.seconds, args.concurrency))
                    res[(op, name)].append(r)
                    print(f"round {i + 1} {op:<4} {name:<19} {r[0]:8,.0f} ops/s  {r[1]:5.0f} µs CPU/req"
                          f"  load {procstat.loadavg()}", flush=True)
        print(f"\nload average after: {procstat.loadavg()}")
        for op in ops:
            med = {}
            for name in names:
                v = res[(op, name)]
                med[name] = statistics.median(u for _, u in v)
                print(f"{op:<4} 1 KiB c={args.concurrency} {name:<19} CPU median {med[name]:5.0f} µs/req"
                      f" (min {min(u for _, u in v):.0f}, max {max(u for _, u in v):.0f}),"
                      f" ops/s median {statistics.median(o for o, _ in v):,.0f}")
            ratio = med[OWN] / med[AIO]
            per_slice = sorted(a[1] / b[1] for a, b in zip(res[(op, OWN)], res[(op, AIO)]))
            paired = statistics.median(per_slice)
            print(f"{op:<4} own/aiohttp CPU per request: ratio of medians {ratio:.3f}, median of the rounds'"
                  f" ratios {paired:.3f} (range {per_slice[0]:.3f}–{per_slice[-1]:.3f}): the own server saves"
                  f" {100 * (1 - ratio):.1f} % ({100 * (1 - paired):.1f} % paired)")
        return 0
    finally:
        for g in gws.values():
            g.stop()
        rgw.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
