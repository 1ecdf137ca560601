"""Multipart uploads as R2 has them, on upstreams that differ.

- CompleteMultipartUpload: R2 requires every part but the last to have the same size (and the
  last to be no larger); otherwise ``InvalidPart``. One ListParts before completing checks it, in
  the rules' mode (enforce refuses, audit reports the ``part-sizes`` finding and completes, off
  does not look).
- ``?partNumber=N`` on GetObject/HeadObject: Ceph RGW 16 ignores it and returns the whole object;
  moto answers a part with the part's own ETag, and a part past the last with 500 or the whole
  object. For such upstreams the gateway records, when it completes an upload, the part size and count in
  a small JSON object in its internal bucket (hidden from clients), and serves ``partNumber=N`` as
  the matching byte Range with ``x-amz-mp-parts-count``. A record is trusted only while the
  object's size and part count still match it. A part past the last is ``400 InvalidPart``, as R2
  answers it; ``partNumber=1`` of an object uploaded whole is all of it (206, its own ETag). The
  object's SSE-C key, when sent, is used for the HEAD that counts the parts.
"""
from __future__ import annotations

import json
import re

from .. import s3xml
from ..auth.canonical import uri_encode
from ..errors import S3Error
from ..rules.enforce import Violation
from ..upstream.responses import read_capped
from ..upstream import dialects, quirks

_ETAG_PARTS = re.compile(r'-(\d+)"?$')


def _uniform(profile) -> bool:
    return bool(getattr(profile.limits, "uniform_parts", False))


async def _part_sizes(ex) -> dict[int, int]:
    """Every uploaded part's size, from the upstream's ListParts (paginated)."""
    sizes: dict[int, int] = {}
    marker = 0
    upload = uri_encode(ex.query.get("uploadId", ""), False)
    for _ in range(20):  # 20 × 1000 parts > R2's 10,000-part limit
        query = f"max-parts=1000&part-number-marker={marker}&uploadId={upload}"
        resp = await ex.call_upstream("GET", None, query, {}, None)
        try:
            if resp.status >= 400:
                return {}  # let CompleteMultipartUpload itself answer (NoSuchUpload, …)
            root = s3xml.parse(await read_capped(resp, 8 * 1024 * 1024), limit=8 * 1024 * 1024)
        finally:
            resp.release()
        for part in root:
            if isinstance(part.tag, str) and s3xml.local(part.tag) == "Part":
                sizes[int(s3xml.find_text(part, "PartNumber") or 0)] = int(s3xml.find_text(part, "Size") or 0)
        if (s3xml.find_text(root, "IsTruncated") or "false") != "true":
            break
        marker = int(s3xml.find_text(root, "NextPartNumberMarker") or 0)
    return sizes


def _requested_parts(body: bytes) -> list[int]:
    root = s3xml.parse(body)
    numbers = []
    for part in root:
        if isinstance(part.tag, str) and s3xml.local(part.tag) == "Part":
            try:
                numbers.append(int(s3xml.find_text(part, "PartNumber") or ""))
            except ValueError:
                raise S3Error("MalformedXML") from None
    return numbers


def _record_path(ex, bucket: str, key: str) -> str:
    return "/" + uri_encode(ex.upstream.internal_bucket, True) + "/" + uri_encode(f"parts/{bucket}/{key}", True)


async def complete(ex, proceed):
    record = ex.upstream.has(quirks.IGNORES_PART_NUMBER)
    uniform = _uniform(ex.gw.profile) and ex.gw.rules.mode != "off"
    if not (uniform or record) or not isinstance(ex.body, bytes):
        return await proceed(ex)
    numbers = _requested_parts(ex.body)
    sizes = await _part_sizes(ex)
    chosen = [sizes.get(n) for n in numbers]
    if not numbers or None in chosen:
        return await proceed(ex)  # the upstream names the missing part (InvalidPart)
    part_size = chosen[0]
    if uniform and (any(s != part_size for s in chosen[:-1]) or chosen[-1] > part_size):
        # in the rules' mode: enforce refuses as R2 does, audit lets it through and reports it
        ex.gw.rules.report(ex, [Violation("part-sizes", S3Error(
            "InvalidPart", "All non-trailing parts must have the same length."))])
    resp = await proceed(ex)
    if record and resp.status == 200 and len(numbers) > 1:
        await _save_record(ex, {"parts": len(numbers), "part_size": part_size, "size": sum(chosen)})
    return resp


async def _save_record(ex, record: dict) -> None:
    body = json.dumps(record).encode()
    path = _record_path(ex, ex.bucket, ex.key)
    resp = await ex.call_upstream("PUT", path, "", {"content-type": "application/json"}, body)
    status = resp.status
    resp.release()
    if status == 404:  # the internal bucket does not exist yet
        r = await ex.call_upstream("PUT", "/" + uri_encode(ex.upstream.internal_bucket, True), "", {}, None)
        r.release()
        resp = await ex.call_upstream("PUT", path, "", {"content-type": "application/json"}, body)
        resp.release()


async def _load_record(ex) -> dict | None:
    resp = await ex.call_upstream("GET", _record_path(ex, ex.bucket, ex.key), "", {}, None)
    try:
        if resp.status != 200:
            return None
        return json.loads(await read_capped(resp, 4096))
    except (ValueError, S3Error):
        return None
    finally:
        resp.release()


async def part_number(ex, proceed):
    raw = ex.query.get("partNumber")
    if raw is None:
        return await proceed(ex)
    await dialects.learn_dialect(ex.upstream)
    if not ex.upstream.has(quirks.IGNORES_PART_NUMBER):
        return await proceed(ex)
    try:
        number = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                      ArgumentName="partNumber") from None
    if not 1 <= number <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                      ArgumentName="partNumber")
    if "range" in ex.headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    status, headers = await ex.head(ex.bucket, ex.key, ex.sse_c())
    if status >= 300:
        return await proceed(ex)  # the upstream's own answer: NoSuchKey, 403, …
    size = int(headers.get("Content-Length", "0"))
    m = _ETAG_PARTS.search(headers.get("ETag", ""))
    count = int(m.group(1)) if m else 1
    if number > count:
        # past the last part (also any part but 1 of an object uploaded whole), as R2 answers it
        raise S3Error("InvalidPart", f"Part {number} does not exist: the object has {count} part(s).",
                      PartNumberRequested=str(number), ActualPartCount=str(count))
    ex.query_override = "&".join(p for p in ex.upstream_query().split("&")
                                 if p and not p.startswith("partNumber="))
    if count == 1:
        part_size = size
    else:
        rec = await _load_record(ex)
        if not rec or rec.get("parts") != count or rec.get("size") != size:
            raise S3Error("NotImplemented", "GetObject partNumber not implemented for an object whose "
                          "upload the gateway did not complete")
        part_size = rec["part_size"]
    start = (number - 1) * part_size
    end = min(start + part_size, size) - 1
    if size:
        # a ranged read of the part: 206 with Content-Range and the object's own ETag (an object
        # uploaded whole is its one part, so partNumber=1 is all of it)
        ex.upstream_headers["range"] = f"bytes={start}-{end}"
    if m:  # S3 counts parts only for objects that were uploaded in parts
        ex.response_headers["x-amz-mp-parts-count"] = str(count)
    return await proceed(ex)


def register(ext) -> None:
    ext.register(complete, "CompleteMultipartUpload")
    ext.register(part_number, "GetObject", "HeadObject")
