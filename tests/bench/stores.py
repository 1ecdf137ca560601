"""Many stores: what routing and migration on read cost, measured in one run.

    .venv/bin/python -m tests.bench.stores [--rounds 7] [--seconds 4] [--mib 64] [--source moto|rgw|both]

Starts Ceph RGW (the default store, and a second RGW user as store ``second``), a moto server
(store ``moto``) and one gateway with the rules ``bench-mig`` ← moto ``bench-src`` and
``bench-mig2`` ← second ``bench-src2`` (both ``migrate_from``), then measures:

1. small GETs (1 KiB, concurrency 16) on a plain bucket and on a ``migrate_from`` bucket whose
   objects are already in the destination, in alternating slices: the gateway's CPU µs per request
   of each, medians and their ratio (target: ≤ 1.05);
2. first GETs that copy (``--mib`` MiB, a fresh key each round) against a direct GET of the same
   size from the source store, in rotation: MiB/s of each, medians and their ratio (target:
   ≥ 0.8), with the gateway's CPU s/GiB while it streams to the client and into the destination.
   Each copy is checked on the destination (size) before the next round.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from . import loadgen as lg
from . import procstat
from .run import RGW_CONF
from ..gateway_process import GatewayProcess
from ..upstreams.moto_server import MotoServer
from ..upstreams.rgw import CephRGW

PLAIN, MIG = "bench-plain", "bench-mig"
SOURCES = {"moto": ("bench-mig", "bench-src"), "rgw": ("bench-mig2", "bench-src2")}


def _config(rgw: CephRGW, moto: MotoServer, second: tuple[str, str]) -> dict:
    return {"upstream": {"endpoint": rgw.endpoint, "region": rgw.region, "access_key_id": rgw.access_key,
                         "secret_access_key": rgw.secret_key, "dialect": "ceph", "transport": "lean"},
            "upstreams": {"moto": {"endpoint": moto.endpoint, "access_key_id": moto.access_key,
                                   "secret_access_key": moto.secret_key, "dialect": "moto", "transport": "lean"},
                          "second": {"endpoint": rgw.endpoint, "region": rgw.region, "access_key_id": second[0],
                                     "secret_access_key": second[1], "dialect": "ceph", "transport": "lean",
                                     "internal_bucket": "r2gw-internal-second"}},
            "buckets": [{"match": "bench-mig", "migrate_from": {"upstream": "moto", "bucket": "bench-src"}},
                        {"match": "bench-mig2", "migrate_from": {"upstream": "second", "bucket": "bench-src2"}}],
            "log_level": "warning"}


async def _must(addr, head, body=None, ok=(200,)) -> None:
    status, got = await lg.simple(addr, head, body)
    if status not in ok:
        raise RuntimeError(f"HTTP {status}: {got[:300]!r}")


async def _head_status(s: lg.SigV4, path: str) -> int:
    conn = await lg.Connection.open(s.addr)
    try:
        return await conn.request(s.head("HEAD", path), no_body=True)
    finally:
        conn.close()


async def _populate(gw: lg.SigV4, rgw: lg.SigV4, moto: lg.SigV4, second: lg.SigV4) -> None:
    body = lg.RepeatBody(1024, seed=1)
    for bucket in (PLAIN, MIG, "bench-mig2"):
        await _must(gw.addr, gw.head("PUT", f"/{bucket}", lg.EMPTY_SHA256, 0), ok=(200, 409))
    await _must(moto.addr, moto.head("PUT", "/bench-src", lg.EMPTY_SHA256, 0), ok=(200, 409))
    await _must(second.addr, second.head("PUT", "/bench-src2", lg.EMPTY_SHA256, 0), ok=(200, 409))
    for bucket in (PLAIN, MIG):   # in the destination already: the migrating bucket's GETs are served there
        for i in range(64):
            await _must(gw.addr, gw.head("PUT", f"/{bucket}/small/{i:04d}", body.sha256(), 1024), body.block)


async def _slice(gw: GatewayProcess, s: lg.SigV4, bucket: str, seconds: float) -> tuple[float, float]:
    make = lambda w, n: (s.head("GET", f"/{bucket}/small/{(w * 7 + n) % 64:04d}"), None)  # noqa: E731
    pids = procstat.tree(gw.pid)
    marks = {}
    r = await lg.run_load(s.addr, make, concurrency=16, duration=seconds, warmup=0.5,
                          on_window=lambda e: marks.__setitem__(e, procstat.tree_cpu_seconds(pids)))
    if r.errors:
        raise RuntimeError(f"errors: {r.errors} {r.first_error}")
    return r.ops_per_s, (marks["end"] - marks["start"]) / max(1, r.requests) * 1e6


def _copied(gw: GatewayProcess, bucket: str) -> float:
    text = urllib.request.urlopen(gw.endpoint + "/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("r2gw_migrated_objects_total{") and f'bucket="{bucket}"' in line and 'result="copied"' in line:
            total += float(line.rpartition(" ")[2])
    return total


async def _first_gets(gw: GatewayProcess, s: lg.SigV4, direct: lg.SigV4, dest: lg.SigV4, mig: str, src: str,
                      mib: int, rounds: int, label: str) -> dict:
    body = lg.RepeatBody(mib * lg.MiB, seed=3)
    pids = procstat.tree(gw.pid)
    res: dict[str, list[tuple[float, float, float]]] = {"direct": [], "first GET": [], "served GET": [],
                                                        "direct GET+PUT": []}
    cores = os.cpu_count() or 1
    for i in range(rounds):
        key = f"big-{i}-{time.monotonic_ns()}"
        await lg.transfer(direct.addr, direct.head("PUT", f"/{src}/{key}", lg.UNSIGNED, body.size), body)
        order = ("direct", "first GET") if i % 2 == 0 else ("first GET", "direct")
        # served: the copy, from the destination, through the gateway; GET+PUT: the stores doing a
        # first GET's two transfers at once without the gateway (the GET from the source timed)
        for name in (*order, "served GET", "direct GET+PUT"):
            c0, m0, t0 = procstat.tree_cpu_seconds(pids), procstat.machine_busy_seconds(), time.monotonic()
            if name == "served GET":
                secs, n = await lg.transfer(s.addr, s.head("GET", f"/{mig}/{key}"))
            elif name == "direct GET+PUT":
                put = asyncio.ensure_future(lg.transfer(
                    dest.addr, dest.head("PUT", f"/{mig}/{key}-pair", lg.UNSIGNED, body.size), body))
                secs, n = await lg.transfer(direct.addr, direct.head("GET", f"/{src}/{key}"))
                await put
            elif name == "direct":
                secs, n = await lg.transfer(direct.addr, direct.head("GET", f"/{src}/{key}"))
            else:
                before = _copied(gw, mig)
                secs, n = await lg.transfer(s.addr, s.head("GET", f"/{mig}/{key}"))
                deadline = time.monotonic() + 60   # the destination's answer may follow the last byte
                while _copied(gw, mig) < before + 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                status = await _head_status(dest, f"/{mig}/{key}")
                if status != 200 or _copied(gw, mig) < before + 1:
                    raise RuntimeError(f"round {i + 1}: the first GET did not copy ({status})")
            if n != body.size:
                raise RuntimeError(f"{name}: {n} bytes")
            cpu = (procstat.tree_cpu_seconds(pids) - c0) / (mib / 1024)
            # how busy the machine's cores were meanwhile (the stores, the load generator, the gateway)
            # (until the copy is in the destination: its PUT may end after the client's last byte)
            busy = (procstat.machine_busy_seconds() - m0) / ((time.monotonic() - t0) * cores)
            res[name].append((mib / secs, cpu, busy))
            print(f"{label} round {i + 1} {name:<10} {mib / secs:7,.0f} MiB/s  gateway CPU {cpu:5.2f} s/GiB"
                  f"  machine {busy:4.0%} busy  load {procstat.loadavg()}", flush=True)
        await lg.simple(direct.addr, direct.head("DELETE", f"/{src}/{key}"))
        await lg.simple(dest.addr, dest.head("DELETE", f"/{mig}/{key}"))
        await lg.simple(dest.addr, dest.head("DELETE", f"/{mig}/{key}-pair"))
    out = {name: {"mib_s": statistics.median(r[0] for r in v), "gateway_cpu_s_per_gib": statistics.median(r[1] for r in v),
                  "machine_busy": statistics.median(r[2] for r in v)}
           for name, v in res.items()}
    out["ratio"] = out["first GET"]["mib_s"] / out["direct"]["mib_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.stores")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--source", choices=("moto", "rgw", "both"), default="both")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import uvloop

    workdir = Path(tempfile.mkdtemp(prefix="r2gw-stores-"))
    rgw = CephRGW(workdir / "rgw", memstore_bytes=3 << 30, extra_conf=RGW_CONF)
    moto = MotoServer()
    gw = None
    try:
        rgw.start()
        moto.start()
        second = rgw.create_user("bench-second")
        cfg = workdir / "config.yaml"
        cfg.write_text(yaml.safe_dump(_config(rgw, moto, second)))
        gw = GatewayProcess(workdir / "gw", config_path=cfg, tls=False, name="gateway").start()
        s = lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto")
        direct_rgw = lg.SigV4(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
        direct_moto = lg.SigV4(moto.endpoint, moto.access_key, moto.secret_key, moto.region)
        direct_second = lg.SigV4(rgw.endpoint, *second, rgw.region)
        uvloop.run(_populate(s, direct_rgw, direct_moto, direct_second))
        result: dict = {"small_get": {}, "first_get": {}}
        cpu: dict[str, list[float]] = {PLAIN: [], MIG: []}
        for i in range(args.rounds):
            for bucket in ((PLAIN, MIG) if i % 2 == 0 else (MIG, PLAIN)):
                ops, us = uvloop.run(_slice(gw, s, bucket, args.seconds))
                cpu[bucket].append(us)
                print(f"small GET round {i + 1} {bucket:<12} {ops:8,.0f} ops/s  {us:5.0f} µs CPU/req"
                      f"  load {procstat.loadavg()}", flush=True)
        plain, mig = statistics.median(cpu[PLAIN]), statistics.median(cpu[MIG])
        result["small_get"] = {"plain_us": plain, "migrate_from_us": mig, "ratio": mig / plain,
                               "slices": {k: v for k, v in cpu.items()}}
        sources = ("moto", "rgw") if args.source == "both" else (args.source,)
        for name in sources:
            mig_bucket, src_bucket = SOURCES[name]
            direct = direct_moto if name == "moto" else direct_second
            result["first_get"][name] = uvloop.run(_first_gets(gw, s, direct, direct_rgw, mig_bucket, src_bucket,
                                                               args.mib, args.rounds, f"source {name}"))
        print()
        sg = result["small_get"]
        print(f"1 KiB GET, gateway CPU median: plain bucket {sg['plain_us']:.0f} µs/req, migrate_from bucket "
              f"(object in the destination) {sg['migrate_from_us']:.0f} µs/req: {sg['ratio']:.3f}× (target ≤ 1.05)")
        for name, r in result["first_get"].items():
            print(f"{args.mib} MiB first GET (copies {name} → RGW): {r['first GET']['mib_s']:,.0f} MiB/s "
                  f"(gateway {r['first GET']['gateway_cpu_s_per_gib']:.2f} CPU s/GiB) vs direct GET from {name} "
                  f"{r['direct']['mib_s']:,.0f} MiB/s: {r['ratio']:.2f}× (target ≥ 0.8); machine "
                  f"{r['first GET']['machine_busy']:.0%} busy vs {r['direct']['machine_busy']:.0%}; the copy served "
                  f"through the gateway afterwards {r['served GET']['mib_s']:,.0f} MiB/s; the stores alone doing both "
                  f"transfers at once: GET {r['direct GET+PUT']['mib_s']:,.0f} MiB/s")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0
    finally:
        if gw is not None:
            gw.stop()
        moto.stop()
        rgw.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
