"""CI check of the benchmark harness: ``python -m tests.bench.run --quick`` runs end to end and
produces its table and a JSON file with every figure. Performance targets are NOT asserted here
(a 2-core CI machine shared with other work cannot judge them); the harness reports them.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.upstreams.rgw import ceph_binaries_missing

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.rgw, pytest.mark.slow]

# every figure the quick run must produce: (id, columns that must hold a number)
ALL = ("direct", "nginx", "gateway")
EXPECTED = {
    **{f"small.{op}.c{c}.{m}": ALL for op in ("GET", "PUT") for c in (16, 64)
       for m in ("ops_per_s", "p50_ms", "p99_ms", "front_cpu_us_per_req", "loadgen_cpu_us_per_req")},
    **{f"paced.{op}.c16.{m}": ALL for op in ("GET", "PUT") for m in ("p50_ms", "p99_ms", "front_cpu_us_per_req")},
    **{f"big.{m}.mib_per_s": ALL for m in ("GET", "PUT_signed", "PUT_unsigned")},
    **{f"huge.{m}.{k}": ALL for m in ("PUT", "GET") for k in ("mib_per_s", "peak_rss_mib", "front_cpu_s_per_gib")},
    "rss.idle_mib": ("gateway",),
    "rss.after_requests_mib": ("gateway",),
    **{f"workers2.{op}.c{c}.{m}": ("direct", "gateway") for op in ("GET", "PUT") for c in (16, 64)
       for m in ("ops_per_s", "p50_ms", "p99_ms", "front_cpu_us_per_req")},
}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v >= 0


def test_quick_benchmark_produces_every_figure(tmp_path):
    missing = ceph_binaries_missing()
    if missing:
        pytest.fail("Ceph RGW missing: " + ", ".join(missing) + " (tests/upstreams/install-system-deps.sh)")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "tests.bench.run", "--quick", "--json", str(out),
                           "--workdir", str(tmp_path / "work")],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"

    # the table
    table = proc.stdout
    for heading in ("load generator ceiling", "small objects, closed loop", "latency below saturation",
                    "big objects", "streaming a huge object", "gateway memory", "--workers 2", "targets"):
        assert heading in table, f"missing section {heading!r} in:\n{table}"
    assert "load average" in table

    # the JSON: every figure, with a number in every column it applies to and ratios to direct
    result = json.loads(out.read_text())
    assert result["meta"]["quick"] is True
    assert len(result["meta"]["loadavg_before"]) == 3 and len(result["meta"]["loadavg_after"]) == 3
    assert [c["concurrency"] for c in result["loadgen_ceiling"]] == [16, 64]
    for c in result["loadgen_ceiling"]:
        assert _number(c["ops_per_s"]) and c["ops_per_s"] > 0 and _number(c["loadgen_cpu_us_per_req"])
    figs = {f["id"]: f for f in result["figures"]}
    assert set(EXPECTED) <= set(figs), f"missing figures: {sorted(set(EXPECTED) - set(figs))}"
    for fid, columns in EXPECTED.items():
        f = figs[fid]
        for col in columns:
            assert _number(f[col]), f"{fid}: {col} = {f[col]!r}"
        # ratios wherever the denominator is not 0 (a quick run's CPU figures can be: /proc counts
        # CPU in 10 ms ticks, and nginx spends less than that on a few hundred requests)
        if "direct" in columns and "gateway" in columns and f["direct"] > 0:
            assert _number(f["gateway_ratio"]), fid
        if "direct" in columns and "nginx" in columns and f["direct"] > 0:
            assert _number(f["nginx_ratio"]), fid
        if "nginx" in columns and "gateway" in columns and f["nginx"] > 0:
            assert _number(f["gateway_vs_nginx"]), fid
    for fid in ("small.GET.c16.ops_per_s", "small.PUT.c16.ops_per_s"):
        runs = figs[fid]["runs"]
        for target in ALL:
            assert runs[target]["requests"] > 0, (fid, target, runs[target])
            assert runs[target]["errors"] == 0, (fid, target, runs[target])
    # the big GET: its own rounds (after an unmeasured warm-up), as many samples per path as planned
    big_get = figs["big.GET.mib_per_s"]["samples"]
    assert all(len(big_get[t]) == result["meta"]["plan"]["big_get_reps"] for t in ALL), big_get
    # the targets are reported (pass or fail), each with its measured value
    names = [t["name"] for t in result["targets"]]
    assert len(names) >= 10
    assert all(t["actual"] is not None and isinstance(t["pass"], bool) for t in result["targets"])
    assert result["meta"]["wall_seconds"] < 120


def test_relay_cpu_tool_runs(capsys):
    """tests.bench.relay_cpu (the kernel relay alone) still runs and moves every byte."""
    from tests.bench import relay_cpu
    from gateway.upstream import splice
    if not splice.AVAILABLE:
        pytest.skip("splice is Linux only")
    assert relay_cpu.main(["--mib", "8", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "run 1:" in out and "mean:" in out
    r = asyncio.run(relay_cpu.one(8 << 20))
    assert r["moved"] == 8 << 20 and r["mib_s"] > 0
    assert {"user_s_gib", "sys_s_gib", "waits"} <= r.keys()   # the CPU figures it is run for are reported


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs to show")
def test_pin_moves_every_thread_and_later_threads_inherit():
    """procstat.pin (the benchmarks' --pin): every thread of a process, and threads it makes later."""
    from tests.bench import procstat
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, threading\n"
         "ev = threading.Event(); threading.Thread(target=ev.wait, daemon=True).start()\n"
         "print('ready', flush=True); sys.stdin.readline()\n"
         "got = []\n"
         "t = threading.Thread(target=lambda: got.append(sorted(os.sched_getaffinity(0)))); t.start(); t.join()\n"
         "print(got[0], sorted(os.sched_getaffinity(0)), flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        cpu = max(os.sched_getaffinity(0))
        assert procstat.pin([child.pid], {cpu}) == 2   # the main thread and the waiting one
        for tid in os.listdir(f"/proc/{child.pid}/task"):
            assert os.sched_getaffinity(int(tid)) == {cpu}
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == f"[{cpu}] [{cpu}]"
    finally:
        child.kill()
        child.wait()


def test_server_ab_runs_both_fronts():
    """The own server and aiohttp's behind the same gateway answer GET, PUT and HEAD without an
    error (an answer the load generator does not take is an error, and a failed run exits non-zero)."""
    missing = ceph_binaries_missing()
    if missing:
        pytest.fail("Ceph RGW missing: " + ", ".join(missing) + " (tests/upstreams/install-system-deps.sh)")
    out = subprocess.run([sys.executable, "-m", "tests.bench.server_ab", "--rounds", "1", "--seconds", "0.3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "C parser in use: True" in out.stdout
    for op in ("GET", "PUT", "HEAD"):
        assert f"{op:<4} own/aiohttp CPU per request" in out.stdout, out.stdout
