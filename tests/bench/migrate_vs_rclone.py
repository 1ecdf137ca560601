"""Bulk copy throughput: ``r2-gateway migrate`` against ``rclone copy`` (Debian's rclone), between the
same two stores on the same data, in one run.

    .venv/bin/python -m tests.bench.migrate_vs_rclone [--rounds 4] [--large 24x96] [--multipart 4x512]
                                                      [--small 2000x16] [--concurrency 16] [--json PATH]

Starts one Ceph RGW (memstore) with two users: the source is user A's bucket, the destination a
fresh bucket of user B per run (emptied and garbage-collected afterwards), so both tools stream every
byte out of one store and into another. Data sets (each filled with one PUT per object, so their
ETags are MD5s; a set's source is deleted once it has been measured):

- ``fixed``: one 1 KiB object, what a whole command costs around its copy (start, listing, exit);
- ``--large``: COUNT x MiB below both tools' 200 MiB multipart cutoff (one streamed PUT per object),
  2.25 GiB by default so that each command runs for seconds, as a bulk copy does (``8x96`` measures
  mostly the fixed cost);
- ``--multipart``: COUNT x MiB above it (both tools upload parts in parallel);
- ``--small``: COUNT x KiB.

Each round runs every tool once, the rounds' orders mirrored about the middle (ABBA, each pair
starting one tool further on), so that no tool keeps the store's first or last place:

- ``migrate``: ``r2-gateway migrate --from a/SRC --to b/DST --concurrency C`` (its defaults otherwise:
  200 MiB multipart threshold, 16 MiB parts, 8 part buffers);
- ``migrate@4``: the same at ``--concurrency 4``, rclone's default number of transfers;
- ``rclone``: ``rclone copy a:SRC b:DST --transfers C --checkers C`` with its part settings set to
  migrate's (``--s3-upload-cutoff 200M --s3-chunk-size 16M``, and its ``--s3-upload-concurrency 4``);
- ``rclone-defaults``: ``rclone copy`` as shipped (4 transfers, 8 checkers, 200 MiB cutoff).

``TOOL@N`` in ``--tools`` runs a tool at concurrency N instead (``migrate@4``: ``--concurrency 4``;
``rclone@4``: ``--transfers 4 --checkers 4``). Before the first round of each data set a round of
every tool, not counted, warms the store: its first gibibytes of writes after the fill are slower,
whoever makes them (measured: the two runs after a single warm-up run still 0.75–0.8× the later
ones).

The gateway's bytecode is compiled first, as ``pip install`` (and so the image) does: an editable
checkout under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile every module at each start.

MiB/s is the data set's bytes over the wall time of the whole command (start to exit: listing both
sides, copying, checking), over each tool's median seconds; the ``fixed`` set reports seconds
instead, and "net" MiB/s is the bytes over the median seconds less the tool's median ``fixed``
seconds (what a bigger data set would approach; not given where a set takes under twice that).
CPU is the tool's user+system seconds (wait4). The ratios reported are the faster migrate
configuration's over the faster rclone configuration's, whole and net.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import procstat
from ..upstreams.fixtures import s3_client
from ..upstreams.rgw import CephRGW

MiB = 1024 * 1024
RGW_CONF = {"client.rgw.gw": {"rgw_gc_obj_min_wait": "0", "rgw_gc_processor_period": "30"}}


def _count_size(text: str) -> tuple[int, int]:
    count, _, size = text.partition("x")
    return int(count), int(size)


class Bench:
    def __init__(self, work: Path, concurrency: int, log, migrate_args: list[str] | None = None) -> None:
        self.work, self.concurrency, self.log = work, concurrency, log
        self.migrate_args = migrate_args or []
        self.rgw = CephRGW(work / "rgw", memstore_bytes=6 * 1024**3, extra_conf=RGW_CONF)

    def start(self) -> None:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[2] / "gateway")],
                       check=True)
        self.rgw.start()
        r = self.rgw
        self.bkey = r.create_user("bench-b")
        self.a = s3_client(r.endpoint, r.access_key, r.secret_key)
        self.b = s3_client(r.endpoint, *self.bkey)
        self.config = self.work / "migrate.yaml"
        self.config.write_text(json.dumps({
            "upstream": {"endpoint": r.endpoint, "access_key_id": r.access_key, "secret_access_key": r.secret_key},
            "upstreams": {"b": {"endpoint": r.endpoint, "access_key_id": self.bkey[0],
                                "secret_access_key": self.bkey[1], "internal_bucket": "r2gw-internal-b"}}}))
        self.rclone_conf = self.work / "rclone.conf"
        self.rclone_conf.write_text("".join(
            f"[{name}]\ntype = s3\nprovider = Ceph\nendpoint = {r.endpoint}\nregion = us-east-1\n"
            f"access_key_id = {ak}\nsecret_access_key = {sk}\nforce_path_style = true\n\n"
            for name, ak, sk in (("a", r.access_key, r.secret_key), ("b", *self.bkey))))

    def stop(self) -> None:
        self.rgw.stop()

    def fill(self, bucket: str, count: int, size: int) -> int:
        self.a.create_bucket(Bucket=bucket)

        def put(i: int) -> None:
            self.a.put_object(Bucket=bucket, Key=f"obj/{i:06d}", Body=os.urandom(size))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(count)))
        return count * size

    def empty(self, bucket: str, client=None) -> None:
        c = client or self.b
        keys = [o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in p.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                    "Quiet": True})
        for up in c.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            c.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
        c.delete_bucket(Bucket=bucket)
        self.rgw.admin("gc", "process", "--include-all", timeout=300)

    def command(self, tool: str, src: str, dst: str) -> list[str]:
        tool, _, at = check_tool(tool).partition("@")
        c = at or str(self.concurrency)
        if tool == "migrate":
            return [sys.executable, "-m", "gateway", "migrate", "--config", str(self.config), "--from",
                    f"default/{src}", "--to", f"b/{dst}", "--concurrency", c, "--progress", "none", *self.migrate_args]
        base = ["rclone", "--config", str(self.rclone_conf), "copy", f"a:{src}", f"b:{dst}", "-q",
                "--retries", "1", "--s3-no-check-bucket"]
        if tool == "rclone":
            return base + ["--transfers", c, "--checkers", c, "--s3-upload-cutoff", "200M",
                           "--s3-chunk-size", "16M", "--s3-upload-concurrency", "4"]
        return base

    def run_once(self, tool: str, src: str, count: int, nbytes: int, n: int) -> dict:
        dst = f"dst-{tool.replace('@', '-c')}-{n}"
        self.b.create_bucket(Bucket=dst)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("R2GW_", "RCLONE_", "AWS_"))}
        t0 = time.perf_counter()
        errors = tempfile.TemporaryFile()     # a file, not a pipe: a chatty tool never blocks on it
        proc = subprocess.Popen(self.command(tool, src, dst), stdout=subprocess.DEVNULL, stderr=errors, env=env)
        peak = 0
        while True:     # wait4 (the tool's own CPU), sampling its peak RSS until it exits
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, procstat.status_kib(proc.pid, "VmHWM").get("VmHWM", 0))
            time.sleep(0.01)
        secs = time.perf_counter() - t0
        code = proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode(errors="replace")
        errors.close()
        got = sum(p.get("KeyCount", 0) for p in self.b.get_paginator("list_objects_v2").paginate(Bucket=dst))
        if code != 0 or got != count:
            raise RuntimeError(f"{tool}: exit {code}, {got}/{count} objects copied\n{err[-3000:]}")
        self.empty(dst)
        cpu = usage.ru_utime + usage.ru_stime
        return {"tool": tool, "seconds": round(secs, 3), "mib_per_s": round(nbytes / secs / MiB, 1),
                "objects_per_s": round(count / secs, 1), "cpu_seconds": round(cpu, 2),
                "cpu_s_per_gib": round(cpu / (nbytes / 1024**3), 2) if nbytes else None,
                "peak_rss_mib": round(peak / 1024, 1)}


def check_tool(tool: str) -> str:
    base, at, n = tool.partition("@")
    if base not in ("migrate", "rclone", "rclone-defaults") or (at and (base == "rclone-defaults" or not n.isdigit())):
        raise SystemExit(f"unknown tool {tool!r}: migrate[@N], rclone[@N] or rclone-defaults")
    return tool


def order(tools: list[str], rnd: int, rounds: int) -> list[str]:
    """Round ``rnd``'s order, mirrored about the middle (ABBA): round ``rounds - 1 - i`` runs round
    ``i``'s order reversed, and round ``i`` starts ``i`` tools further on. Each tool's places then
    have the same mean and, in the middle pair of rounds, the same median."""
    i = rnd if rnd < rounds // 2 else rounds - 1 - rnd
    k = i % len(tools)
    first = tools[k:] + tools[:k]
    return first if rnd < rounds // 2 else first[::-1]


def summarize(name: str, rows: list[dict], tools: list[str], count: int, nbytes: int,
              fixed: dict | None) -> dict:
    """Medians per tool, and the faster migrate configuration over the faster rclone one: on MiB/s
    of the whole command, and on MiB/s net of each tool's fixed cost (``fixed``: its median seconds
    for the one-object set of the same run)."""
    def median(field: str) -> dict:
        return {t: statistics.median(r[field] for r in rows if r["tool"] == t) for t in tools}
    cpu, secs = median("cpu_seconds"), median("seconds")
    med = {t: round(nbytes / MiB / secs[t], 1) for t in tools}     # MiB/s over the median seconds
    out = {"objects": count, "bytes": nbytes, "runs": rows, "median_mib_per_s": med,
           "median_cpu_seconds": cpu, "median_seconds": secs}
    if name == "fixed":
        out["line"] = "fixed: median seconds " + ", ".join(f"{t} {v:.2f}" for t, v in secs.items())
        return out
    line = f"{name}: median MiB/s " + ", ".join(f"{t} {v:.1f}" for t, v in med.items())
    net = {t: nbytes / MiB / (secs[t] - fixed[t]) for t in tools} \
        if fixed and all(secs[t] > 2 * fixed[t] for t in tools) else None   # else it would say nothing
    for key, per_tool in (("", med), ("net_", net)):
        if per_tool is None:
            continue
        mig = max((t for t in tools if t.startswith("migrate")), key=lambda t: per_tool[t], default=None)
        rcl = max((t for t in tools if t.startswith("rclone")), key=lambda t: per_tool[t], default=None)
        ratio = round(per_tool[mig] / per_tool[rcl], 2) if mig and rcl and per_tool[rcl] else None
        out.update({f"{key}migrate": mig, f"{key}baseline": rcl, f"{key}ratio": ratio})
        if key:
            out["net_mib_per_s"] = {t: round(v, 1) for t, v in per_tool.items()}
        if ratio:
            line += f"; {key.rstrip('_') or 'whole command'}: {mig} / {rcl} = {ratio:.2f}x"
    out["line"] = line
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.migrate_vs_rclone", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="an even number (rounds go in pairs)")
    ap.add_argument("--large", default="24x96", help="COUNTxMiB, below the multipart cutoff (0x0: skip)")
    ap.add_argument("--multipart", default="4x512", help="COUNTxMiB, above the multipart cutoff (0x0: skip)")
    ap.add_argument("--small", default="2000x16", help="COUNTxKiB")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--tools", default="migrate,migrate@4,rclone,rclone-defaults")
    ap.add_argument("--migrate-args", default="", help="more arguments for migrate (space-separated)")
    ap.add_argument("--json", help="write the results here as well")
    args = ap.parse_args(argv)
    if args.rounds < 2 or args.rounds % 2:
        ap.error("--rounds: an even number, at least 2")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
    tools = [check_tool(t) for t in args.tools.split(",")]
    results: dict = {"concurrency": args.concurrency, "rounds": args.rounds, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        bench = Bench(Path(tmp), args.concurrency, log, args.migrate_args.split())
        bench.start()
        try:
            runs = 0
            for name, spec, unit in (("fixed", "1x1", 1024), ("large", args.large, MiB),
                                     ("multipart", args.multipart, MiB), ("small", args.small, 1024)):
                count, size = _count_size(spec)
                if not count:
                    continue
                src = f"src-{name}"
                nbytes = bench.fill(src, count, size * unit)
                log(f"{name}: {count} x {size} {'MiB' if unit == MiB else 'KiB'} = {nbytes / MiB:.0f} MiB")
                rows = []
                for tool in tools:
                    runs += 1
                    warm = bench.run_once(tool, src, count, nbytes, runs)
                    log(f"  warm-up {tool:<18} {warm['mib_per_s']:8.1f} MiB/s (not counted)")
                for rnd in range(args.rounds):
                    for tool in order(tools, rnd, args.rounds):
                        runs += 1
                        row = bench.run_once(tool, src, count, nbytes, runs)
                        row["round"] = rnd + 1
                        rows.append(row)
                        log(f"  round {rnd + 1} {tool:<18} {row['mib_per_s']:8.1f} MiB/s {row['objects_per_s']:8.1f} obj/s"
                            f"  {row['seconds']:6.2f} s  CPU {row['cpu_seconds']:6.2f} s  RSS {row['peak_rss_mib']:.0f} MiB")
                fixed = results["sets"].get("fixed", {}).get("median_seconds")
                results["sets"][name] = summary = summarize(name, rows, tools, count, nbytes, fixed)
                log(summary["line"])
                bench.empty(src, bench.a)
        finally:
            bench.stop()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
