"""SSE-C copies the upstream cannot make, made by the gateway (``quirks.NO_SSE_C_COPY`` for
CopyObject with SSE-C on either side, ``quirks.NO_SSE_C_PART_COPY`` for UploadPartCopy from an
SSE-C source to a destination with another key or none). Measured on Ceph RGW 16.2.15:

| copy | CopyObject | UploadPartCopy |
| --- | --- | --- |
| plain → SSE-C | 200, but stored unencrypted | works |
| SSE-C → plain | 501 NotImplemented | 400 InvalidArgument (algorithm) |
| SSE-C → SSE-C, another key | 501 NotImplemented | 400 InvalidArgument (key MD5) |
| SSE-C → SSE-C, the same key | 501 NotImplemented | works |

The gateway's copy is a GET of the source with the source's key (``x-amz-copy-source-range`` as
its Range) streamed into a PUT (or UploadPart) of the destination with the destination's key and
the exact Content-Length: memory stays bounded by the transport's buffers, and a source that
breaks or ends early aborts the PUT before its last byte, so the upstream commits nothing.

What S3 and R2 define around a copy holds: the keys are checked first (``InvalidArgument`` as S3
words it); ``x-amz-copy-source-if-*`` and ``cf-copy-destination-if-*`` were checked by
copy_conditions.py; the metadata directive is COPY (the source's system and user metadata),
REPLACE (the request's), or MERGE (merge.py has turned it into REPLACE with the merged set); a
copy onto itself must change something (here: its key); the answer is ``CopyObjectResult`` /
``CopyPartResult`` with ETag and LastModified, and the destination's SSE-C headers. A part copied
into an upload with a checksum algorithm gets its checksum computed on the way (and recorded,
multipart_checksums.py).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from email.utils import parsedate_to_datetime

import aiohttp

from .. import s3xml
from ..auth.canonical import uri_encode
from ..checksums import new_checksum
from ..errors import S3Error
from ..server import Response
from ..upstream import dialects, quirks
from ..upstream.responses import CHECKSUM_METADATA, upstream_error
from . import multipart_checksums
from .merge import SYSTEM

_SSE = "x-amz-server-side-encryption-customer-"
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def _key_of(headers: dict[str, str], what: str) -> str | None:
    """The SSE-C key (base64) of one side after checking its three headers as S3 does."""
    algorithm = headers.get(_SSE + "algorithm")
    key = headers.get(_SSE + "key")
    md5 = headers.get(_SSE + "key-md5")
    if algorithm is None and key is None and md5 is None:
        return None
    if algorithm != "AES256":
        raise S3Error("InvalidArgument", "Requests specifying Server Side Encryption with Customer provided "
                      "keys must provide a valid encryption algorithm.", ArgumentName=what + "algorithm")
    try:
        raw = base64.b64decode(key or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise S3Error("InvalidArgument", "The secret key was invalid for the specified algorithm.",
                      ArgumentName=what + "key")
    if md5 is not None and base64.b64encode(hashlib.md5(raw).digest()).decode() != md5.strip():
        raise S3Error("InvalidArgument", "The calculated MD5 hash of the key did not match the hash that "
                      "was provided.", ArgumentName=what + "key-md5")
    return key


class _SourceBody:
    """The source's body as the destination's request body: counted, optionally checksummed, and
    failing (so the destination's request is aborted before its end) if it breaks or ends early."""

    __slots__ = ("_resp", "length", "error", "_sent", "checksum")

    def __init__(self, resp, length: int, checksum=None) -> None:
        self._resp, self.length, self.error, self._sent, self.checksum = resp, length, None, 0, checksum

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        try:
            async for data in self._resp.content.iter_any():
                self._sent += len(data)
                if self._sent > self.length:
                    break
                if self.checksum is not None:
                    self.checksum.update(data)
                yield data
        except (aiohttp.ClientError, OSError):
            pass
        if self._sent != self.length:
            self.error = S3Error("BadGateway", "The copy source could not be read to its end; nothing was stored.")
            raise self.error


def _needs_copying(ex, source_key: str | None, dest_key: str | None) -> bool:
    upstream = ex.upstream
    if ex.op == "CopyObject":
        return upstream.has(quirks.NO_SSE_C_COPY)
    return source_key is not None and source_key != dest_key and upstream.has(quirks.NO_SSE_C_PART_COPY)


async def sse_c_copy(ex, proceed):
    source_sse, dest_sse = ex.sse_c(source=True), ex.sse_c()
    if not source_sse and not dest_sse:
        return await proceed(ex)
    source_key = _key_of(source_sse, "x-amz-copy-source-server-side-encryption-customer-")
    dest_key = _key_of(dest_sse, _SSE)
    await dialects.learn_dialect(ex.upstream)
    if (source_key is None and dest_key is None) or not _needs_copying(ex, source_key, dest_key):
        if dest_key is not None:   # the answer names the destination's key (moto's omits it)
            _sse_answer_headers(dest_sse, ex.response_headers)
        return await proceed(ex)
    ex.features.append("sse_c_copy")
    bucket, key, version = ex.copy_source()
    directive = ex.upstream_headers.get("x-amz-metadata-directive", "COPY").upper()
    if ex.op == "CopyObject" and (bucket, key) == (ex.bucket, ex.key) and source_key == dest_key \
            and directive == "COPY":
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object "
                      "to itself without changing the object's metadata, storage class, website redirect "
                      "location or encryption attributes.")
    headers = dict(source_sse)
    if ex.op == "UploadPartCopy" and "x-amz-copy-source-range" in ex.headers:
        m = _RANGE.match(ex.headers["x-amz-copy-source-range"].strip())
        if not m or int(m.group(1)) > int(m.group(2)):
            raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                          "bytes=first-last where first and last are the zero-based offsets of the first and "
                          "last bytes to copy", ArgumentName="x-amz-copy-source-range")
        headers["range"] = f"bytes={m.group(1)}-{m.group(2)}"
    query = "versionId=" + uri_encode(version, False) if version else ""
    source = await ex.call_upstream("GET", ex.bucket_path(bucket, key), query, headers, None)
    try:
        if source.status >= 300:
            raise await upstream_error(ex, source)
        length = int(source.headers.get("Content-Length", "0"))
        if ex.op == "CopyObject":
            return await _copy_object(ex, source, length, directive, dest_sse, dest_key)
        return await _copy_part(ex, source, length, dest_sse)
    finally:
        source.release()


