"""The gateway against direct Ceph RGW and against a plain nginx reverse proxy, side by side.

    .venv/bin/python -m tests.bench.run [--quick] [--json PATH] [--workdir DIR] [--keep] [--pin]

One command starts Ceph RGW (memstore), the gateway in front of it (``GatewayProcess``), and
Debian's nginx as a plain reverse proxy to the same RGW, then measures the three ways in one run
(see docs/benchmarks.md for what every figure means):

* 1 KiB GET and PUT ops/s, p50 and p99 latency, at concurrency 16 and 64;
* CPU µs per request of the process in front (RGW itself when direct, nginx, the gateway) and of
  the load generator;
* 256 MiB GET and PUT MiB/s (PUT with a signed payload hash and with UNSIGNED-PAYLOAD);
* the gateway's RSS: idle, after 10,000 requests, and peak while streaming a 2 GiB object each way;
* the same small-object runs with ``--workers 2`` (CPU summed over the worker processes);
* the load generator's own ceiling against nginx serving a static file.

Prints a table, writes JSON (``--json``), and checks the targets (reported, never faked:
the exit status does not depend on them). ``--quick`` shrinks everything so CI runs it in < 60 s.
``--pin`` puts RGW and the load generator on CPU 0 and the proxies on CPU 1: what the ratios are
when the proxy does not take its CPU from the upstream's (a sidecar with its own CPU request).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from . import loadgen as lg
from . import procstat
from .nginx import NginxProxy
from ..gateway_process import GatewayProcess
from ..upstreams.rgw import CephRGW

KiB, MiB, GiB = 1024, 1024**2, 1024**3
BUCKET = "bench"
TARGETS = ("direct", "nginx", "gateway")
# RGW: deleted/overwritten tails go to its garbage collector, which by default waits 2 h before it
# frees them; memstore keeps them in RAM until then. The benchmark runs the GC itself after big
# objects, with no minimum wait.
RGW_CONF = {"client.rgw.gw": {"rgw_gc_obj_min_wait": "0", "rgw_gc_processor_period": "30"}}


@dataclass(frozen=True)
class Plan:
    duration: float = 2.5            # measured seconds per slice of a small-object run
    warmup: float = 0.4              # per slice (fresh connections each slice)
    rounds: int = 5                  # slices per target, interleaved
    paced_rate: float = 100.0        # requests/s per path of the latency-below-saturation runs
    concurrencies: tuple[int, ...] = (16, 64)
    small_size: int = 1 * KiB
    get_objects: int = 64
    big_size: int = 256 * MiB
    big_reps: int = 7   # rounds of the big PUTs (each ~1 s per path)
    # rounds of the big GET (each ~0.3 s per path): RGW's own CPU per GiB varies 1.0–3.7 s between
    # transfers of the same object, so one relay measured against itself spread 0.71×–0.93× over
    # 8 rounds; 15 rounds after a warm-up transfer give a steadier median
    big_get_reps: int = 15
    huge_size: int = 2 * GiB
    rss_requests: int = 10_000
    ceiling_duration: float = 3.0
    workers2: bool = True
    memstore_bytes: int = 8 * GiB


FULL = Plan()
QUICK = Plan(duration=0.8, warmup=0.25, rounds=1, big_size=8 * MiB, big_reps=1, big_get_reps=1, huge_size=64 * MiB,
             rss_requests=500, ceiling_duration=0.8, memstore_bytes=2 * GiB)


def _size(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} B"


# --------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, plan: Plan, rgw: CephRGW, nginx: NginxProxy, gateway: GatewayProcess,
                 workdir: Path, log: Callable[[str], None]) -> None:
        self.plan, self.rgw, self.nginx, self.gateway, self.workdir = plan, rgw, nginx, gateway, workdir
        self.log = log
        self.figures: list[dict] = []
        self.ceiling: list[dict] = []
        self.small_body = lg.RepeatBody(plan.small_size, seed=1).block
        self.small_hash = lg.RepeatBody(plan.small_size, seed=1).sha256()
        self.signers = self._signers()
        self.upstream_pids = rgw.live_pids()
        self.gateways = [gateway]

    def _signers(self) -> dict[str, lg.SigV4]:
        rgw, gw = self.rgw, self.gateway
        return {
            "direct": lg.SigV4(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region),
            # nginx passes the Host header through: sign for nginx's own address
            "nginx": lg.SigV4(self.nginx.endpoint, rgw.access_key, rgw.secret_key, rgw.region),
            "gateway": lg.SigV4(gw.endpoint, gw.access_key, gw.secret_key, "auto"),
        }

    def front_pids(self, target: str) -> list[int]:
        """The processes in front of the client for this target (whose CPU per request counts)."""
        if target == "direct":
            return [self.rgw.pid]
        if target == "nginx":
            return procstat.tree(self.nginx.pid)
        return procstat.tree(self.gateway.pid)

    def figure(self, fid: str, label: str, unit: str, values: dict[str, float | None], *,
               higher_is_better: bool, section: str, extra: dict | None = None) -> dict:
        d, n, g = (values.get(t) for t in TARGETS)
        fig = {"id": fid, "section": section, "label": label, "unit": unit,
               "higher_is_better": higher_is_better,
               "columns": [t for t in TARGETS if values.get(t) is not None],
               "direct": d, "nginx": n, "gateway": g,
               "nginx_ratio": _ratio(n, d), "gateway_ratio": _ratio(g, d), "gateway_vs_nginx": _ratio(g, n)}
        if extra:
            fig.update(extra)
        self.figures.append(fig)
        return fig

    # -- setup ---------------------------------------------------------------------------------
    async def setup(self) -> None:
        s = self.signers["direct"]
        status, body = await lg.simple(s.addr, s.head("PUT", f"/{BUCKET}", lg.EMPTY_SHA256, 0))
        if status not in (200, 409):
            raise RuntimeError(f"create bucket: HTTP {status} {body[:300]!r}")
        for i in range(self.plan.get_objects):
            await self._put_small(s, f"/{BUCKET}/small/{i:04d}")

    async def _put_small(self, s: lg.SigV4, path: str) -> None:
        status, body = await lg.simple(s.addr, s.head("PUT", path, self.small_hash, len(self.small_body)),
                                       self.small_body)
        if status != 200:
            raise RuntimeError(f"PUT {path}: HTTP {status} {body[:300]!r}")

    async def delete(self, path: str) -> None:
        s = self.signers["direct"]
        status, body = await lg.simple(s.addr, s.head("DELETE", path))
        if status not in (204, 200, 404):
            raise RuntimeError(f"DELETE {path}: HTTP {status} {body[:300]!r}")

    async def rgw_gc(self) -> None:
        await asyncio.to_thread(self.rgw.admin, "gc", "process", "--include-all")

    # -- load generator ceiling ----------------------------------------------------------------
    async def loadgen_ceiling(self) -> None:
        p = self.plan
        s = lg.SigV4(self.nginx.static_endpoint, "AKIDBENCH", "bench-secret")  # signed, not checked
        for c in p.concurrencies:
            marks: dict[str, float] = {}
            r = await lg.run_load(s.addr, lambda w, n: (s.head("GET", "/static/1k"), None), concurrency=c,
                                  duration=p.ceiling_duration, warmup=min(0.5, p.warmup),
                                  on_window=lambda edge: marks.__setitem__(edge, lg.cpu_self()))
            self.ceiling.append({"concurrency": c, "ops_per_s": r.ops_per_s, "p50_ms": r.percentile_ms(50),
                                 "p99_ms": r.percentile_ms(99), "errors": r.errors,
                                 "loadgen_cpu_us_per_req": (marks["end"] - marks["start"]) / max(1, r.requests) * 1e6})
            self.log(f"  loadgen ceiling c={c}: {r.ops_per_s:,.0f} ops/s")

    # -- small objects ---------------------------------------------------------------------------
    def _small_factory(self, target: str, op: str, signer: lg.SigV4):
        if op == "GET":
            keys = [f"/{BUCKET}/small/{i:04d}" for i in range(self.plan.get_objects)]
            nkeys = len(keys)
            return lambda w, n: (signer.head("GET", keys[(w * 7 + n) % nkeys]), None)
        body, ph, size = self.small_body, self.small_hash, len(self.small_body)
        prefix = f"/{BUCKET}/put-{target}/"
        return lambda w, n: (signer.head("PUT", f"{prefix}{w:03d}-{n % 32:02d}", ph, size), body)

    def all_pids(self) -> list[int]:
        """Every process of this benchmark (for the CPU the rest of the machine used meanwhile)."""
        pids = list(self.upstream_pids) + procstat.tree(self.nginx.pid)
        for gw in self.gateways:
            if gw.proc is not None and gw.proc.poll() is None:
                pids += procstat.tree(gw.pid)
        return pids

    async def small_slice(self, target: str, op: str, concurrency: int, signer: lg.SigV4,
                          front: list[int], rate: float | None = None) -> dict:
        """One measured run (warm-up, then ``plan.duration`` seconds) → raw sums."""
        p = self.plan
        up, ours = self.upstream_pids, self.all_pids()
        marks: dict[str, tuple[float, ...]] = {}

        def on_window(edge: str) -> None:
            marks[edge] = (procstat.tree_cpu_seconds(front), procstat.tree_cpu_seconds(up), lg.cpu_self(),
                           procstat.machine_busy_seconds() - procstat.tree_cpu_seconds(ours) - lg.cpu_self())

        r = await lg.run_load(signer.addr, self._small_factory(target, op, signer), concurrency=concurrency,
                              duration=p.duration, warmup=p.warmup, on_window=on_window, rate=rate)
        (f0, u0, s0, o0), (f1, u1, s1, o1) = marks["start"], marks["end"]
        return {"requests": r.requests, "errors": r.errors, "seconds": r.seconds, "latencies": r.latencies,
                "front_cpu": f1 - f0, "upstream_cpu": u1 - u0, "loadgen_cpu": s1 - s0, "other_cpu": o1 - o0,
                "first_error": r.first_error, "statuses": r.statuses}

    async def small_runs(self, op: str, concurrency: int, targets: dict[str, tuple[lg.SigV4, list[int]]],
                         rate: float | None = None) -> dict[str, dict]:
        """``plan.rounds`` slices per target, interleaved (the order rotates each round) so that a
        load spike from elsewhere on the machine falls on every target alike; pooled per target."""
        names = list(targets)
        slices: dict[str, list[dict]] = {t: [] for t in names}
        for rnd in range(self.plan.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for t in order:
                signer, front = targets[t]
                slices[t].append(await self.small_slice(t, op, concurrency, signer, front, rate))
        out = {}
        for t, sl in slices.items():
            res = lg.RunResult(requests=sum(x["requests"] for x in sl), errors=sum(x["errors"] for x in sl),
                               seconds=sum(x["seconds"] for x in sl),
                               latencies=[v for x in sl for v in x["latencies"]])
            n = max(1, res.requests)
            secs = res.seconds or 1
            o = {"ops_per_s": res.ops_per_s, "p50_ms": res.percentile_ms(50), "p99_ms": res.percentile_ms(99),
                 "requests": res.requests, "errors": res.errors, "seconds": res.seconds,
                 "slices_ops_per_s": [x["requests"] / x["seconds"] for x in sl],
                 "front_cpu_us_per_req": sum(x["front_cpu"] for x in sl) / n * 1e6,
                 "upstream_cpu_us_per_req": sum(x["upstream_cpu"] for x in sl) / n * 1e6,
                 "loadgen_cpu_us_per_req": sum(x["loadgen_cpu"] for x in sl) / n * 1e6,
                 "front_cpu_cores": sum(x["front_cpu"] for x in sl) / secs,
                 "other_load_cores": max(0.0, sum(x["other_cpu"] for x in sl) / secs)}
            errs = [x for x in sl if x["errors"]]
            if errs:
                o["first_error"] = errs[0]["first_error"]
                o["statuses"] = {str(k): v for x in sl for k, v in x["statuses"].items()}
            out[t] = o
            self.log(f"  {op} c={concurrency:<3}{' @' + format(rate, '.0f') + '/s' if rate else ''} {t:<8}"
                     f" {o['ops_per_s']:8,.0f} ops/s  p50 {o['p50_ms'] or 0:6.2f} ms  p99 {o['p99_ms'] or 0:6.2f} ms"
                     f"  front CPU {o['front_cpu_us_per_req']:5.0f} µs/req  other load {o['other_load_cores']:.2f} cores"
                     f"{'  ERRORS ' + str(o['errors']) + ' ' + str(o.get('first_error')) if o['errors'] else ''}")
        return out

    def _targets(self) -> dict[str, tuple[lg.SigV4, list[int]]]:
        return {t: (self.signers[t], self.front_pids(t)) for t in TARGETS}

    async def small(self) -> None:
        size = _size(self.plan.small_size)
        for op in ("GET", "PUT"):
            for c in self.plan.concurrencies:
                runs = await self.small_runs(op, c, self._targets())
                self._small_figures("small", f"{size} {op} c={c}", f"small.{op}.c{c}", runs)

    async def paced(self) -> None:
        """Latency below saturation: the three paths at the same fixed rate (open loop, c=16 each),
        all three at once, so that a stall of the machine hits them at the same moment. RGW serves
        all three streams: its CPU per request (the direct column) is over all of them."""
        p = self.plan
        size = _size(p.small_size)
        rate = p.paced_rate
        seconds = p.duration * p.rounds
        for op in ("GET", "PUT"):
            targets = self._targets()
            ours = self.all_pids()
            rgw_pid = [self.rgw.pid]
            marks: dict[str, tuple] = {}

            def on_window(edge: str) -> None:
                marks[edge] = ({t: procstat.tree_cpu_seconds(front) for t, (_, front) in targets.items()
                                if t != "direct"},
                               procstat.tree_cpu_seconds(rgw_pid),
                               procstat.machine_busy_seconds() - procstat.tree_cpu_seconds(ours) - lg.cpu_self())

            results = await asyncio.gather(*(
                lg.run_load(signer.addr, self._small_factory(t, op, signer), concurrency=16, duration=seconds,
                            warmup=p.warmup, rate=rate, on_window=on_window if t == "direct" else None)
                for t, (signer, _) in targets.items()))
            res = dict(zip(targets, results))
            (f0, r0, o0), (f1, r1, o1) = marks["start"], marks["end"]
            total = sum(r.requests for r in results)
            runs = {}
            for t, r in res.items():
                n = max(1, r.requests)
                cpu = (r1 - r0) / max(1, total) if t == "direct" else (f1[t] - f0[t]) / n
                runs[t] = {"ops_per_s": r.ops_per_s, "p50_ms": r.percentile_ms(50), "p99_ms": r.percentile_ms(99),
                           "requests": r.requests, "errors": r.errors, "seconds": r.seconds,
                           "front_cpu_us_per_req": cpu * 1e6, "other_load_cores": max(0.0, (o1 - o0) / seconds)}
                if r.errors:
                    runs[t]["first_error"] = r.first_error
                self.log(f"  {op} c=16 @{rate:.0f}/s {t:<8} {r.ops_per_s:6,.0f} ops/s  p50 {runs[t]['p50_ms'] or 0:6.2f} ms"
                         f"  p99 {runs[t]['p99_ms'] or 0:6.2f} ms  front CPU {runs[t]['front_cpu_us_per_req']:5.0f} µs/req"
                         f"{'  ERRORS ' + str(r.errors) + ' ' + str(r.first_error) if r.errors else ''}")
            self._small_figures("paced", f"{size} {op} c=16 @{rate:.0f}/s", f"paced.{op}.c16", runs,
                                throughput=False)

    def _small_figures(self, section: str, label: str, fid: str, runs: dict[str, dict],
                       throughput: bool = True) -> None:
        def col(key):
            return {t: runs[t][key] for t in runs}
        raw = {"runs": runs}
        if throughput:
            self.figure(f"{fid}.ops_per_s", f"{label} throughput", "ops/s", col("ops_per_s"),
                        higher_is_better=True, section=section, extra=raw)
            raw = None
        for q in ("p50", "p99"):
            v = col(f"{q}_ms")
            added = {t: (v[t] - v["direct"]) if v.get(t) is not None and v.get("direct") is not None else None
                     for t in v if t != "direct"}
            self.figure(f"{fid}.{q}_ms", f"{label} {q} latency", "ms", v, higher_is_better=False,
                        section=section, extra={"added_ms": added, **(raw or {})})
            raw = None
        self.figure(f"{fid}.front_cpu_us_per_req", f"{label} CPU of the process in front", "µs/req",
                    col("front_cpu_us_per_req"), higher_is_better=False, section=section)
        if throughput:
            self.figure(f"{fid}.loadgen_cpu_us_per_req", f"{label} CPU of the load generator", "µs/req",
                        col("loadgen_cpu_us_per_req"), higher_is_better=False, section=section)
        # noise gauge: CPU that processes outside this benchmark took meanwhile (2 cores in all)
        self.figure(f"{fid}.other_load_cores", f"{label} CPU taken by other processes", "cores",
                    col("other_load_cores"), higher_is_better=False, section=section)

    # -- big objects -------------------------------------------------------------------------------
    async def _get(self, target: str, path: str, size: int) -> float:
        s = self.signers[target]
        secs, got = await lg.transfer(s.addr, s.head("GET", path))
        if got != size:
            raise RuntimeError(f"GET {path} via {target}: {got} bytes, expected {size}")
        return size / secs / MiB

    async def _put(self, target: str, path: str, body: lg.RepeatBody, signed: bool) -> float:
        s = self.signers[target]
        ph = body.sha256() if signed else lg.UNSIGNED
        secs, _ = await lg.transfer(s.addr, s.head("PUT", path, ph, body.size), body)
        return body.size / secs / MiB

    async def big(self) -> None:
        p = self.plan
        size = p.big_size
        body = lg.RepeatBody(size, seed=2)
        await asyncio.to_thread(body.sha256)  # before any clock starts
        src = f"/{BUCKET}/big/source"
        await self._put("direct", src, body, signed=False)
        samples: dict[str, dict[str, list[float]]] = {m: {t: [] for t in TARGETS}
                                                      for m in ("GET", "PUT signed", "PUT unsigned")}
        targets = list(TARGETS)
        # the order rotates each round, as in the small-object runs, so that a load spike or RGW's
        # background work falls on every target alike
        for t in targets:
            await self._get(t, src, size)   # warm-up, not measured: first-touch costs in RGW and the pools
        for rep in range(p.big_get_reps):
            order = targets[rep % len(targets):] + targets[:rep % len(targets)]
            for t in order:
                samples["GET"][t].append(await self._get(t, src, size))
        self.log(f"  {_size(size)} GET, {p.big_get_reps} rounds: " + " / ".join(
            f"{statistics.median(samples['GET'][t]):.0f}" for t in TARGETS) + " MiB/s median (direct / nginx / gateway)")
        for rep in range(p.big_reps):
            # every PUT writes a fresh key (no overwrite: RGW's cost of replacing an object is not
            # the gateway's); RGW's garbage collection runs between rounds, not inside one
            order = targets[rep % len(targets):] + targets[:rep % len(targets)]
            for t in order:
                for m, signed in (("PUT signed", True), ("PUT unsigned", False)):
                    dst = f"/{BUCKET}/big/put-{t}-{rep}-{'s' if signed else 'u'}"
                    samples[m][t].append(await self._put(t, dst, body, signed=signed))
                    await self.delete(dst)
            await self.rgw_gc()
            self.log(f"  {_size(size)} round {rep + 1}: " + "; ".join(
                f"{m} " + " / ".join(f"{samples[m][t][-1]:.0f}" for t in TARGETS) for m in samples if m != "GET")
                + " MiB/s (direct / nginx / gateway)")
        await self.delete(src)
        await self.rgw_gc()
        for m, per in samples.items():
            key = m.replace(" ", "_")
            self.figure(f"big.{key}.mib_per_s", f"{_size(size)} {m}", "MiB/s",
                        {t: statistics.median(v) for t, v in per.items()}, higher_is_better=True,
                        section="big", extra={"samples": per, "statistic": "median"})

    # -- RSS ---------------------------------------------------------------------------------------
    async def rss_after_requests(self) -> None:
        """The gateway's RSS idle, then after N small requests (half GET, half PUT, c=16)."""
        pid = self.gateway.pid
        idle = procstat.rss_kib(pid)
        s = self.signers["gateway"]
        get = self._small_factory("gateway", "GET", s)
        put = self._small_factory("gateway", "PUT", s)
        r = await lg.run_load(s.addr, lambda w, n: (get if n % 2 else put)(w, n), concurrency=16,
                              count=self.plan.rss_requests)
        await asyncio.sleep(0.2)
        after = procstat.status_kib(pid, "VmRSS", "VmHWM")
        n = self.plan.rss_requests
        self.log(f"  gateway RSS idle {idle / 1024:.1f} MiB, after {n:,} requests {after['VmRSS'] / 1024:.1f} MiB"
                 f" ({r.errors} errors)")
        self.figure("rss.idle_mib", "gateway RSS at start (idle)", "MiB", {"gateway": idle / 1024},
                    higher_is_better=False, section="rss")
        self.figure("rss.after_requests_mib", f"gateway RSS after {n:,} requests", "MiB",
                    {"gateway": after["VmRSS"] / 1024}, higher_is_better=False, section="rss",
                    extra={"requests": n, "errors": r.errors, "vmhwm_mib": after["VmHWM"] / 1024})

    async def _sampled(self, pids: list[int], coro) -> tuple[float, int, int, float]:
        """Run ``coro`` while sampling the summed VmRSS of ``pids`` every 20 ms
        → (coro's result, peak KiB, KiB before, CPU seconds of ``pids``)."""
        reset = all([procstat.reset_peak_rss(p) for p in pids])
        before = sum(procstat.rss_kib(p) for p in pids)
        cpu0 = procstat.tree_cpu_seconds(pids)
        peak = before
        task = asyncio.ensure_future(coro)
        while not task.done():
            await asyncio.wait([task], timeout=0.02)
            peak = max(peak, sum(procstat.rss_kib(p) for p in pids))
        cpu = procstat.tree_cpu_seconds(pids) - cpu0
        hwm = sum(procstat.status_kib(p, "VmHWM").get("VmHWM", 0) for p in pids)
        return task.result(), max(peak, hwm) if reset and len(pids) == 1 else peak, before, cpu

    async def huge(self) -> None:
        """A 2 GiB object streamed up and down each way: MiB/s and the front process's peak RSS."""
        size = self.plan.huge_size
        body = lg.RepeatBody(size, seed=3)
        rates: dict[str, dict[str, float]] = {"PUT": {}, "GET": {}}
        peaks: dict[str, dict[str, float]] = {"PUT": {}, "GET": {}}
        befores: dict[str, dict[str, float]] = {"PUT": {}, "GET": {}}
        cpus: dict[str, dict[str, float]] = {"PUT": {}, "GET": {}}
        for t in TARGETS:
            path = f"/{BUCKET}/huge/{t}"
            pids = self.front_pids(t)
            rate, peak, before, cpu = await self._sampled(pids, self._put(t, path, body, signed=False))
            rates["PUT"][t], peaks["PUT"][t], befores["PUT"][t] = rate, peak / 1024, before / 1024
            cpus["PUT"][t] = cpu / (size / GiB)
            rate, peak, before, cpu = await self._sampled(pids, self._get(t, path, size))
            rates["GET"][t], peaks["GET"][t], befores["GET"][t] = rate, peak / 1024, before / 1024
            cpus["GET"][t] = cpu / (size / GiB)
            await self.delete(path)
            await self.rgw_gc()
            self.log(f"  {_size(size)} via {t}: PUT {rates['PUT'][t]:.0f} MiB/s (peak RSS {peaks['PUT'][t]:.0f} MiB),"
                     f" GET {rates['GET'][t]:.0f} MiB/s (peak RSS {peaks['GET'][t]:.0f} MiB)")
        for m in ("PUT", "GET"):
            label = f"{_size(size)} {m}" + (" (UNSIGNED-PAYLOAD)" if m == "PUT" else "")
            self.figure(f"huge.{m}.mib_per_s", label, "MiB/s", rates[m], higher_is_better=True, section="huge")
            self.figure(f"huge.{m}.peak_rss_mib", f"{label} peak RSS of the process in front", "MiB", peaks[m],
                        higher_is_better=False, section="huge",
                        extra={"rss_before_mib": befores[m],
                               "growth_mib": {t: peaks[m][t] - befores[m][t] for t in TARGETS}})
            self.figure(f"huge.{m}.front_cpu_s_per_gib", f"{label} CPU of the process in front", "s/GiB",
                        cpus[m], higher_is_better=False, section="huge")

    # -- --workers 2 -------------------------------------------------------------------------------
    async def workers2(self) -> None:
        await asyncio.to_thread(self.gateway.stop)
        gw2 = GatewayProcess(self.workdir / "gateway-w2", upstream=self.rgw, tls=False, workers=2)
        await asyncio.to_thread(gw2.start)
        self.gateways.append(gw2)
        try:
            await asyncio.sleep(0.5)
            pids = procstat.tree(gw2.pid)
            self.log(f"  gateway --workers 2: pids {pids}")
            signer = lg.SigV4(gw2.endpoint, gw2.access_key, gw2.secret_key, "auto")
            size = _size(self.plan.small_size)
            targets = {"direct": (self.signers["direct"], self.front_pids("direct")), "gateway": (signer, pids)}
            for op in ("GET", "PUT"):
                for c in self.plan.concurrencies:
                    runs = await self.small_runs(op, c, targets)
                    self._small_figures("workers2", f"{size} {op} c={c} --workers 2", f"workers2.{op}.c{c}", runs)
        finally:
            await asyncio.to_thread(gw2.stop)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# --------------------------------------------------------------------------------------------------
