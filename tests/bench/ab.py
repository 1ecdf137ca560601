"""A/B: the gateway's CPU per request, a baseline copy against the working tree, interleaved.

    cp -r gateway config /tmp/base/          # before changing gateway/
    .venv/bin/python -m tests.bench.ab --baseline /tmp/base [--op GET] [--rounds 6] [--seconds 4]
    # or one tree, a setting changed for the candidate only:
    .venv/bin/python -m tests.bench.ab --baseline . --candidate-env R2GW_UPSTREAM_TRANSPORT=lean
    # or one tree, the candidate's requests signed with a temporary credential (a session token):
    .venv/bin/python -m tests.bench.ab --baseline . --candidate-temporary
    # or one tree on another CPython (a venv holding the gateway's dependencies):
    .venv/bin/python -m tests.bench.ab --baseline . --candidate-python /tmp/venv312/bin/python

Both gateways run in front of one Ceph RGW; the load generator drives them in alternating slices
(A, B, B, A, …) so that load from elsewhere on the machine falls on both alike. Prints the
gateway CPU µs/request and ops/s of each, per slice and as medians.
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
from .run import BUCKET, RGW_CONF
from ..gateway_process import GatewayProcess
from ..upstreams.rgw import CephRGW


def temporary_credential(gw: GatewayProcess) -> tuple[str, str, str]:
    """A temporary credential of ``gw``'s key for the benchmark's bucket (R2's algorithm, an hour)."""
    from gateway.auth.keys import Key
    from gateway.auth.temporary import mint
    m = mint(Key(gw.access_key, gw.secret_key), bucket=BUCKET, scope="object-read-write", ttl_seconds=3600,
             audience=gw.endpoint.removeprefix("http://"), account_id="bench")
    return m.access_key_id, m.secret_access_key, m.session_token


async def _slice(gw: GatewayProcess, op: str, seconds: float, concurrency: int, rate: float | None):
    creds = getattr(gw, "credential", None) or (gw.access_key, gw.secret_key, None)
    s = lg.SigV4(gw.endpoint, creds[0], creds[1], "auto", session_token=creds[2])
    body = lg.RepeatBody(1024, seed=1)
    block, ph = body.block, body.sha256()
    if op == "GET":
        make = lambda w, n: (s.head("GET", f"/{BUCKET}/small/{(w * 7 + n) % 64:04d}"), None)  # noqa: E731
    else:
        make = lambda w, n: (s.head("PUT", f"/{BUCKET}/p/{w:03d}-{n % 32:02d}", ph, len(block)), block)  # noqa: E731
    pids = procstat.tree(gw.pid)
    marks = {}
    r = await lg.run_load(s.addr, make, concurrency=concurrency, duration=seconds, warmup=0.5, rate=rate,
                          on_window=lambda e: marks.__setitem__(e, procstat.tree_cpu_seconds(pids)))
    if r.errors:
        raise RuntimeError(f"errors: {r.errors} {r.first_error}")
    return r.ops_per_s, (marks["end"] - marks["start"]) / max(1, r.requests) * 1e6


async def _populate(gw: GatewayProcess) -> None:
    s = lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto")
    body = lg.RepeatBody(1024, seed=1)
    await lg.simple(s.addr, s.head("PUT", f"/{BUCKET}", lg.EMPTY_SHA256, 0))
    for i in range(64):
        st, _ = await lg.simple(s.addr, s.head("PUT", f"/{BUCKET}/small/{i:04d}", body.sha256(), 1024), body.block)
        assert st == 200, st


def _big(rgw: CephRGW, gws: dict[str, GatewayProcess], op: str, mib: int, rounds: int) -> int:
    """One ``mib`` MiB transfer per slice, direct RGW and both gateways in rotation."""
    import uvloop

    body = lg.RepeatBody(mib * lg.MiB, seed=2)
    signers = {"direct RGW": (lg.SigV4(rgw.endpoint, rgw.access_key, rgw.secret_key, "us-east-1"), [])}
    for name, gw in gws.items():
        signers[name] = (lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto"), procstat.tree(gw.pid))
    path = f"/{BUCKET}/ab-big"

    up = rgw.live_pids()

    async def one(s: lg.SigV4, pids: list[int]) -> tuple[float, float, float, float]:
        """MiB/s, then CPU s/GiB of the gateway, the upstream (every RGW daemon), the load generator."""
        c0, u0, l0 = (procstat.tree_cpu_seconds(pids) if pids else 0.0), procstat.tree_cpu_seconds(up), lg.cpu_self()
        if op == "PUT":
            secs, _ = await lg.transfer(s.addr, s.head("PUT", path, lg.UNSIGNED, body.size), body)
        else:
            secs, _ = await lg.transfer(s.addr, s.head("GET", path))
        gib = mib / 1024
        cpu = (procstat.tree_cpu_seconds(pids) - c0) if pids else 0.0
        return (mib / secs, cpu / gib, (procstat.tree_cpu_seconds(up) - u0) / gib, (lg.cpu_self() - l0) / gib)

    async def setup() -> None:
        s = signers["direct RGW"][0]
        await lg.simple(s.addr, s.head("PUT", f"/{BUCKET}", lg.EMPTY_SHA256, 0))
        await lg.transfer(s.addr, s.head("PUT", path, lg.UNSIGNED, body.size), body)

    uvloop.run(setup())
    res: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in signers}
    names = list(signers)
    for i in range(rounds):
        order = names[i % 3:] + names[:i % 3]
        for name in order:
            s, pids = signers[name]
            rate, cpu, ucpu, lcpu = r = uvloop.run(one(s, pids))
            res[name].append(r)
            print(f"round {i + 1} {name:<17} {op} {rate:7,.0f} MiB/s  CPU s/GiB: gateway {cpu:5.2f}"
                  f" upstream {ucpu:5.2f} loadgen {lcpu:5.2f}  load {procstat.loadavg()}", flush=True)
    print()
    direct = statistics.median(r[0] for r in res["direct RGW"])
    for name, v in res.items():
        rate = statistics.median(r[0] for r in v)
        med = [statistics.median(r[k] for r in v) for k in (1, 2, 3)]
        print(f"{name:<17} {op} {mib} MiB: median {rate:,.0f} MiB/s ({rate / direct:.2f}× direct);"
              f" CPU s/GiB: gateway {med[0]:.2f}, upstream {med[1]:.2f}, loadgen {med[2]:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.ab")
    ap.add_argument("--baseline", type=Path, required=True, help="a directory holding gateway/ and config/")
    ap.add_argument("--candidate", type=Path, help="likewise (default: this working tree)")
    ap.add_argument("--candidate-env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for the candidate only, e.g. R2GW_UPSTREAM_TRANSPORT=lean (repeatable)")
    ap.add_argument("--candidate-python", metavar="PATH",
                    help="the interpreter the candidate runs on (a venv's python holding the gateway's "
                         "dependencies), to compare CPython releases on one tree")
    ap.add_argument("--candidate-temporary", action="store_true",
                    help="the candidate's load signs with a temporary credential of its key (R2's session "
                         "token): its cost against a plain key, e.g. with --baseline . (one tree)")
    ap.add_argument("--op", choices=("GET", "PUT"), default="GET")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rate", type=float)
    ap.add_argument("--big-mib", type=int, metavar="N",
                    help="big objects instead: each slice is one N MiB transfer (GET, or an UNSIGNED-PAYLOAD "
                         "PUT), and direct RGW is measured in the same rotation; MiB/s and CPU s/GiB")
    ap.add_argument("--pin", action="store_true",
                    help="the upstream (every RGW daemon) and the load generator on CPU 0, the gateways on "
                         "CPU 1: the shape where the gateway has a core of its own (a sidecar's CPU request)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args(argv)
    import uvloop

    workdir = Path(tempfile.mkdtemp(prefix="r2gw-ab-"))
    rgw = CephRGW(workdir / "rgw", memstore_bytes=2 << 30, extra_conf=RGW_CONF)
    gws: dict[str, GatewayProcess] = {}
    try:
        rgw.start()
        a = GatewayProcess(workdir / "a", upstream=rgw, tls=False, name="baseline")
        b = GatewayProcess(workdir / "b", upstream=rgw, tls=False, name="candidate",
                           env=dict(kv.split("=", 1) for kv in args.candidate_env))
        if args.candidate_python:
            b.args[0] = args.candidate_python
        # each runs from its own directory: `python -m gateway` imports the package in the cwd
        import tests.gateway_process as gp
        orig_root = gp.ROOT
        try:
            gp.ROOT = args.baseline
            a.start()
            gp.ROOT = args.candidate or orig_root
            b.start()
        finally:
            gp.ROOT = orig_root
        gws = {"A (baseline)": a, "B (candidate)": b}
        if args.pin:
            pinned = procstat.pin_apart(rgw.live_pids(), [p for g in gws.values() for p in procstat.tree(g.pid)])
            print(f"pinned: RGW and the load generator on CPU 0, the gateways on CPU 1 {pinned}", flush=True)
        if args.big_mib:
            return _big(rgw, gws, args.op, args.big_mib, args.rounds)
        uvloop.run(_populate(b))
        if args.candidate_temporary:
            b.credential = temporary_credential(b)
        res: dict[str, list[tuple[float, float]]] = {k: [] for k in gws}
        names = list(gws)
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                ops, us = uvloop.run(_slice(gws[name], args.op, args.seconds, args.concurrency, args.rate))
                res[name].append((ops, us))
                print(f"round {i + 1} {name:<17} {ops:8,.0f} ops/s  {us:5.0f} µs CPU/req  load {procstat.loadavg()}",
                      flush=True)
        print()
        for name, v in res.items():
            print(f"{name:<17} {args.op} c={args.concurrency}: CPU median {statistics.median(u for _, u in v):.0f} µs/req"
                  f" (min {min(u for _, u in v):.0f}, max {max(u for _, u in v):.0f}),"
                  f" ops/s median {statistics.median(o for o, _ in v):,.0f}")
        return 0
    finally:
        for g in gws.values():
            g.stop()
        rgw.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
