"""Copying one object from a store into another (or within one), streamed: the bytes flow from GETs
on the source into writes on the destination, never whole in memory, and nothing partial is ever
left behind (a broken stream cuts the PUT off mid-body; a failed multipart copy is aborted).

The API, used by migration on read, cross-store CopyObject and the bulk ``migrate``::

    result = await copy_object(source, Location("old", "a/b.jpg"), dest, Location("new", "a/b.jpg"),
                               CopyOptions(create_only=True))
    result.outcome       # COPIED, or ALREADY_PRESENT (create_only, and the key was there)
    result.size, result.source_etag, result.etag, result.parts     # parts == 0: one PUT

``source`` and ``dest`` are :class:`~gateway.upstream.client.Upstream` clients. A copy that fails
raises :class:`CopyError`, an ``S3Error`` (raise it to answer a client) whose ``reason`` is one word
for reports and metrics: ``source_missing``, ``source_changed``, ``source_failed``,
``destination_refused``, ``connection``. ``size`` and ``etag`` of the source may be passed when
known (from a listing): the copy then reads exactly that version (``If-Match``) or fails with
``source_changed``.

- Up to ``multipart_threshold``: one GET streamed into one PUT. Above it: a multipart upload of
  ``part_size`` parts (grown to stay within 10,000 parts), ``parallel`` at a time, each a ranged
  GET pinned to the source's ETag (a source rewritten mid-copy fails the copy instead of mixing
  two versions) streamed into an UploadPart. Memory is a few transport buffers per part in flight.
- ``create_only``: the destination is HEADed first (present: ALREADY_PRESENT, nothing is read) and
  the write carries ``If-None-Match: *``. Stores that check it when the write commits
  (``quirks.CREATE_ONLY_PUT``) make it exact across any number of writers. A store that ignores it
  on CompleteMultipartUpload (``quirks.CONDITIONAL_COMPLETE``: RGW 16) gets objects up to 5 GiB as
  one PUT anyway, and larger ones a HEAD just before completing: the one window in which a
  concurrent write could be overwritten.
- Metadata: the source's user metadata (``x-amz-meta-*``) and system metadata
  (:data:`SYSTEM_METADATA`), or ``metadata`` instead. ``dest_headers`` are added to the writes
  (storage class, tagging, SSE-C of the destination), ``source_headers`` to the reads (SSE-C).
- Integrity: every read and write has a Content-Length (a short stream is an error), and a single
  PUT carries ``Content-MD5`` from the source's ETag when that ETag is the content's MD5 (not
  multipart, not SSE-KMS or SSE-C): the destination refuses a body that differs.

Pieces for callers that stream a body themselves (migration on read, UploadPartCopy between
stores; a body fed by another task is :class:`~.pipe.Pipe`): :func:`metadata_headers`, :func:`content_md5`,
:func:`read_source` (a GET whose refusals are CopyErrors), :func:`body_of` (its body as a request
body of a known length), :func:`put_stream`, :func:`head`.
"""
from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass, field
from typing import AsyncIterator, Mapping

import aiohttp

from .. import s3xml
from ..auth.canonical import uri_encode
from ..errors import S3Error
from ..upstream import quirks
from ..upstream.client import Upstream, UpstreamRequest

__all__ = ["ALREADY_PRESENT", "COPIED", "SYSTEM_METADATA", "CopyError", "CopyOptions", "CopyResult", "Location",
           "body_of", "content_md5", "copy_object", "head", "metadata_headers", "put_stream", "read_source"]

COPIED, ALREADY_PRESENT = "copied", "already_present"
#: the system metadata a copy carries (with every ``x-amz-meta-*``)
SYSTEM_METADATA = ("content-type", "cache-control", "content-disposition", "content-encoding",
                   "content-language", "expires")