# the targets (docs/benchmarks.md)

def check_targets(figs: dict[str, dict], plan: Plan) -> list[dict]:
    out = []

    def add(name: str, target: str, actual: float | None, ok: bool | None, unit: str = "") -> None:
        out.append({"name": name, "target": target, "actual": actual, "unit": unit, "pass": ok})

    for op in ("GET", "PUT"):
        for c in plan.concurrencies:
            f = figs.get(f"small.{op}.c{c}.ops_per_s")
            if f:
                r = f["gateway_ratio"]
                add(f"{_size(plan.small_size)} {op} c={c} ops/s vs direct", "≥ 0.80×", r, r is not None and r >= 0.8, "×")
        for fid, how in ((f"small.{op}.c16.p99_ms", "closed loop, saturated"),
                         (f"paced.{op}.c16.p99_ms", f"paced at {plan.paced_rate:.0f}/s")):
            f = figs.get(fid)
            if f:
                a = f["added_ms"].get("gateway")
                add(f"{_size(plan.small_size)} {op} c=16 p99 added ({how})", "≤ 2 ms", a,
                    a is not None and a <= 2.0, "ms")
    for m in ("GET", "PUT_signed", "PUT_unsigned"):
        f = figs.get(f"big.{m}.mib_per_s")
        if f:
            r = f["gateway_ratio"]
            add(f"{_size(plan.big_size)} {m.replace('_', ' ')} MiB/s vs direct", "≥ 0.90×", r,
                r is not None and r >= 0.9, "×")
    for c in plan.concurrencies:
        f = figs.get(f"small.GET.c{c}.front_cpu_us_per_req")
        if f:
            v = f["gateway"]
            add(f"gateway CPU per verified+re-signed {_size(plan.small_size)} GET (c={c})", "≤ 300 µs", v,
                v is not None and v <= 300, "µs")
    for m in ("PUT", "GET"):
        f = figs.get(f"huge.{m}.peak_rss_mib")
        if f:
            v = f["gateway"]
            add(f"gateway peak RSS streaming {_size(plan.huge_size)} {m}", "≤ 120 MiB", v,
                v is not None and v <= 120, "MiB")
    return out


