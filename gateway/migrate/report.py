"""The run's counts, the per-object report (JSON lines, one per key the run decided about, flushed as
it goes so a killed run keeps what it did) and the summary (one JSON object: the last line on stdout).

Report line fields: ``key``, ``result`` (``copied`` · ``skipped`` · ``failed`` · ``deleted`` ·
``would-copy`` · ``would-delete`` · ``interrupted``), ``reason``, and for copies ``size``, ``etag``
(the destination's), ``verified`` (see :mod:`.verify`), ``crc32`` (of the bytes copied),
``attempts``, ``seconds``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO, Callable

import orjson

RESULTS = ("copied", "skipped", "failed", "deleted", "would-copy", "would-delete", "interrupted")


@dataclass
class Tally:
    listed: int = 0            # keys of the shard seen in the source
    copied: int = 0
    skipped: int = 0
    equal: int = 0
    newer: int = 0
    failed: int = 0
    deleted: int = 0
    would_copy: int = 0
    would_delete: int = 0
    interrupted: int = 0
    bytes: int = 0             # sizes of the objects copied
    planned: int = 0           # objects to copy (or delete) found so far
    planned_bytes: int = 0
    moving: int = 0            # bytes read from sources so far, in flight included
    in_flight: int = 0
    listing_done: bool = False
    started: float = field(default_factory=time.monotonic)
    failures: list[tuple[str, str]] = field(default_factory=list)   # the first few, for the summary

    @property
    def done(self) -> int:
        return (self.copied + self.skipped + self.failed + self.deleted + self.would_copy
                + self.would_delete + self.interrupted)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def snapshot(self) -> dict:
        rate = self.moving / self.elapsed
        left = self.planned_bytes - self.bytes
        eta = round(left / rate, 1) if self.listing_done and rate > 0 and left > 0 else None
        return {"listed": self.listed, "done": self.done, "copied": self.copied, "skipped": self.skipped,
                "failed": self.failed, "deleted": self.deleted, "in_flight": self.in_flight,
                "bytes": self.bytes, "bytes_to_copy": self.planned_bytes, "mib_per_s": round(rate / 2**20, 2),
                "eta_seconds": eta, "listing_done": self.listing_done, "seconds": round(self.elapsed, 1)}


class Recorder:
    """Where every result goes: the tally, the report file, and listeners (progress, metrics)."""

    def __init__(self, report: IO[bytes] | None = None) -> None:
        self.tally = Tally()
        self._report = report
        self.listeners: list[Callable[[str, dict], None]] = []

    def record(self, key: str, result: str, reason: str = "", **fields) -> None:
        t = self.tally
        assert result in RESULTS, result
        setattr(t, result.replace("-", "_"), getattr(t, result.replace("-", "_")) + 1)
        if result == "skipped":
            if reason == "equal":
                t.equal += 1
            elif reason == "destination newer":
                t.newer += 1
        elif result == "copied":
            t.bytes += fields.get("size", 0)
        elif result == "failed" and len(t.failures) < 20:
            t.failures.append((key, reason))
        line = {"key": key, "result": result, "reason": reason, **{k: v for k, v in fields.items() if v != ""}}
        if self._report is not None:
            self._report.write(orjson.dumps(line) + b"\n")
            self._report.flush()
        for listener in self.listeners:
            listener(result, line)

    def summary(self, **extra) -> dict:
        t = self.tally
        out = {"copied": t.copied, "skipped": t.skipped, "failed": t.failed, "bytes": t.bytes,
               "deleted": t.deleted, "equal": t.equal, "newer": t.newer, "listed": t.listed,
               "would_copy": t.would_copy, "would_delete": t.would_delete, "interrupted": t.interrupted,
               "seconds": round(t.elapsed, 2), "mib_per_s": round(t.bytes / t.elapsed / 2**20, 2)}
        out.update(extra)
        return out


def human_summary(summary: dict, failures: list[tuple[str, str]]) -> str:
    s = summary
    lines = [f"{s['source']} -> {s['destination']}"
             + (f" (prefix {s['prefix']!r})" if s.get("prefix") else "")
             + (f" shard {s['shard']}" if s.get("shard") not in (None, "0/1") else ""),
             f"  copied   {s['copied']:>9}  ({_size(s['bytes'])}, {s['mib_per_s']} MiB/s over {s['seconds']} s)",
             f"  skipped  {s['skipped']:>9}  ({s['equal']} equal, {s['newer']} newer in the destination)",
             f"  failed   {s['failed']:>9}"]
    if s["deleted"]:
        lines.append(f"  deleted  {s['deleted']:>9}")
    if s["would_copy"] or s["would_delete"]:
        lines.append(f"  dry run: would copy {s['would_copy']}, would delete {s['would_delete']}")
    if s["interrupted"] or s.get("stopped"):
        lines.append(f"  interrupted: {s['interrupted']} in flight when stopped; run again to finish")
    for key, reason in failures:
        lines.append(f"  FAILED {key!r}: {reason}")
    if s["failed"] > len(failures):
        lines.append(f"  … {s['failed'] - len(failures)} more failures in the report")
    if s.get("report"):
        lines.append(f"  report: {s['report']}")
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
