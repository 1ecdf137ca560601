"""One object from a store to another, streamed: a GET whose body is the PUT's body (exact
Content-Length) below the multipart threshold; above it, the GET's body cut into parts uploaded in
parallel, each part held in memory only while it is sent (a byte budget shared by every copy bounds
the total). User and system metadata go along. Writes are conditional: ``If-None-Match: *`` for a
key the destination lacked, ``If-Match`` on the copy it held when the source differs, so a write
that lands in the meantime is never overwritten (a 412 is "changed during copy", not a failure).
CompleteMultipartUpload is not conditional on every store (Ceph RGW 16 ignores both headers): a HEAD
checks the destination just before it, and the condition is sent as well for the stores that honour
it. What is verified, and how, is in :mod:`.verify`.
"""
from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from . import verify
from .bodies import CopyError, Parts, Spliced, read_whole, stream
from .stores import ObjectInfo, Store, StoreError, object_path, unquote_etag

MiB = 1024 * 1024
MIN_PART = 5 * MiB
# bodies up to this size are read whole, then sent (one write; the PUT can be sent again on a stale
# keep-alive connection); larger ones stream from the GET into the PUT
_WHOLE = 256 * 1024
MAX_PARTS = 10_000

# a copy stopped during CreateMultipartUpload waits this long for its answer, then leaves the abort
# to _LATE (the creations still under way, each aborting its upload when it answers) and _ABORTS
CREATE_GRACE = 10.0
_LATE: set[asyncio.Future] = set()
_ABORTS: set[asyncio.Future] = set()
# whole-object MD5s are updated part after part, in order: one worker keeps that order
_ORDERED = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r2gw-migrate-md5")


class SourceChanged(Exception):
    """The source object is no longer the version that was listed (a conditional GET got 412)."""


@dataclass(slots=True)
class Outcome:
    result: str            # copied | skipped
    reason: str
    size: int = 0
    etag: str = ""
    verified: str = ""
    crc32: str = ""