# --------------------------------------------------------------------------------------------------
# output

def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit in ("ops/s", "µs/req"):
        return f"{v:,.0f}"
    if unit in ("ms", "cores", "s/GiB"):
        return f"{v:.2f}"
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _r(v: float | None) -> str:
    return "" if v is None else f" ({v:.2f}×)"


def render_table(result: dict) -> str:
    meta = result["meta"]
    lines = [f"r2-gateway benchmark  {meta['started']}  mode={'quick' if meta['quick'] else 'full'}  "
             f"host: {meta['cpus']} CPUs, {meta['machine']}",
             f"load average (1/5/15 min): before {meta['loadavg_before']}, after {meta['loadavg_after']}",
             *(["pinned (--pin): RGW and the load generator on CPU 0, nginx and the gateway on CPU 1"]
               if meta.get("pinned") else []),
             ""]
    lines.append("load generator ceiling (nginx static 1 KiB file, signed requests):")
    for c in result["loadgen_ceiling"]:
        lines.append(f"  c={c['concurrency']:<3} {c['ops_per_s']:>9,.0f} ops/s  p50 {c['p50_ms']:.2f} ms  "
                     f"p99 {c['p99_ms']:.2f} ms  load generator {c['loadgen_cpu_us_per_req']:.0f} µs CPU/req")
    lines.append("")
    w = max((len(f["label"]) for f in result["figures"]), default=10) + 2
    head = f"{'figure':<{w}}{'unit':<8}{'direct':>12}{'nginx (×direct)':>24}{'gateway (×direct)':>24}{'gw ×nginx':>11}"
    sections = {"small": "small objects, closed loop (one gateway worker)",
                "paced": "latency below saturation (open loop: the three paths at once, each at the same fixed rate)",
                "big": "big objects (median of rounds)",
                "huge": "streaming a huge object (UNSIGNED-PAYLOAD PUT, then GET)", "rss": "gateway memory",
                "workers2": "small objects, gateway --workers 2 (direct re-measured alongside)"}
    current = None
    order = list(sections)
    for f in sorted(result["figures"], key=lambda f: order.index(f["section"]) if f["section"] in order else 99):
        if f["section"] != current:
            current = f["section"]
            lines += ["", sections.get(current, current), head, "-" * len(head)]
        u = f["unit"]
        extra = ""
        if "added_ms" in f and f["added_ms"].get("gateway") is not None:
            extra = f"   gateway adds {f['added_ms']['gateway']:+.2f} ms"
        lines.append(f"{f['label']:<{w}}{u:<8}{_fmt(f['direct'], u):>12}"
                     f"{_fmt(f['nginx'], u) + _r(f['nginx_ratio']):>24}"
                     f"{_fmt(f['gateway'], u) + _r(f['gateway_ratio']):>24}"
                     f"{'' if f['gateway_vs_nginx'] is None else format(f['gateway_vs_nginx'], '.2f') + '×':>11}{extra}")
    lines += ["", "targets" + ("  [--quick: sizes and durations too small to judge]" if meta["quick"] else "")]
    for t in result["targets"]:
        a = t["actual"]
        a = "—" if a is None else (f"{a:.2f}" if t["unit"] in ("×", "ms") else f"{a:.0f}")
        lines.append(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {a}{t['unit'] if t['unit'] != '×' else '×'}"
                     f" (target {t['target']})")
    lines.append(f"\nwall time {result['meta']['wall_seconds']:.1f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------

SECTIONS = ("ceiling", "rss", "small", "paced", "big", "huge", "workers2")


async def _bench(b: Bench, sections: set[str]) -> None:
    log = b.log
    if "ceiling" in sections:
        log("loadgen ceiling …")
        await b.loadgen_ceiling()
    log("setup …")
    await b.setup()
    if "rss" in sections:
        log("gateway RSS after requests …")
        await b.rss_after_requests()
    if "small" in sections:
        log("small objects …")
        await b.small()
    if "paced" in sections:
        log("latency below saturation …")
        await b.paced()
    if "big" in sections:
        log(f"{_size(b.plan.big_size)} objects …")
        await b.big()
    if "huge" in sections:
        log(f"{_size(b.plan.huge_size)} object streamed each way …")
        await b.huge()
    if "workers2" in sections and b.plan.workers2:
        log("gateway --workers 2 …")
        await b.workers2()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and durations (CI: < 60 s)")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--workdir", type=Path, help="scratch directory (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    ap.add_argument("--duration", type=float, help="measured seconds per small-object run")
    ap.add_argument("--rounds", type=int, help="interleaved slices per small-object figure")
    ap.add_argument("--big-reps", type=int, help="rounds of the big PUTs")
    ap.add_argument("--big-get-reps", type=int, help="rounds of the big GET")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-huge", action="store_true")
    ap.add_argument("--skip-workers2", action="store_true")
    ap.add_argument("--pin", action="store_true",
                    help="RGW and the load generator on CPU 0, nginx and the gateway on CPU 1: the shape where "
                         "the proxy has a core of its own (a sidecar's CPU request); not the figures of record "
                         "(skips workers2)")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    for name in ("big", "huge", "workers2"):
        if getattr(args, f"skip_{name}"):
            sections.discard(name)
    if args.pin:
        sections.discard("workers2")   # its gateways start later, unpinned
    if args.duration:
        plan = replace(plan, duration=args.duration)
    if args.rounds:
        plan = replace(plan, rounds=args.rounds)
    if args.big_reps:
        plan = replace(plan, big_reps=args.big_reps)
    if args.big_get_reps:
        plan = replace(plan, big_get_reps=args.big_get_reps)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="r2gw-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick,
            "plan": asdict(plan), "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "loadavg_before": procstat.loadavg()}
    rgw = CephRGW(workdir / "rgw", memstore_bytes=plan.memstore_bytes, extra_conf=RGW_CONF)
    nginx = gateway = None
    b = None
    try:
        log(f"starting Ceph RGW, nginx and the gateway in {workdir} …")
        rgw.start()
        nginx = NginxProxy(workdir / "nginx", rgw.endpoint).start()
        gateway = GatewayProcess(workdir / "gateway", upstream=rgw, tls=False).start()
        meta["endpoints"] = {"direct": rgw.endpoint, "nginx": nginx.endpoint, "gateway": gateway.endpoint}
        if args.pin:
            meta["pinned"] = procstat.pin_apart(rgw.live_pids(), procstat.tree(nginx.pid) + procstat.tree(gateway.pid))
            log(f"pinned: RGW and the load generator on CPU 0, nginx and the gateway on CPU 1 {meta['pinned']}")
        b = Bench(plan, rgw, nginx, gateway, workdir, log)
        import uvloop
        uvloop.run(_bench(b, sections))
    finally:
        if gateway is not None:
            gateway.stop()
        if nginx is not None:
            nginx.stop()
        rgw.stop()
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    meta["loadavg_after"] = procstat.loadavg()
    meta["wall_seconds"] = time.monotonic() - t0
    figs = {f["id"]: f for f in b.figures}
    result = {"meta": meta, "loadgen_ceiling": b.ceiling, "figures": b.figures,
              "targets": check_targets(figs, plan)}
    print(render_table(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        log(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
