"""Run ``r2-gateway`` in this process under a CPU-time sampling profiler (SIGPROF).

    python -m tests.bench.cpuprof --out STACKS.txt [--interval-ms 1] serve [gateway args…]

Why not only py-spy: py-spy samples wall-clock time of threads that are not idle, and on a
2-core machine shared with RGW and the load generator the gateway is often *runnable but not
running* — typically right after a socket write woke the peer that then took the CPU. py-spy
charges that waiting time to the write. ``ITIMER_PROF`` ticks only while the process is on a CPU
(user + system time), so these samples are proportional to the CPU the gateway actually burns.

Output: collapsed stacks (``frame;frame;… count`` per line, root first), the format py-spy's
``--format raw`` and flamegraph tools use; ``tests.bench.profile_gateway.summarize`` reads it.
"""
from __future__ import annotations

import argparse
import signal
import sys
from collections import Counter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.cpuprof")
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval-ms", type=float, default=1.0)
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of r2-gateway (serve …)")
    args = ap.parse_args(argv)
    stacks: Counter[str] = Counter()
    cache: dict[object, str] = {}

    def label(code) -> str:
        s = cache.get(code)
        if s is None:
            s = cache[code] = f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"
        return s

    def on_prof(_sig, frame) -> None:
        # ``frame`` is the frame the main thread was running when the CPU-time tick came
        names = []
        f = frame
        while f is not None:
            names.append(label(f.f_code))
            f = f.f_back
        names.reverse()
        stacks[";".join(names) if names else "(none)"] += 1

    signal.signal(signal.SIGPROF, on_prof)
    interval = args.interval_ms / 1000
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    from gateway.cli import main as gateway_main
    try:
        return gateway_main(args.rest)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        with open(args.out, "w") as f:
            for stack, n in stacks.most_common():
                f.write(f"{stack} {n}\n")


if __name__ == "__main__":
    sys.exit(main())