def _destination_headers(ex, source, directive: str, dest_sse: dict[str, str]) -> dict[str, str]:
    out = dict(dest_sse)
    if directive == "COPY":
        for name, value in source.headers.items():
            lower = name.lower()
            if lower in SYSTEM or lower.startswith("x-amz-meta-"):
                out[lower] = value
        kept = out.get(CHECKSUM_METADATA)
        if kept is not None and len(kept.split()) < 3:
            del out[CHECKSUM_METADATA]   # a value kept in a record belongs to the source's key
    else:
        for name, value in ex.upstream_headers.items():
            if name in SYSTEM or name.startswith("x-amz-meta-"):
                out[name] = value
    if "x-amz-storage-class" in ex.upstream_headers:
        out["x-amz-storage-class"] = ex.upstream_headers["x-amz-storage-class"]
    return out


def _iso(http_date: str | None) -> str:
    when = None
    if http_date:
        try:
            when = parsedate_to_datetime(http_date)
        except (TypeError, ValueError):
            when = None
    when = when or dt.datetime.now(dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _quoted(etag: str | None) -> str:
    etag = (etag or "").strip()
    return etag if etag.startswith('"') else f'"{etag}"'


async def _copy_object(ex, source, length: int, directive: str, dest_sse, dest_key) -> Response:
    headers = _destination_headers(ex, source, directive, dest_sse)
    put = await ex.call_upstream("PUT", ex.upstream_path, "", headers, _SourceBody(source, length))
    try:
        if put.status >= 300:
            raise await upstream_error(ex, put)
        etag = _quoted(put.headers.get("ETag"))
    finally:
        put.release()
    status, head = await ex.head(ex.bucket, ex.key, dest_sse)
    modified = head.get("Last-Modified") if status == 200 and _quoted(head.get("ETag")) == etag else None
    return _answer(ex, "CopyObjectResult", etag, _iso(modified), dest_sse if dest_key else {})


async def _copy_part(ex, source, length: int, dest_sse) -> Response:
    algorithm = await multipart_checksums.upload_algorithm(ex)
    body = _SourceBody(source, length, new_checksum(algorithm) if algorithm else None)
    put = await ex.call_upstream("PUT", ex.upstream_path, ex.upstream_query(), dict(dest_sse), body)
    try:
        if put.status >= 300:
            raise await upstream_error(ex, put)
        etag = _quoted(put.headers.get("ETag"))
    finally:
        put.release()
    extra = []
    if algorithm:
        value = body.checksum.digest_b64()
        await multipart_checksums.record_part(ex, length, etag, value)
        extra.append(s3xml.element("Checksum" + algorithm.upper(), value))
    return _answer(ex, "CopyPartResult", etag, _iso(None), dest_sse, extra)


def _answer(ex, root: str, etag: str, modified: str, dest_sse, extra: list[str] = ()) -> Response:
    body = s3xml.document(root, [s3xml.element("LastModified", modified), s3xml.element("ETag", etag), *extra])
    out = Response(status=200, body=body)
    out.headers["Content-Type"] = "application/xml"
    out.headers["x-amz-request-id"] = ex.request_id
    if dest_sse:
        _sse_answer_headers(dest_sse, out.headers)
    out.headers.update(ex.response_headers)
    rules = ex.gw.response_rules
    if rules is not None:
        rules.apply(ex.op, out.headers)
    return out


def _sse_answer_headers(dest_sse: dict[str, str], headers) -> None:
    headers[_SSE + "algorithm"] = dest_sse.get(_SSE + "algorithm", "AES256")
    headers[_SSE + "key-MD5"] = dest_sse.get(_SSE + "key-md5") or base64.b64encode(
        hashlib.md5(base64.b64decode(dest_sse.get(_SSE + "key", ""))).digest()).decode()


def register(ext) -> None:
    ext.register(sse_c_copy, "CopyObject", "UploadPartCopy")