MiB = 1024 * 1024
SINGLE_PUT_MAX = 5 * 1024 * MiB
MAX_PARTS = 10_000
_MIN_PART = 5 * MiB
_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_SSE_C = "x-amz-server-side-encryption-customer-"
_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Location:
    bucket: str
    key: str
    version_id: str | None = None

    @property
    def path(self) -> str:
        return f"/{uri_encode(self.bucket, True)}/{uri_encode(self.key, True)}"

    @property
    def query(self) -> str:
        return f"versionId={uri_encode(self.version_id, False)}" if self.version_id else ""


@dataclass(frozen=True)
class CopyOptions:
    create_only: bool = True
    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB
    parallel: int = 4
    metadata: Mapping[str, str] | None = None      # instead of the source's user + system metadata
    source_headers: Mapping[str, str] = field(default_factory=dict)
    dest_headers: Mapping[str, str] = field(default_factory=dict)
    verify_md5: bool = True                        # Content-MD5 from an MD5 ETag on single PUTs


@dataclass(frozen=True, slots=True)
class CopyResult:
    outcome: str                # COPIED | ALREADY_PRESENT
    size: int
    source_etag: str | None
    etag: str | None            # the destination's, when written
    parts: int = 0              # 0: one PUT


class CopyError(S3Error):
    """A copy that did not happen (nothing was left on the destination)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str, code: str = "InternalError", message: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(code, message, status=status)
        self.reason = reason


# -- what a write must carry -------------------------------------------------------------------------
def metadata_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """An object's user and system metadata, from the headers of its GET or HEAD answer: the
    headers a write needs to reproduce them (lowercase names)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low.startswith("x-amz-meta-") or low in SYSTEM_METADATA:
            if low == "content-encoding":   # RGW stores aws-chunked as an encoding of the object
                value = ",".join(p for p in (s.strip() for s in value.split(",")) if p and p != "aws-chunked")
                if not value:
                    continue
            out[low] = value
    return out


def content_md5(headers: Mapping[str, str]) -> str | None:
    """``Content-MD5`` for a copy of the object these GET/HEAD headers describe, when its ETag is the
    MD5 of its content (a single-part upload, no SSE-KMS or SSE-C); else None."""
    m = _MD5_ETAG.match(headers.get("etag", "") or "")
    if m is None or headers.get("x-amz-server-side-encryption", "").startswith("aws:kms") \
            or headers.get(_SSE_C + "algorithm"):
        return None
    return base64.b64encode(bytes.fromhex(m.group(1))).decode()


async def body_of(resp, length: int) -> AsyncIterator[bytes]:
    """A source GET's body as a request body: exactly ``length`` bytes, or CopyError."""
    got = 0
    try:
        async for data in resp.content.iter_any():
            got += len(data)
            yield data
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        raise CopyError("source_failed", "BadGateway", "The source store's stream broke.") from None
    if got != length:
        raise CopyError("source_failed", "BadGateway", "The source store sent a short body.")


# -- talking to the stores ----------------------------------------------------------------------------
async def _send(store: Upstream, req: UpstreamRequest):
    try:
        return await store.send(req)
    except CopyError:
        raise
    except S3Error as e:
        raise CopyError("connection", e.code, e.message, e.status) from None


async def _refusal(resp, reason: str) -> CopyError:
    body = b""
    try:
        async for data in resp.content.iter_any():
            body += data
            if len(body) > _ERROR_BODY:
                break
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        pass
    code = message = None
    if body:
        try:
            root = s3xml.parse(body[:_ERROR_BODY])
            code, message = s3xml.find_text(root, "Code"), s3xml.find_text(root, "Message")
        except S3Error:
            pass
    if not code:
        code = {403: "AccessDenied", 404: "NoSuchKey", 412: "PreconditionFailed"}.get(resp.status, "InternalError")
    return CopyError(reason, code, message or None, resp.status if resp.status >= 400 else 502)


async def head(store: Upstream, loc: Location, headers: Mapping[str, str] | None = None):
    """HEAD ``loc`` → (status, headers)."""
    resp = await _send(store, UpstreamRequest("HEAD", loc.path, loc.query, dict(headers or {}), None))
    resp.release()
    return resp.status, resp.headers