class ByteBudget:
    """At most ``limit`` bytes of part buffers alive at once (one part always fits)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = asyncio.Condition()

    async def acquire(self, n: int) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.used == 0 or self.used + n <= self.limit)
            self.used += n

    async def release(self, n: int) -> None:
        async with self._cond:
            self.used -= n
            self._cond.notify_all()


@dataclass(slots=True)
class Settings:
    part_size: int = 16 * MiB
    threshold: int = 200 * MiB
    budget: ByteBudget | None = None
    reread: bool = False


class Copier:
    def __init__(self, src: Store, src_bucket: str, dst: Store, dst_bucket: str, cfg: Settings) -> None:
        self.src, self.src_bucket, self.dst, self.dst_bucket, self.cfg = src, src_bucket, dst, dst_bucket, cfg
        if cfg.budget is None:
            cfg.budget = ByteBudget(8 * cfg.part_size)

    async def copy(self, listed: ObjectInfo, dst_etag: str | None, on_bytes=None) -> Outcome:
        """Copy ``listed`` (that version: If-Match) over the destination's ``dst_etag`` (None: absent).
        ``on_bytes(n)`` is told of the source's bytes as they are read."""
        try:
            resp = await self.src.get(self.src_bucket, listed.key, listed.etag or None)
        except StoreError as e:
            if e.status == 412:
                raise SourceChanged() from None
            if e.status == 404:
                raise CopyError("source object vanished (NoSuchKey)") from None
            if not e.transient:
                raise CopyError(f"source GET: {e}") from None
            raise
        try:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            size = int(headers.get("content-length", "-1"))
            if size < 0:
                raise CopyError("source GET answered no Content-Length")
            etag = unquote_etag(headers.get("etag"))
            md5_known = verify.etag_is_md5(etag, headers)
            meta = verify.carried_headers(headers)
            if size < self.cfg.threshold:
                return await self._single(listed.key, resp, size, etag, md5_known, meta, dst_etag, on_bytes)
            part = await self._part_size(listed.key, size, etag)
            return await self._multipart(listed.key, resp, size, etag, md5_known, meta, dst_etag, part, on_bytes)
        finally:
            resp.release()

    # -- one PUT -----------------------------------------------------------------------------------
    async def _single(self, key, resp, size, etag, md5_known, meta, dst_etag, on_bytes) -> Outcome:
        tap = verify.Tap(md5=not md5_known, on_bytes=on_bytes)
        headers = {**meta, **self.dst.condition(dst_etag)}
        if md5_known:
            headers["content-md5"] = verify.md5_b64(etag)   # the destination checks it end to end
        failure: list[BaseException] = []
        if size <= _WHOLE:
            body = await read_whole(resp, size)
            tap.feed(body)
        elif md5_known and not self.cfg.reread and Spliced.possible(resp):
            # the destination checks the bytes against the source's ETag (Content-MD5): they need
            # not pass through the process, the kernel moves them socket to socket
            body = Spliced(resp, size, tap, failure)
        else:
            body = stream(resp, size, tap, failure)
        try:
            answer = await self.dst.put(self.dst_bucket, key, body, size, headers)
        except StoreError as e:
            if failure:    # the source's body failed: that is the reason, not the cut PUT
                raise failure[0] from None
            if e.status == 412:
                return Outcome("skipped", _changed(dst_etag))
            if e.code == "BadDigest":
                raise CopyError("the destination refused the bytes read: they do not hash to the source's ETag") from None
            raise
        if tap.size != size:
            raise CopyError(f"read {tap.size} of {size} bytes")   # never stored: the body was cut
        expected = etag if md5_known else tap.md5_hex
        got = unquote_etag(answer.get("etag"))
        if got == expected:
            level = "md5" if md5_known else "parts"
        elif tap.crc is None and not verify.plain_md5(got):
            # spliced, to a destination whose ETag proves nothing (SSE-KMS there, or none): the
            # copy read back must hash to the source's ETag
            level = await self._reread_md5(key, size, etag)
        elif verify.plain_md5(got):
            await self._discard(key)
            raise CopyError(f"verification failed: destination ETag {got} is not the MD5 {expected} of the bytes sent")
        else:
            level = await self._by_crc(key, size, tap, answer)
        if self.cfg.reread and level != "crc32":
            level += "+" + await self._reread(key, size, tap)
        return Outcome("copied", "missing" if dst_etag is None else "different", size, got, level, tap.crc_hex)

    # -- multipart --------------------------------------------------------------------------------
    async def _part_size(self, key: str, size: int, etag: str) -> int:
        """The source's own part size when it tells it (GET ?partNumber=1; Ceph RGW does not): then
        the copy's ETag equals the source's. Otherwise the configured part size (grown to fit
        10,000 parts)."""
        part = max(self.cfg.part_size, -(-size // MAX_PARTS), MIN_PART)
        count = verify.multipart_count(etag)
        if count is None or count < 2:
            return part
        try:
            resp = await self.src.call("HEAD", object_path(self.src_bucket, key), "partNumber=1", ok=(200, 206))
            resp.release()
        except StoreError:
            return part
        first = int(resp.headers.get("Content-Length", 0))
        parts = resp.headers.get("x-amz-mp-parts-count")
        if (parts == str(count) and MIN_PART <= first < size and -(-size // first) == count
                and first <= self.cfg.budget.limit):
            return first
        return part

    async def _multipart(self, key, resp, size, etag, md5_known, meta, dst_etag, part, on_bytes) -> Outcome:
        budget = self.cfg.budget
        tap = verify.Tap(on_bytes=on_bytes)
        whole = hashlib.md5() if md5_known else None
        upload_id = await self._create_upload(key, meta)
        tasks: list[asyncio.Task] = []
        digests: list[bytes] = []
        try:
            reader = Parts(resp, size, part, tap)
            number = 0
            ordered = None
            while not reader.done:
                n = min(part, size - reader.offset)
                await budget.acquire(n)
                try:
                    buf = await reader.next(n)
                except BaseException:
                    await budget.release(n)
                    raise
                if whole is not None:
                    ordered = asyncio.get_running_loop().run_in_executor(_ORDERED, whole.update, buf)
                number += 1
                tasks.append(asyncio.create_task(self._part(key, upload_id, number, buf, ordered)))
                digests.append(b"")
                # a failed part stops the reading early
                if any(t.done() and t.exception() for t in tasks):
                    break
            results = await asyncio.gather(*tasks)
            for i, (digest, got) in enumerate(results):
                digests[i] = digest
                if got != digest.hex() and verify.plain_md5(got):
                    raise CopyError(f"verification failed: part {i + 1} ETag {got} is not its MD5 {digest.hex()}")
            if tap.size != size:
                raise CopyError(f"read {tap.size} of {size} bytes")
            if whole is not None and whole.hexdigest() != etag:
                raise CopyError(f"verification failed: the bytes read hash to {whole.hexdigest()}, "
                                f"not to the source's ETag {etag}")
            now = await self.dst.head(self.dst_bucket, key)
            if (now[0].etag if now else None) != dst_etag:
                await self._abort(key, upload_id)
                return Outcome("skipped", _changed(dst_etag))
            try:
                await self.dst.complete_upload(self.dst_bucket, key, upload_id, [r[1] or r[0].hex() for r in results],
                                               self.dst.condition(dst_etag))
            except StoreError as e:
                if e.status == 412:
                    await self._abort(key, upload_id)
                    return Outcome("skipped", _changed(dst_etag))
                raise
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._abort(key, upload_id)
            raise
        expected = verify.multipart_etag(digests)
        stored = await self.dst.head(self.dst_bucket, key)
        got = stored[0].etag if stored else ""
        if stored is None or stored[0].size != size:
            raise CopyError("verification failed: the completed object is missing or of another size")
        if got == expected:
            level = "md5" if whole is not None else ("etag" if got == etag else "parts")
        elif verify.multipart_count(got) is not None or verify.plain_md5(got):
            await self._discard(key)
            raise CopyError(f"verification failed: destination ETag {got}, expected {expected}")
        else:
            level = await self._by_crc(key, size, tap, stored[1])
        if self.cfg.reread and level != "crc32":
            level += "+" + await self._reread(key, size, tap)
        return Outcome("copied", "missing" if dst_etag is None else "different", size, got, level, tap.crc_hex)

    async def _create_upload(self, key: str, meta: dict[str, str]) -> str:
        """CreateMultipartUpload; stopped while it is under way, the upload it made (if it made one)
        is aborted, so a stop leaves no upload behind."""
        creating = asyncio.ensure_future(self.dst.create_upload(self.dst_bucket, key, meta))
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            try:
                upload_id = await asyncio.wait_for(asyncio.shield(creating), CREATE_GRACE)
            except BaseException:   # slower still, or stopped again: abort it whenever it answers
                _LATE.add(creating)
                creating.add_done_callback(_LATE.discard)
                creating.add_done_callback(partial(self._abort_when_made, key))
                raise asyncio.CancelledError from None
            await self._abort(key, upload_id)
            raise

    def _abort_when_made(self, key: str, creating: asyncio.Future) -> None:
        if creating.cancelled() or creating.exception() is not None:
            return
        task = asyncio.ensure_future(self._abort(key, creating.result()))
        _ABORTS.add(task)
        task.add_done_callback(_ABORTS.discard)

    @staticmethod
    async def settle(timeout: float) -> None:
        """Before the stores close: the late creations' answers and their aborts, for ``timeout``
        seconds at most (what is still out then is left to a lifecycle rule)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while _LATE or _ABORTS:
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.wait(_LATE | _ABORTS, timeout=left)
            await asyncio.sleep(0)   # the done callbacks: a creation's answer starts its abort

    async def _part(self, key, upload_id, number, buf, ordered) -> tuple[bytes, str]:
        try:
            digest = await asyncio.to_thread(_md5, buf)
            got = await self.dst.upload_part(self.dst_bucket, key, upload_id, number, buf, verify.md5_b64(digest))
            if ordered is not None:
                await ordered
            return digest, got
        finally:
            await self.cfg.budget.release(len(buf))

    # -- helpers --------------------------------------------------------------------------------
    async def _by_crc(self, key: str, size: int, tap: verify.Tap, headers: dict[str, str]) -> str:
        """No MD5 ETag on the destination: its reported CRC32, or a re-read, must match the copy's."""
        reported = verify.reported_crc32(headers)
        if reported is None:
            return await self._reread(key, size, tap)
        if reported != tap.crc:
            await self._discard(key)
            raise CopyError(f"verification failed: the destination reports CRC32 {reported:08x}, "
                            f"the bytes sent have {tap.crc_hex}")
        return "crc32"

    async def _reread(self, key: str, size: int, tap: verify.Tap) -> str:
        check = verify.Tap()
        resp = await self.dst.get(self.dst_bucket, key)
        try:
            async for data in resp.content.iter_any():
                check.feed(data)
        finally:
            resp.release()
        if check.size != size or check.crc != tap.crc:
            raise CopyError(f"verification failed: re-read of the destination gave {check.size} bytes with "
                            f"CRC32 {check.crc_hex}, copied {size} with {tap.crc_hex}")
        return "crc32"

    async def _reread_md5(self, key: str, size: int, etag: str) -> str:
        digest, n = hashlib.md5(), 0
        resp = await self.dst.get(self.dst_bucket, key)
        try:
            async for data in resp.content.iter_any():
                digest.update(data)
                n += len(data)
        finally:
            resp.release()
        if n != size or digest.hexdigest() != etag:
            await self._discard(key)
            raise CopyError(f"verification failed: re-read of the destination gave {n} bytes with MD5 "
                            f"{digest.hexdigest()}, the source's is {etag}")
        return "md5"

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self.dst.abort_upload(self.dst_bucket, key, upload_id)), 10)
        except (StoreError, asyncio.TimeoutError, asyncio.CancelledError):
            pass

    async def _discard(self, key: str) -> None:
        """A copy that failed its verification is removed, never left as if it were the source's."""
        try:
            await self.dst.delete(self.dst_bucket, key)
        except StoreError:
            pass


def _md5(buf) -> bytes:
    return hashlib.md5(buf).digest()


def _changed(dst_etag: str | None) -> str:
    return "appeared in the destination during the copy" if dst_etag is None else \
        "changed in the destination during the copy"
