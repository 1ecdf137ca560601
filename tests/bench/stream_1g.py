"""Stream a 1 GiB object up and down through the gateway and directly to RGW: MiB/s both ways with
the ratio, and the gateway's RSS before and at peak.

    .venv/bin/python -m tests.bench.stream_1g [--size-mib 1024] [--reps 2] [--signed] [--json PATH]

Starts Ceph RGW (memstore sized for the object) and the gateway in front of it. Each rep PUTs the
object directly and through the gateway (UNSIGNED-PAYLOAD, or the signed hash with ``--signed``),
then GETs it both ways, reading and dropping the body in pieces; the body is generated chunk by
chunk, never held whole. Reports MiB/s both ways with the gateway/direct ratio, and the gateway's
peak RSS (VmHWM, reset before each transfer, and 20 ms VmRSS samples) against its RSS before.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import loadgen as lg
from . import procstat
from .run import BUCKET, RGW_CONF
from ..gateway_process import GatewayProcess
from ..upstreams.rgw import CephRGW

MiB, GiB = 1024**2, 1024**3


async def _sampled(pid: int, coro):
    procstat.reset_peak_rss(pid)
    before = procstat.rss_kib(pid)
    peak = before
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.wait([task], timeout=0.02)
        peak = max(peak, procstat.rss_kib(pid))
    hwm = procstat.status_kib(pid, "VmHWM").get("VmHWM", 0)
    return task.result(), before / 1024, max(peak, hwm) / 1024


async def _bench(rgw: CephRGW, gw: GatewayProcess, size: int, reps: int, signed: bool, log) -> dict:
    signers = {"direct": lg.SigV4(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region),
               "gateway": lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto")}
    d = signers["direct"]
    st, body = await lg.simple(d.addr, d.head("PUT", f"/{BUCKET}", lg.EMPTY_SHA256, 0))
    if st not in (200, 409):
        raise RuntimeError(f"create bucket: HTTP {st} {body[:200]!r}")
    obj = lg.RepeatBody(size, seed=7)
    ph = await asyncio.to_thread(obj.sha256) if signed else lg.UNSIGNED
    rates = {m: {"direct": [], "gateway": []} for m in ("PUT", "GET")}
    rss = {m: [] for m in ("PUT", "GET")}
    for rep in range(reps):
        for way in ("direct", "gateway"):
            s = signers[way]
            path = f"/{BUCKET}/stream-1g/{way}"
            put = lg.transfer(s.addr, s.head("PUT", path, ph, size), obj)
            get = lg.transfer(s.addr, s.head("GET", path))
            if way == "gateway":
                (secs, _), before, peak = await _sampled(gw.pid, put)
                rss["PUT"].append({"before_mib": before, "peak_mib": peak})
                (gsecs, got), before, peak = await _sampled(gw.pid, get)
                rss["GET"].append({"before_mib": before, "peak_mib": peak})
            else:
                secs, _ = await put
                gsecs, got = await get
            if got != size:
                raise RuntimeError(f"GET via {way}: {got} bytes, expected {size}")
            rates["PUT"][way].append(size / secs / MiB)
            rates["GET"][way].append(size / gsecs / MiB)
            await lg.simple(d.addr, d.head("DELETE", path))
            await asyncio.to_thread(rgw.admin, "gc", "process", "--include-all")
            log(f"rep {rep + 1} {way:<8} PUT {rates['PUT'][way][-1]:6.0f} MiB/s   GET {rates['GET'][way][-1]:6.0f} MiB/s"
                + (f"   gateway RSS before {rss['PUT'][-1]['before_mib']:.0f} MiB, peak PUT "
                   f"{rss['PUT'][-1]['peak_mib']:.0f} MiB, peak GET {rss['GET'][-1]['peak_mib']:.0f} MiB"
                   if way == "gateway" else ""))
    out = {"size_bytes": size, "reps": reps, "payload": "signed" if signed else "UNSIGNED-PAYLOAD"}
    for m in ("PUT", "GET"):
        dmed, gmed = statistics.median(rates[m]["direct"]), statistics.median(rates[m]["gateway"])
        out[m] = {"direct_mib_per_s": dmed, "gateway_mib_per_s": gmed, "ratio": gmed / dmed,
                  "samples": rates[m], "gateway_rss_before_mib": max(x["before_mib"] for x in rss[m]),
                  "gateway_peak_rss_mib": max(x["peak_mib"] for x in rss[m])}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.stream_1g")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--signed", action="store_true", help="x-amz-content-sha256 = the body's hash")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    size = args.size_mib * MiB
    import uvloop

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    load_before = procstat.loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="r2gw-stream-"))
    rgw = CephRGW(workdir / "rgw", memstore_bytes=max(4 * GiB, 3 * size), extra_conf=RGW_CONF)
    gw = None
    try:
        rgw.start()
        gw = GatewayProcess(workdir / "gateway", upstream=rgw, tls=False).start()
        res = uvloop.run(_bench(rgw, gw, size, args.reps, args.signed, log))
    finally:
        if gw is not None:
            gw.stop()
        rgw.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    res["loadavg_before"], res["loadavg_after"] = load_before, procstat.loadavg()
    res["wall_seconds"] = time.monotonic() - t0
    size_s = f"{size // GiB} GiB" if size % GiB == 0 else f"{size // MiB} MiB"
    print(f"{size_s} object, {res['payload']} PUT, median of {args.reps}; load average before "
          f"{load_before}, after {res['loadavg_after']}")
    print(f"{'':6}{'direct MiB/s':>14}{'gateway MiB/s':>15}{'ratio':>8}{'gateway RSS before':>20}{'peak':>8}")
    for m in ("PUT", "GET"):
        r = res[m]
        print(f"{m:<6}{r['direct_mib_per_s']:>14.0f}{r['gateway_mib_per_s']:>15.0f}{r['ratio']:>7.2f}×"
              f"{r['gateway_rss_before_mib']:>16.0f} MiB{r['gateway_peak_rss_mib']:>5.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
