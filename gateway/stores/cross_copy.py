"""CopyObject and UploadPartCopy whose source bucket lives on another store than the destination
bucket: the gateway makes the copy itself, streamed through it with bounded memory
(gateway/stores/copy.py: one PUT, or a multipart upload of parallel parts for a large object;
UploadPartCopy: the source range streamed into one UploadPart).

S3's semantics are kept: the metadata directive (COPY: the source's user and system metadata;
REPLACE: the request's; MERGE arrives here as REPLACE from extensions/merge.py), the tagging
directive (COPY carries the source's tags, REPLACE the request's ``x-amz-tagging``), the
``x-amz-copy-source-if-*`` conditions (checked by extensions/copy_conditions.py and pinned on the
reads, so a source changed in between fails with PreconditionFailed), ``x-amz-copy-source-range``,
a source ``versionId``, SSE-C on either side, and the storage class and server-side encryption asked
for the copy. The answer is S3's CopyObjectResult / CopyPartResult.
"""
from __future__ import annotations

import re
import time
from urllib.parse import quote

from .. import s3xml
from ..errors import S3Error
from ..server import Response
from ..upstream.responses import read_capped
from .copy import SYSTEM_METADATA, CopyOptions, Location, body_of, copy_object, put_stream, read_source

_SSE_C = "x-amz-server-side-encryption-customer-"
_DEST_HEADERS = frozenset({
    "x-amz-storage-class", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context", "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-website-redirect-location",
})
_CONDITIONS = {"x-amz-copy-source-if-match": "if-match", "x-amz-copy-source-if-none-match": "if-none-match",
               "x-amz-copy-source-if-modified-since": "if-modified-since",
               "x-amz-copy-source-if-unmodified-since": "if-unmodified-since"}
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


async def cross_store(ex, proceed):
    """The stage for CopyObject / UploadPartCopy: a source on the same store goes upstream as usual."""
    bucket, key, version = ex.copy_source()
    source = ex.gw.stores.for_bucket(bucket)
    if source is ex.upstream:
        return await proceed(ex)
    ex.features.append("cross-store-copy")
    src = Location(bucket, key, version)
    out = await (_copy_part(ex, source, src) if ex.op == "UploadPartCopy" else _copy_object(ex, source, src))
    if version:
        out.headers["x-amz-copy-source-version-id"] = version
    return out


def _source_headers(ex) -> dict[str, str]:
    headers = ex.sse_c(source=True)
    for name, as_read in _CONDITIONS.items():
        if name in ex.headers:
            headers[as_read] = ex.headers[name]
    return headers


async def _copy_object(ex, source, src: Location) -> Response:
    up = ex.upstream_headers
    metadata = None
    if up.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
        metadata = {k: v for k, v in up.items() if k in SYSTEM_METADATA or k.startswith("x-amz-meta-")}
    dest_headers = {k: v for k, v in up.items() if k in _DEST_HEADERS or k.startswith(_SSE_C)}
    if up.get("x-amz-tagging-directive", "COPY").upper() == "REPLACE":
        if up.get("x-amz-tagging"):
            dest_headers["x-amz-tagging"] = up["x-amz-tagging"]
    else:
        tags = await _source_tags(ex, source, src)
        if tags:
            dest_headers["x-amz-tagging"] = tags
    opts = CopyOptions(create_only=False, metadata=metadata, source_headers=_source_headers(ex),
                       dest_headers=dest_headers)
    result = await copy_object(source, src, ex.upstream, Location(ex.bucket, ex.key), opts)
    return _result(ex, "CopyObjectResult", result.etag)


async def _source_tags(ex, source, src: Location) -> str | None:
    """The source object's tags as an ``x-amz-tagging`` value (None: none, or the store has no tagging)."""
    query = "tagging=" + (f"&{src.query}" if src.query else "")
    resp = await ex.call_upstream("GET", src.path, query, ex.sse_c(source=True), None, upstream=source)
    try:
        if resp.status != 200:
            return None
        root = s3xml.parse(await read_capped(resp, 64 * 1024))
    finally:
        resp.release()
    pairs = []
    for tag_set in root:
        for tag in tag_set if isinstance(tag_set.tag, str) and s3xml.local(tag_set.tag) == "TagSet" else ():
            pairs.append(f"{quote(s3xml.find_text(tag, 'Key') or '', safe='')}="
                         f"{quote(s3xml.find_text(tag, 'Value') or '', safe='')}")
    return "&".join(pairs) or None


async def _copy_part(ex, source, src: Location) -> Response:
    headers = _source_headers(ex)
    wanted = ex.headers.get("x-amz-copy-source-range")
    if wanted is not None:
        m = _RANGE.match(wanted.strip())
        if m is None or int(m.group(1)) > int(m.group(2)):
            raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                          "bytes=first-last where first and last are the zero-based offsets of the first "
                          "and last bytes to copy", ArgumentName="x-amz-copy-source-range")
        headers["range"] = wanted.strip()
    resp = await read_source(source, src, headers)
    try:
        length = int(resp.headers.get("Content-Length", "0"))
        sse_c = {k: v for k, v in ex.upstream_headers.items() if k.startswith(_SSE_C)}
        _, etag = await put_stream(ex.upstream, Location(ex.bucket, ex.key), body_of(resp, length) if length else b"",
                                   length, sse_c, create_only=False, query=ex.upstream_query())
    finally:
        resp.release()
    return _result(ex, "CopyPartResult", etag)


def _result(ex, root: str, etag: str | None) -> Response:
    if etag and not etag.startswith('"'):
        etag = f'"{etag}"'
    now = time.time()
    modified = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    body = s3xml.document(root, [s3xml.element("LastModified", modified), s3xml.element("ETag", etag or "")])
    headers = {"Content-Type": "application/xml", "x-amz-request-id": ex.request_id, **ex.response_headers}
    return Response(body=body, headers=headers)