async def put_stream(dest: Upstream, loc: Location, body, length: int, headers: Mapping[str, str],
                     create_only: bool, query: str = "") -> tuple[str, str | None]:
    """PUT ``body`` (bytes, or an async iterator of exactly ``length`` bytes) as ``loc`` with
    ``headers`` (``query``: an UploadPart's) → (COPIED, etag) or, ``create_only`` and the key
    exists, (ALREADY_PRESENT, None)."""
    h = dict(headers)
    if create_only:
        h["if-none-match"] = "*"
    resp = await _send(dest, UpstreamRequest("PUT", loc.path, query, h, body, length))
    try:
        if resp.status == 412 and create_only:
            return ALREADY_PRESENT, None
        if resp.status >= 300:
            raise await _refusal(resp, "destination_refused")
        return COPIED, resp.headers.get("ETag")
    finally:
        resp.release()


async def read_source(source: Upstream, loc: Location, headers: dict[str, str], query: str | None = None):
    """GET ``loc`` (``query`` instead of its versionId, e.g. none) → the streaming response, or CopyError."""
    resp = await _send(source, UpstreamRequest("GET", loc.path, loc.query if query is None else query, headers, None))
    if resp.status < 300:
        return resp
    if resp.status == 304:   # a copy's if-none-match / if-modified-since that failed
        resp.release()
        raise CopyError("source_changed", "PreconditionFailed")
    reason = {404: "source_missing", 412: "source_changed"}.get(resp.status, "source_failed")
    err = await _refusal(resp, reason)
    resp.release()
    raise err


def _write_headers(opts: CopyOptions, source_headers: Mapping[str, str]) -> dict[str, str]:
    out = dict(opts.metadata) if opts.metadata is not None else metadata_headers(source_headers)
    out.update(opts.dest_headers)
    return out


# -- the copy ---------------------------------------------------------------------------------------
async def copy_object(source: Upstream, src: Location, dest: Upstream, dst: Location,
                      opts: CopyOptions = CopyOptions(), *, size: int | None = None,
                      etag: str | None = None) -> CopyResult:
    """Copy ``src`` on ``source`` to ``dst`` on ``dest`` (see the module's docstring)."""
    if opts.create_only:
        status, _ = await head(dest, dst, {k: v for k, v in opts.dest_headers.items() if k.startswith(_SSE_C)})
        if status == 200:
            return CopyResult(ALREADY_PRESENT, size or 0, etag, None)
    info = None
    if size is None:
        status, info = await head(source, src, opts.source_headers)
        _check_head(status)
        size = int(info.get("Content-Length", "0"))
        etag = info.get("ETag", etag)
    one_put = size <= opts.multipart_threshold or (
        opts.create_only and size <= SINGLE_PUT_MAX and not dest.has(quirks.CONDITIONAL_COMPLETE))
    if one_put:
        return await _copy_single(source, src, dest, dst, opts, etag)
    if info is None:
        status, info = await head(source, src, {**opts.source_headers, **({"if-match": etag} if etag else {})})
        _check_head(status)
    return await _copy_multipart(source, src, dest, dst, opts, size, etag, info)


def _check_head(status: int) -> None:
    if status < 300:
        return
    if status == 404:
        raise CopyError("source_missing", "NoSuchKey")
    if status in (304, 412):
        raise CopyError("source_changed", "PreconditionFailed")
    if status == 403:
        raise CopyError("source_failed", "AccessDenied")
    raise CopyError("source_failed", "BadGateway", "The source store refused the read.", 502)


async def _copy_single(source, src, dest, dst, opts, etag) -> CopyResult:
    headers = dict(opts.source_headers)
    if etag:
        headers["if-match"] = etag
    resp = await read_source(source, src, headers)
    try:
        length = int(resp.headers.get("Content-Length", "0"))
        write = _write_headers(opts, resp.headers)
        md5 = content_md5(resp.headers) if opts.verify_md5 else None
        if md5:
            write["content-md5"] = md5
        body = body_of(resp, length) if length else b""
        outcome, new_etag = await put_stream(dest, dst, body, length, write, opts.create_only)
    finally:
        resp.release()
    return CopyResult(outcome, length, resp.headers.get("ETag", etag), new_etag)


