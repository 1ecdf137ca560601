"""Migration on read — R2's Sippy, on any store — for buckets whose rule has ``migrate_from``.

GetObject asks the bucket's own store (the destination) first, exactly as for any bucket. On
``NoSuchKey`` it serves the source's object and, in the same pass, writes it into the destination:
the bytes the client is sent are streamed into a create-only PUT (``If-None-Match: *``) carrying
the object's user and system metadata and, when the source's ETag is the content's MD5, a
``Content-MD5`` the destination checks. Once copied, the object is served by the destination.
The client never waits for the destination: what it has not taken yet is held in memory, up to
``inline_buffer_bytes`` for one copy and ``inline_memory_bytes`` for all (gateway/stores/pipe.py);
a copy that would need more is given up (its PUT cut off: nothing stored) and made in the
background instead (``r2gw_migration_handoffs_total{reason="destination_behind"}``).

- Not copied in the same pass, but queued as a background copy (gateway/stores/copy.py, multipart
  for large objects): a Range, conditional, ``partNumber`` or ``response-*`` GET (their answer is
  not the whole object as stored), an object larger than ``inline_max_bytes``, a source answer
  without a length. SSE-C objects and ``versionId`` reads are served (from the source, resp. the
  destination) but never copied.
- A client that hangs up (or a source that breaks) mid-body: the PUT is cut off mid-body, so the
  destination stores nothing, and the copy is queued in the background instead.
- The queue is bounded (``migrate_on_read.queue``: a copy that finds it full is dropped, and the
  next read tries again) and served by ``concurrency`` copies at once; a key whose copy is queued
  or running is not copied twice by one process. At shutdown the copies get what is left of the
  drain's time, then are cancelled (a cancelled copy leaves nothing behind).
- HeadObject falls through to the source and copies nothing. Every other operation acts on the
  destination only (a delete there is undone by the next read while the source still has the key).
- Replicas: several gateways reading one new key all try to write it; the destination accepts the
  first create-only write and refuses the others (counted ``already_present``), and a client's
  own write landing during a copy wins over it — on the stores that check ``If-None-Match: *``
  when the write commits (``quirks.CREATE_ONLY_PUT``, unversioned buckets). Elsewhere the copy
  relies on the destination's NoSuchKey (or a HEAD) just before writing: a write landing during
  the copy's transfer can be overwritten by the source's older object.
"""
from __future__ import annotations

import asyncio
from typing import NamedTuple

from ..config import MigrateOnRead as Settings
from ..errors import S3Error
from ..observability import log
from ..upstream.client import Upstream
from ..upstream.responses import upstream_error
from .copy import CopyError, CopyOptions, Location, content_md5, copy_object, metadata_headers, put_stream
from .pipe import Budget, Pipe

FAILED = "failed"
_PLAIN_QUERY = frozenset({"x-id"})   # what a GET of the whole stored object may carry (presign aside)


class Job(NamedTuple):
    source: Upstream
    src: Location
    dest: Upstream
    dst: Location
    bucket: str                 # the client's bucket: the metrics label

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dest.name, self.dst.bucket, self.dst.key


