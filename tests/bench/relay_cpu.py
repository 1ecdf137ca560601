"""What the kernel relay of big GET bodies costs, in user and system CPU, without RGW or a gateway.

    .venv/bin/python -m tests.bench.relay_cpu [--mib 256] [--runs 6]

A sender process writes ``--mib`` MiB into one loopback TCP connection, a receiver process reads
another to its end, and this process moves the bytes between the two with
``gateway.upstream.splice.relay`` (as the gateway does for a big GET). Prints, per run and as
means, MiB/s, the relay's user and system CPU seconds per GiB (its own rusage) and how often it
waited on the event loop. User time near zero says the relay's Python is not where its cost is:
the rest is the kernel's work for one more TCP hop.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import socket
import statistics
import time

from gateway.upstream import splice


def _sender(port: int, size: int) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    buf = b"x" * (1 << 20)
    left = size
    while left:
        left -= s.send(buf[:min(left, len(buf))])
    time.sleep(0.5)
    s.close()


def _receiver(port: int, size: int) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    got = 0
    while got < size:
        d = s.recv(1 << 20)
        if not d:
            break
        got += len(d)
    s.close()


async def one(size: int) -> dict:
    loop = asyncio.get_running_loop()
    ls_src, ls_dst = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    ctx = mp.get_context("fork")
    recv = ctx.Process(target=_receiver, args=(ls_dst.getsockname()[1], size))
    send = ctx.Process(target=_sender, args=(ls_src.getsockname()[1], size))
    recv.start()
    dst, _ = ls_dst.accept()
    send.start()
    src, _ = ls_src.accept()
    src.setblocking(False)
    dst.setblocking(False)
    waits = 0
    real_wait = splice._wait

    async def counted(*a):
        nonlocal waits
        waits += 1
        await real_wait(*a)

    splice._wait = counted
    try:
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        moved = await splice.relay(loop, src, dst, size, 30.0)
        t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    finally:
        splice._wait = real_wait
        for s in (src, dst, ls_src, ls_dst):
            s.close()
        send.join()
        recv.join()
    gib = moved / (1 << 30)
    return {"moved": moved, "mib_s": moved / (1 << 20) / (t1 - t0), "user_s_gib": (r1.ru_utime - r0.ru_utime) / gib,
            "sys_s_gib": (r1.ru_stime - r0.ru_stime) / gib, "waits": waits}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=6)
    args = ap.parse_args(argv)
    if not splice.AVAILABLE:
        print("splice is not available here (Linux only)")
        return 1
    rows = []
    for i in range(args.runs):
        r = asyncio.run(one(args.mib << 20))
        rows.append(r)
        print(f"run {i + 1}: {r['mib_s']:6.0f} MiB/s  user {r['user_s_gib']:.3f}  sys {r['sys_s_gib']:.3f} "
              f"CPU s/GiB  {r['waits']} waits")
    mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0] if k != "moved"}
    print(f"mean:  {mean['mib_s']:6.0f} MiB/s  user {mean['user_s_gib']:.3f}  sys {mean['sys_s_gib']:.3f} "
          f"CPU s/GiB  {mean['waits']:.0f} waits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