def _part_size(size: int, wanted: int) -> int:
    part = max(wanted, _MIN_PART, -(-size // MAX_PARTS))
    return -(-part // MiB) * MiB


async def _copy_multipart(source, src, dest, dst, opts, size: int, etag: str | None, info) -> CopyResult:
    part = _part_size(size, opts.part_size)
    count = -(-size // part)
    resp = await _send(dest, UpstreamRequest("POST", dst.path, "uploads=", _write_headers(opts, info), None))
    try:
        if resp.status >= 300:
            raise await _refusal(resp, "destination_refused")
        upload_id = s3xml.find_text(s3xml.parse(await resp.read()), "UploadId") or ""
    finally:
        resp.release()
    upload = f"uploadId={uri_encode(upload_id, False)}"
    etags: list[str | None] = [None] * count
    sse_c = {k: v for k, v in opts.dest_headers.items() if k.startswith(_SSE_C)}
    numbers = iter(range(count))

    async def worker() -> None:
        for i in numbers:
            start = i * part
            n = min(size, start + part) - start
            h = {**opts.source_headers, "range": f"bytes={start}-{start + n - 1}"}
            if etag:
                h["if-match"] = etag
            got = await read_source(source, src, h)
            try:
                r = await _send(dest, UpstreamRequest("PUT", dst.path, f"partNumber={i + 1}&{upload}", dict(sse_c),
                                                      body_of(got, n), n))
            finally:
                got.release()
            try:
                if r.status >= 300:
                    raise await _refusal(r, "destination_refused")
                etags[i] = r.headers.get("ETag")
            finally:
                r.release()

    try:
        workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(opts.parallel, count)))]
        try:
            done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for w in workers:
                w.cancel()
        for w in done:
            if w.exception() is not None:
                raise w.exception()
        outcome, new_etag = await _complete(dest, dst, upload, etags, opts)
        if outcome != COPIED:
            await _abort(dest, dst, upload)
    except BaseException:
        await _abort(dest, dst, upload)
        raise
    return CopyResult(outcome, size, etag, new_etag, count)


async def _complete(dest: Upstream, dst: Location, upload: str, etags, opts: CopyOptions):
    headers = {}
    if opts.create_only:
        if dest.has(quirks.CONDITIONAL_COMPLETE):
            headers["if-none-match"] = "*"
        else:
            status, _ = await head(dest, dst)
            if status == 200:
                return ALREADY_PRESENT, None
    xml = s3xml.document("CompleteMultipartUpload", [
        f"<Part>{s3xml.element('PartNumber', i + 1)}{s3xml.element('ETag', e)}</Part>" for i, e in enumerate(etags)])
    resp = await _send(dest, UpstreamRequest("POST", dst.path, upload, headers, xml))
    try:
        if resp.status == 412 and opts.create_only:
            return ALREADY_PRESENT, None
        if resp.status >= 300:
            raise await _refusal(resp, "destination_refused")
        body = await resp.read()
        if b"<Error>" in body[:512]:
            root = s3xml.parse(body)
            raise CopyError("destination_refused", s3xml.find_text(root, "Code") or "InternalError",
                            s3xml.find_text(root, "Message"), 502)
        return COPIED, s3xml.find_text(s3xml.parse(body), "ETag") or resp.headers.get("ETag")
    finally:
        resp.release()


async def _abort(dest: Upstream, dst: Location, upload: str) -> None:
    try:
        resp = await dest.send(UpstreamRequest("DELETE", dst.path, upload, {}, None))
        resp.release()
    except (S3Error, OSError, aiohttp.ClientError, asyncio.TimeoutError):
        pass   # left to the store's lifecycle rules; nothing readable was created