class MigrateOnRead:
    """The copies made on read: the ones running inside a GET's own pass (``inline``) and the
    bounded queue of background ones, counted in the metrics."""

    def __init__(self, settings: Settings, metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._queue: asyncio.Queue[Job] | None = None
        self._workers: list[asyncio.Task] = []
        self._pending: set[tuple[str, str, str]] = set()   # queued or running, by (store, bucket, key)
        self._inline: set[asyncio.Task] = set()
        self.budget = Budget(settings.inline_memory_bytes)
        self.options = CopyOptions(create_only=True, multipart_threshold=settings.multipart_threshold_bytes,
                                   part_size=settings.part_size_bytes, parallel=4)

    # -- the same pass ----------------------------------------------------------------------------
    def claim(self, job: Job) -> bool:
        """Reserve ``job``'s key for a copy in the reading request's pass (False: one is under way)."""
        if job.key in self._pending:
            return False
        self._pending.add(job.key)
        return True

    def inline(self, job: Job, pipe: Pipe, headers: dict[str, str]) -> None:
        """Write ``pipe`` (fed by the relay to the client) as ``job``'s object, in a task of its own
        that outlives the request if the destination answers after the client has its last byte."""
        task = asyncio.get_running_loop().create_task(self._inline_copy(job, pipe, headers))
        self._inline.add(task)
        task.add_done_callback(self._inline.discard)

    async def _inline_copy(self, job: Job, pipe: Pipe, headers: dict[str, str]) -> None:
        self.metrics.migrations_in_flight.inc()
        outcome = None
        try:
            body = pipe if pipe.length else b""
            outcome = (await put_stream(job.dest, job.dst, body, pipe.length, headers, create_only=True))[0]
        except asyncio.CancelledError:
            pipe.fail(ConnectionResetError("shutting down"))
            raise
        except (CopyError, S3Error) as e:
            if not pipe.failed:
                outcome = FAILED
                log.warning("migration_copy_failed", bucket=job.bucket, key=job.dst.key, error=e.code)
        finally:
            self.metrics.migrations_in_flight.dec()
            pipe.abandon()
            self._pending.discard(job.key)
        if outcome is not None:
            self._count(job.bucket, outcome, pipe.length)
        else:   # the read stopped half-way: nothing was stored; copy it from the start instead
            self.submit(job)

    # -- the background ---------------------------------------------------------------------------
    def submit(self, job: Job) -> bool:
        """Queue a background copy (False: already queued or running, or the queue is full)."""
        if job.key in self._pending or self.settings.queue == 0:
            return False
        if self._queue is None:
            self._queue = asyncio.Queue(self.settings.queue)
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._work()) for _ in range(self.settings.concurrency)]
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.metrics.migrations_dropped.inc()
            return False
        self._pending.add(job.key)
        self.metrics.migrations_queued.set(self._queue.qsize())
        return True

    async def _work(self) -> None:
        queue = self._queue
        while True:
            job = await queue.get()
            self.metrics.migrations_queued.set(queue.qsize())
            self.metrics.migrations_in_flight.inc()
            try:
                result = await copy_object(job.source, job.src, job.dest, job.dst, self.options)
                self._count(job.bucket, result.outcome, result.size)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._count(job.bucket, FAILED, 0)
                log.warning("migration_copy_failed", bucket=job.bucket, key=job.dst.key,
                            error=getattr(e, "reason", type(e).__name__))
            finally:
                self.metrics.migrations_in_flight.dec()
                self._pending.discard(job.key)
                queue.task_done()

    def _count(self, bucket: str, outcome: str, size: int) -> None:
        self.metrics.migrated_objects.labels(bucket, outcome).inc()
        self.metrics.migrated_bytes.labels(bucket, outcome).inc(size)

    @property
    def busy(self) -> int:
        """Copies queued or running."""
        return len(self._pending)

    async def close(self, timeout: float) -> None:
        """Let the queued and running copies finish for up to ``timeout`` seconds, then cancel them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        tasks = [*self._workers, *self._inline]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()


# -- the stages (registered by gateway/extensions/sippy.py) ---------------------------------------------
def _plain(ex) -> bool:
    """A GET of the whole object as stored: its answer can be written into the destination."""
    h = ex.upstream_headers
    if "range" in h or any(k.startswith("if-") for k in h) or ex.sse_c():
        return False
    return all(k in _PLAIN_QUERY or k.startswith("X-Amz-") for k in ex.query)


async def _from_destination(ex, proceed):
    """(the destination's answer, None), or (None, its NoSuchKey) when the object is not there (yet):
    a read of a version is the destination's alone."""
    try:
        return await proceed(ex), None
    except S3Error as e:
        if e.code != "NoSuchKey" or "versionId" in ex.query:
            raise
        return None, e


async def get_object(ex, proceed):
    route = ex.route
    if not route.migrates:
        return await proceed(ex)
    answer, missing = await _from_destination(ex, proceed)
    if missing is None:
        return answer
    gw = ex.gw
    job = Job(gw.stores.source_of(route), Location(route.source_bucket, ex.key), ex.upstream,
              Location(ex.bucket, ex.key), ex.bucket)
    resp = await ex.call_upstream("GET", job.src.path, ex.upstream_query(), dict(ex.upstream_headers), None,
                                  upstream=job.source)
    if resp.status >= 400:
        err = await upstream_error(ex, resp)
        resp.release()
        raise missing if err.status == 404 else err
    mor = gw.migrate_on_read
    length = resp.headers.get("Content-Length")
    if resp.status != 200 or not _plain(ex) or length is None or int(length) > mor.settings.inline_max_bytes \
            or not mor.claim(job):
        if resp.status in (200, 206, 304) and not ex.sse_c():
            mor.submit(job)
        return await ex.relay(resp)
    size = int(length)
    headers = metadata_headers(resp.headers)
    md5 = content_md5(resp.headers)
    if md5:
        headers["content-md5"] = md5
    pipe = Pipe(size, mor.settings.inline_buffer_bytes, mor.budget)
    mor.inline(job, pipe, headers)
    ex.features.append("migrated-on-read")
    try:
        out = await ex.relay(resp, tap=pipe if size else None)
    except BaseException:
        pipe.fail(ConnectionResetError("the read stopped before the end of the object"))
        gw.metrics.migrations_handed_off.labels("read_stopped").inc()
        raise
    if pipe.overflowed:   # failed already: the PUT was cut off when it fell behind
        gw.metrics.migrations_handed_off.labels("destination_behind").inc()
    else:
        pipe.close()
    return out


async def head_object(ex, proceed):
    route = ex.route
    if not route.migrates:
        return await proceed(ex)
    answer, missing = await _from_destination(ex, proceed)
    if missing is None:
        return answer
    source = ex.gw.stores.source_of(route)
    resp = await ex.call_upstream("HEAD", Location(route.source_bucket, ex.key).path, ex.upstream_query(),
                                  dict(ex.upstream_headers), None, upstream=source)
    if resp.status == 404:
        resp.release()
        raise missing
    return await ex.relay(resp)
