"""Where the gateway spends its CPU under the 1 KiB GET load (py-spy), and its CPU per request.

    .venv/bin/python -m tests.bench.profile_gateway [--seconds 20] [--op GET|PUT] [--out DIR] [--cpu-only]

Starts Ceph RGW and the gateway, drives ``--op`` at c=16 with the benchmark's load generator, and
records the gateway with ``py-spy record`` (``.venv/bin/pip install py-spy``): a flame graph
(``profile.svg``), the collapsed stacks (``profile.txt``) and a table of the functions with the
most samples, by own time and by time including callees. ``--cpu-only`` skips py-spy and prints
the gateway's CPU µs per request over a few runs (an A/B check for a change in gateway/).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from . import loadgen as lg
from . import procstat
from .run import BUCKET, RGW_CONF
from ..gateway_process import GatewayProcess
from ..upstreams.rgw import CephRGW


def _frame_name(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


# Areas of the gateway's work: a sample counts for the first rule matching its frames, innermost first.
AREAS = (
    ("socket writes (send syscalls)", ("StreamWriter._write (", "StreamWriter._writelines (")),
    ("access log (structlog)", ("structlog/", "gateway/observability.py")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("SigV4 verification", ("gateway/auth/",)),
    ("upstream re-signing", ("gateway/upstream/signer.py",)),
    ("aiohttp client (upstream request/response)", ("aiohttp/client", "aiohttp/connector")),
    ("aiohttp streams (body buffers)", ("aiohttp/streams.py",)),
    ("aiohttp server (request parsing, response)", ("aiohttp/web_", "aiohttp/http_", "aiohttp/base_protocol")),
    ("client-facing server (gateway/server: parsing, answers, socket writes)", ("gateway/server/",)),
    ("upstream transport (gateway/upstream/transport.py: requests, parsing, socket writes)",
     ("gateway/upstream/transport.py",)),
    ("gateway (the rest of its own code)", ("gateway/",)),
    ("start-up (imports)", ("importlib",)),
)


def areas(collapsed: Path) -> list[tuple[str, float]]:
    counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")[::-1]
        best = None
        for f in frames:
            for name, needles in AREAS:
                if any(nd in f for nd in needles):
                    best = name
                    break
            if best:
                break
        counts[best or "event loop (uvloop, recv, scheduling)"] += n
    return [(k, v / total * 100) for k, v in counts.most_common()] if total else []


def summarize(collapsed: Path, top: int = 30) -> str:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{total} samples", "", "by area (innermost matching frame):"]
    out += [f"  {pct:5.1f}%  {name}" for name, pct in areas(collapsed)]
    out += ["", "own time (the function itself):"]
    out += [f"  {n / total * 100:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "including callees:"]
    out += [f"  {n / total * 100:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


async def _drive(gw: GatewayProcess, op: str, seconds: float, concurrency: int, rate: float | None = None):
    s = lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto")
    body = lg.RepeatBody(1024, seed=1)
    block, ph = body.block, body.sha256()
    st, _ = await lg.simple(s.addr, s.head("PUT", f"/{BUCKET}", lg.EMPTY_SHA256, 0))
    for i in range(64):
        await lg.simple(s.addr, s.head("PUT", f"/{BUCKET}/small/{i:04d}", ph, len(block)), block)
    if op == "GET":
        make = lambda w, n: (s.head("GET", f"/{BUCKET}/small/{(w * 7 + n) % 64:04d}"), None)  # noqa: E731
    else:
        make = lambda w, n: (s.head("PUT", f"/{BUCKET}/p/{w:03d}-{n % 32:02d}", ph, len(block)), block)  # noqa: E731
    marks = {}
    pids = procstat.tree(gw.pid)
    r = await lg.run_load(s.addr, make, concurrency=concurrency, duration=seconds, warmup=1.0, rate=rate,
                          on_window=lambda e: marks.__setitem__(e, procstat.tree_cpu_seconds(pids)))
    return r, (marks["end"] - marks["start"]) / max(1, r.requests) * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.profile_gateway")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--op", choices=("GET", "PUT"), default="GET")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "r2gw-profile")
    ap.add_argument("--cpu-only", action="store_true", help="no py-spy: CPU µs/request over --runs runs")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rate", type=float, help="paced (open loop) at this many requests/s")
    ap.add_argument("--profiler", choices=("cpu", "py-spy"), default="cpu",
                    help="cpu: SIGPROF sampling of CPU time in the gateway (tests/bench/cpuprof.py); "
                         "py-spy: wall-clock samples of the running gateway (also writes a flame graph)")
    ap.add_argument("--gateway-dir", type=Path, help="run the gateway package found in this directory "
                                                       "(a copy, for A/B); default: this working tree")
    args = ap.parse_args(argv)
    import uvloop

    workdir = Path(tempfile.mkdtemp(prefix="r2gw-profile-"))
    rgw = CephRGW(workdir / "rgw", memstore_bytes=2 << 30, extra_conf=RGW_CONF)
    gw = None
    try:
        rgw.start()
        args.out = args.out.resolve()
        args.out.mkdir(parents=True, exist_ok=True)
        gw = GatewayProcess(workdir / "gateway", upstream=rgw, tls=False)
        stacks = args.out / "profile.txt"
        if args.profiler == "cpu" and not args.cpu_only:
            gw.args = [sys.executable, "-m", "tests.bench.cpuprof", "--out", str(stacks), "serve"]
        import tests.gateway_process as gp
        root = gp.ROOT
        if args.gateway_dir:
            # `python -m` imports from the cwd first; tests/ still comes from this tree
            gw.env["PYTHONPATH"] = str(root)
            gp.ROOT = args.gateway_dir.resolve()
        try:
            gw.start()
        finally:
            gp.ROOT = root
        if args.cpu_only:
            cpu, ops = [], []
            for i in range(args.runs):
                r, us = uvloop.run(_drive(gw, args.op, args.seconds, args.concurrency, args.rate))
                cpu.append(us)
                ops.append(r.ops_per_s)
                print(f"run {i + 1}: {r.ops_per_s:,.0f} ops/s, gateway {us:.0f} µs CPU/req, errors {r.errors},"
                      f" load {procstat.loadavg()}", flush=True)
            print(f"{args.op} c={args.concurrency}: gateway CPU median {statistics.median(cpu):.0f} µs/req "
                  f"(min {min(cpu):.0f}, max {max(cpu):.0f}); ops/s median {statistics.median(ops):,.0f}")
            return 0
        if args.profiler == "cpu":
            r, us = uvloop.run(_drive(gw, args.op, args.seconds, args.concurrency, args.rate))
            gw.stop()  # the profiler writes its stacks when the gateway exits
            report = (f"{args.op} c={args.concurrency}: {r.ops_per_s:,.0f} ops/s, gateway {us:.0f} µs CPU/req "
                      f"(SIGPROF sampling, CPU time only)\n\n" + summarize(stacks))
            (args.out / "summary.txt").write_text(report + "\n")
            print(report)
            print(f"\ncollapsed stacks: {stacks}")
            return 0
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        raw, svg = args.out / "profile.txt", args.out / "profile.svg"
        rec_seconds = int(args.seconds)
        procs = []
        for fmt, path in (("raw", raw), ("flamegraph", svg)):
            procs.append(subprocess.Popen([spy, "record", "--pid", str(gw.pid), "--duration", str(rec_seconds),
                                           "--rate", "250", "--nonblocking", "--format", fmt, "--output",
                                           str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        r, us = uvloop.run(_drive(gw, args.op, args.seconds, args.concurrency, args.rate))
        for p in procs:
            _, err = p.communicate(timeout=args.seconds + 30)
            if p.returncode != 0:
                print(f"py-spy failed: {err.decode(errors='replace')[-2000:]}", file=sys.stderr)
                return 1
        report = (f"{args.op} c={args.concurrency}: {r.ops_per_s:,.0f} ops/s, gateway {us:.0f} µs CPU/req "
                  f"(with py-spy attached)\n\n" + summarize(raw))
        (args.out / "summary.txt").write_text(report + "\n")
        print(report)
        print(f"\nflame graph: {svg}; collapsed stacks: {raw}")
        return 0
    finally:
        if gw is not None:
            gw.stop()
        rgw.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
