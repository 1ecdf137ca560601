"""A bulk migration run: the listing (or the keys file) feeds a bounded queue, ``concurrency``
workers copy, delete or look up, every result goes to the :class:`~.report.Recorder`.

Restarting a run is resuming it: what a previous run finished is equal on both sides and skipped
(:mod:`.plan`); what it left half done was never stored (a cut PUT stores nothing, an unfinished
multipart upload is aborted — or, after SIGKILL, left to the bucket's lifecycle rule). Cancelling
the task that runs :meth:`Migration.run` (SIGTERM) aborts the copies in flight and reports them as
``interrupted``.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from ..config import Settings as GatewaySettings
from . import copy, listing
from .plan import COPY, DELETE, NONE, SKIP, Decision, Shard, decide
from .report import Recorder
from .stores import ObjectInfo, Store, StoreError


@dataclass
class Job:
    source: str
    source_bucket: str
    destination: str
    destination_bucket: str
    prefix: str = ""
    keys_from: str | None = None
    concurrency: int = 16
    shard: Shard = field(default_factory=Shard)
    dry_run: bool = False
    delete_extra: bool = False
    part_size: int = 16 * copy.MiB
    threshold: int = 200 * copy.MiB
    part_concurrency: int = 8
    reread: bool = False
    retries: int = 3

    @property
    def source_name(self) -> str:
        return f"{self.source}/{self.source_bucket}"

    @property
    def destination_name(self) -> str:
        return f"{self.destination}/{self.destination_bucket}"


class MigrationError(Exception):
    """The run cannot go on (a bucket that does not exist, a store that refuses the keys, …)."""


@dataclass(slots=True)
class _Item:
    key: str
    src: ObjectInfo | None
    dst: ObjectInfo | None
    decision: Decision | None      # None: look both sides up first (keys file, or the source changed)


class Migration:
    def __init__(self, settings: GatewaySettings, job: Job, recorder: Recorder) -> None:
        self.job = job
        self.recorder = recorder
        self.tally = recorder.tally
        self.src = Store.from_settings(settings, job.source)
        self.dst = Store.from_settings(settings, job.destination)

    async def run(self) -> None:
        job = self.job
        await self.src.start()
        await self.dst.start()
        try:
            cfg = copy.Settings(part_size=job.part_size, threshold=job.threshold, reread=job.reread,
                                budget=copy.ByteBudget(job.part_concurrency * job.part_size))
            self.copier = copy.Copier(self.src, job.source_bucket, self.dst, job.destination_bucket, cfg)
            queue: asyncio.Queue = asyncio.Queue(maxsize=job.concurrency * 2)
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(job.concurrency)]
            try:
                if job.keys_from:
                    await self._from_keys(queue)
                else:
                    await self._from_listings(queue)
                self.tally.listing_done = True
                for _ in workers:
                    await queue.put(None)
                await asyncio.gather(*workers)
            except BaseException:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
        finally:
            await copy.Copier.settle(copy.CREATE_GRACE)
            await self.src.close()
            await self.dst.close()

    # -- producers ------------------------------------------------------------------------------
    async def _from_listings(self, queue: asyncio.Queue) -> None:
        job, tally, record = self.job, self.tally, self.recorder.record
        src = listing.prefetched(self._pager(self.src, job.source_bucket), job.source_name)
        dst = listing.prefetched(self._pager(self.dst, job.destination_bucket), job.destination_name)
        async for key, s, d in listing.merged(src, dst):
            if key not in job.shard:
                continue
            if s is not None:
                tally.listed += 1
            decision = decide(s, d, job.delete_extra)
            if decision.action == NONE:
                continue
            if decision.action == SKIP:
                record(key, "skipped", decision.reason, size=s.size, etag=s.etag)
                continue
            self._planned(decision, s)
            if job.dry_run:
                record(key, "would-copy" if decision.action == COPY else "would-delete", decision.reason,
                       size=s.size if s else d.size)
                continue
            await queue.put(_Item(key, s, d, decision))

    async def _from_keys(self, queue: asyncio.Queue) -> None:
        for key in listing.keys_file(self.job.keys_from):
            if key in self.job.shard:
                self.tally.listed += 1
                await queue.put(_Item(key, None, None, None))

    def _pager(self, store: Store, bucket: str):
        async def page(token):
            return await self._retrying(lambda: store.list_page(bucket, self.job.prefix, token),
                                        f"listing {store.name}/{bucket}")
        return page

    async def _retrying(self, call, what: str):
        for attempt in range(self.job.retries + 1):
            try:
                return await call()
            except StoreError as e:
                if not e.transient or attempt == self.job.retries:
                    raise MigrationError(f"{what}: {e}") from None
                await _backoff(attempt)

    def _planned(self, decision: Decision, src: ObjectInfo | None) -> None:
        self.tally.planned += 1
        if decision.action == COPY:
            self.tally.planned_bytes += src.size

    # -- workers --------------------------------------------------------------------------------
    async def _worker(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            self.tally.in_flight += 1
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                self.recorder.record(item.key, "interrupted", "stopped before the copy finished")
                raise
            finally:
                self.tally.in_flight -= 1

    async def _handle(self, item: _Item) -> None:
        job, record, tally = self.job, self.recorder.record, self.tally
        started = time.monotonic()
        for attempt in range(1, job.retries + 2):
            moved = [0]

            def on_bytes(n: int) -> None:
                moved[0] += n
                tally.moving += n
            try:
                if item.decision is None:
                    if not await self._look_up(item):
                        return
                if item.decision.action == DELETE:
                    await self.dst.delete(job.destination_bucket, item.key)
                    record(item.key, "deleted", item.decision.reason, attempts=attempt)
                    return
                out = await self.copier.copy(item.src, item.decision.replace_etag, on_bytes)
                record(item.key, out.result, out.reason if out.result == "skipped" else item.decision.reason,
                       size=out.size if out.result == "copied" else item.src.size, etag=out.etag,
                       verified=out.verified, crc32=out.crc32, attempts=attempt,
                       seconds=round(time.monotonic() - started, 3))
                return
            except copy.SourceChanged:
                tally.moving -= moved[0]
                item.decision = None        # look again: copy the version there is now
                if attempt > job.retries:
                    record(item.key, "failed", "the source object kept changing during the copy", attempts=attempt)
                    return
            except StoreError as e:
                tally.moving -= moved[0]
                if not e.transient or attempt > job.retries:
                    record(item.key, "failed", str(e), attempts=attempt)
                    return
                await _backoff(attempt)
            except copy.CopyError as e:
                tally.moving -= moved[0]
                record(item.key, "failed", str(e), attempts=attempt)
                return

    async def _look_up(self, item: _Item) -> bool:
        """HEAD both sides and decide; False when the item is settled without a copy."""
        job = self.job
        src, dst = await asyncio.gather(self.src.head(job.source_bucket, item.key),
                                        self.dst.head(job.destination_bucket, item.key))
        first = item.src is None and item.dst is None
        item.src, item.dst = (src[0] if src else None), (dst[0] if dst else None)
        if item.src is None:
            self.recorder.record(item.key, "failed", "not in the source (NoSuchKey)")
            return False
        item.decision = decide(item.src, item.dst, False)
        if item.decision.action == SKIP:
            self.recorder.record(item.key, "skipped", item.decision.reason, size=item.src.size, etag=item.src.etag)
            return False
        if first:
            self._planned(item.decision, item.src)
        if job.dry_run:
            self.recorder.record(item.key, "would-copy", item.decision.reason, size=item.src.size)
            return False
        return True


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(min(10.0, 0.25 * 2 ** attempt) * (0.5 + random.random()))
