"""Progress people can read: on a terminal a live bar (rich: objects, bytes, rate, ETA, failures);
otherwise one JSON line every few seconds on standard error (``{"event": "progress", ...}``), and
each failure as its own JSON line when it happens."""
from __future__ import annotations

import asyncio
import sys
from typing import IO

import orjson

from .report import Tally


class JsonProgress:
    def __init__(self, tally: Tally, interval: float, stream: IO[str] | None = None) -> None:
        self.tally, self.interval = tally, interval
        self.stream = stream or sys.stderr
        self._task: asyncio.Task | None = None

    def _line(self, obj: dict) -> None:
        self.stream.write(orjson.dumps(obj).decode() + "\n")
        self.stream.flush()

    def on_result(self, result: str, line: dict) -> None:
        if result == "failed":
            self._line({"event": "failed", "key": line["key"], "reason": line["reason"]})

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._line({"event": "progress", **self.tally.snapshot()})

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._line({"event": "progress", **self.tally.snapshot()})


class BarProgress:
    """rich's Progress on standard error: one bar over the bytes to copy, the objects in its text."""

    def __init__(self, tally: Tally, title: str) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        self.tally = tally
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                                 TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[objects]}"),
                                 console=self.console, transient=False, refresh_per_second=5)
        self.task = self.progress.add_task(title, total=None, objects="")
        self._tick_task: asyncio.Task | None = None

    def on_result(self, result: str, line: dict) -> None:
        if result == "failed":
            self.console.print(f"[red]failed[/red] {line['key']!r}: {line['reason']}", markup=True,
                               highlight=False)

    def _refresh(self) -> None:
        t = self.tally
        total = t.planned_bytes if t.listing_done else None
        objects = (f"{t.done}/{t.listed if t.listing_done else str(t.listed) + '+'} objects · "
                   f"{t.copied} copied · {t.skipped} skipped · "
                   + (f"[red]{t.failed} failed[/red]" if t.failed else "0 failed"))
        self.progress.update(self.task, completed=min(t.moving, t.planned_bytes) if total else t.moving,
                             total=total, objects=objects)

    async def _tick(self) -> None:
        while True:
            self._refresh()
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self.progress.start()
        self._tick_task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        self._refresh()
        self.progress.stop()


class NoProgress:
    def on_result(self, result: str, line: dict) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def make(mode: str, tally: Tally, title: str, interval: float):
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "json"
    if mode == "bar":
        return BarProgress(tally, title)
    if mode == "json":
        return JsonProgress(tally, interval)
    return NoProgress()
