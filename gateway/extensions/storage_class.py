"""Storage classes under the upstream's names, and the classes a store lacks kept by the gateway.

Names: the profile's ``storage_class_map`` (client's class → upstream's, with the gateway config's
``storage_class_map`` laid over it) applied both ways. Requests' ``x-amz-storage-class``
(PutObject, CopyObject, CreateMultipartUpload) is rewritten here; answers' header by the response
rules (``gateway.rules.response``); the ``<StorageClass>`` elements of listings here.

A class the store does not keep (``Upstream.keeps_class``: RGW's default placement has STANDARD
only, and answers 400 to STANDARD_IA) is kept by the gateway, the way every replica can read it:

- the object is stored in the store's own class, with the class the client chose (upstream name)
  in ``x-amz-meta-r2gw-class``. No client may set that header, and no answer shows it: HeadObject
  and GetObject answer it as ``x-amz-storage-class`` (``upstream.responses.copy_headers``), so
  they cost nothing more;
- listings carry no metadata: a record per such object in the internal bucket
  (:mod:`.class_records`), written before the write is answered, gives ListObjects (v1, v2) the
  class. Cost, on a store that lacks a class the profile has: each listing page with objects
  costs one listing of the records for the page's key range (buckets without such objects pay
  that empty listing too: an exact answer across replicas needs it, where a per-process cache of
  "this bucket has none" would be wrong after another replica's write);
- a multipart upload's class is recorded too (also on stores that keep the class but report
  STANDARD in ListParts / ListMultipartUploads: RGW, moto); ListParts costs one HEAD of the
  record, ListMultipartUploads one listing, CompleteMultipartUpload one HEAD (and the object's
  record); AbortMultipartUpload deletes the record;
- CopyObject sets the destination's class (S3: STANDARD unless the request names one, never the
  source's): with ``x-amz-metadata-directive: COPY`` the source is HEADed, and when either side's
  class is kept by the gateway the copy goes up as a REPLACE of the source's own metadata, so the
  class alone can change (a copy onto itself included).

Listing answers are read whole (capped at 32 MiB: a 1,000-key page is far smaller), rewritten and
sent with their new length. This stage answers those listings itself: it must stay the last stage
registered for them. A profile whose map is the identity, on a store that keeps its classes
(r2 on AWS S3), costs one cached lookup per request on these operations.
"""
from __future__ import annotations

import asyncio
import re
from functools import lru_cache, partial
from urllib.parse import unquote_plus
from xml.sax.saxutils import unescape

from ..observability import log
from ..rules.response import storage_class_maps
from ..server import Response
from ..upstream import dialects, quirks
from ..upstream.responses import CLASS_METADATA, copy_headers, read_capped
from . import class_records as records
from .merge import SYSTEM

_REQUEST_OPS = ("PutObject", "CopyObject", "CreateMultipartUpload")
_LIST_OPS = ("ListObjects", "ListObjectsV2", "ListParts", "ListMultipartUploads", "ListObjectVersions")
_MAX_LISTING = 32 * 1024 * 1024
_ELEMENT = re.compile(rb"<StorageClass>([^<]*)</StorageClass>")
_CONTENTS = re.compile(rb"<Contents>.*?</Contents>", re.S)
_UPLOAD = re.compile(rb"<Upload>.*?</Upload>", re.S)
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]*)</UploadId>")
_KEY = re.compile(rb"<Key>([^<]*)</Key>")
_MODIFIED = re.compile(rb"<LastModified>([^<]*)</LastModified>")
_XML_ENTITIES = {"&quot;": '"', "&apos;": "'"}


@lru_cache(maxsize=8)
def _maps(profile):
    """(client → upstream, upstream → client as bytes, the upstream classes besides STANDARD)."""
    maps = storage_class_maps(profile)
    forward, back = maps if maps is not None else ({}, {})
    others = frozenset(profile.upstream_storage_class(c) for c in profile.spec.storage_classes) - {"STANDARD"}
    return forward, {u.encode(): c.encode() for u, c in back.items()}, others


def _lacking(ex) -> frozenset[str]:
    """The profile's classes (upstream names) this store does not keep."""
    up = ex.upstream
    return frozenset(c for c in _maps(ex.gw.profile)[2] if not up.keeps_class(c))


def _upload_records(ex) -> bool:
    """Whether uploads' classes are recorded: some class is kept by the gateway, or the store keeps
    them but lists every upload as STANDARD."""
    others = _maps(ex.gw.profile)[2]
    return bool(others) and (bool(_lacking(ex)) or ex.upstream.has(quirks.UPLOAD_CLASS_NOT_LISTED))


# -- requests ------------------------------------------------------------------------------------
async def request_class(ex, proceed):
    headers = ex.upstream_headers
    value = headers.get("x-amz-storage-class")
    if ex.op == "CopyObject":
        return await _copy(ex, proceed, value)
    if value is None:
        return await proceed(ex)
    profile = ex.gw.profile
    forward = _maps(profile)[0]
    cls = forward.get(value, value)
    if value not in profile.storage_class_set:
        headers["x-amz-storage-class"] = cls      # not a class of the profile (audit / off): as sent
        return await proceed(ex)
    up = ex.upstream
    await dialects.learn_dialect(up)
    kept = not up.keeps_class(cls)
    if kept:
        del headers["x-amz-storage-class"]
        headers[CLASS_METADATA] = cls
        if ex.op == "PutObject":
            ex.add_answer_hook(partial(_record_object, cls))
    else:
        headers["x-amz-storage-class"] = cls
    if ex.op == "CreateMultipartUpload" and cls != "STANDARD" and (kept or up.has(quirks.UPLOAD_CLASS_NOT_LISTED)):
        ex.add_answer_hook(partial(_record_upload, cls), body=True)
    return await proceed(ex)


async def _copy(ex, proceed, value):
    headers = ex.upstream_headers
    profile = ex.gw.profile
    cls = _maps(profile)[0].get(value, value) if value is not None else None
    if cls is not None:
        headers["x-amz-storage-class"] = cls
    if value is not None and value not in profile.storage_class_set:
        return await proceed(ex)
    await dialects.learn_dialect(ex.upstream)
    if not _lacking(ex):
        return await proceed(ex)     # the store keeps every class: its own copy is right
    kept = cls is not None and not ex.upstream.keeps_class(cls)
    if headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
        headers.pop(CLASS_METADATA, None)         # from a MERGE of the source's metadata
    else:
        bucket, key, _ = ex.copy_source()
        status, source = await ex.head(bucket, key, ex.sse_c(source=True))
        if status < 300 and (kept or CLASS_METADATA in source):
            _replace_with(headers, source)        # else: as sent (the upstream names any error)
    if kept:
        headers.pop("x-amz-storage-class", None)
        headers[CLASS_METADATA] = cls
        ex.add_answer_hook(partial(_record_object, cls))
    return await proceed(ex)


def _replace_with(headers: dict[str, str], source) -> None:
    """A COPY as the REPLACE of the source's own metadata (system and user, not the gateway's)."""
    for k in [k for k in headers if k in SYSTEM or k.startswith("x-amz-meta-")]:
        del headers[k]
    for k, v in source.items():
        lk = k.lower()
        if (lk in SYSTEM or lk.startswith("x-amz-meta-")) and lk != CLASS_METADATA:
            headers[lk] = v
    headers["x-amz-metadata-directive"] = "REPLACE"


async def _record_object(cls, ex, resp, body):
    await records.put(ex, records.object_name(ex.bucket, ex.key), cls)


async def _record_upload(cls, ex, resp, body):
    m = _UPLOAD_ID.search(body or b"")
    if m is None:
        log.warning("upload_class_unrecorded", request_id=ex.request_id)
        return None
    upload_id = _text(m.group(1))
    await records.put(ex, records.upload_name(ex.bucket, ex.key, upload_id), cls)
    return None


async def complete(ex, proceed):
    await dialects.learn_dialect(ex.upstream)
    if _upload_records(ex):
        ex.add_answer_hook(_completed)
    return await proceed(ex)


async def _completed(ex, resp, body):
    name = records.upload_name(ex.bucket, ex.key, ex.query.get("uploadId", ""))
    cls = await records.lookup(ex, name, _maps(ex.gw.profile)[2])
    if cls is None:
        return None
    if not ex.upstream.keeps_class(cls):
        await records.put(ex, records.object_name(ex.bucket, ex.key), cls)
    await records.delete(ex, name)
    return None


async def abort(ex, proceed):
    await dialects.learn_dialect(ex.upstream)
    if _upload_records(ex):
        ex.add_answer_hook(_aborted)
    return await proceed(ex)


async def _aborted(ex, resp, body):
    await records.delete(ex, records.upload_name(ex.bucket, ex.key, ex.query.get("uploadId", "")))


# -- listings ------------------------------------------------------------------------------------
async def listing(ex, proceed):
    profile = ex.gw.profile
    back, others = _maps(profile)[1], _maps(profile)[2]
    op = ex.op
    objects = uploads = False
    if others:
        await dialects.learn_dialect(ex.upstream)
        objects = op in ("ListObjects", "ListObjectsV2") and bool(_lacking(ex))
        uploads = op in ("ListParts", "ListMultipartUploads") and _upload_records(ex)
    if not back and not objects and not uploads:
        return await proceed(ex)
    if op == "ListParts" and uploads:
        name = records.upload_name(ex.bucket, ex.key or "", ex.query.get("uploadId", ""))
        resp, upload_class = await asyncio.gather(ex.call_upstream(), records.lookup(ex, name, others))
    elif op == "ListMultipartUploads" and uploads:
        prefix = records.upload_prefix(ex.bucket, ex.query.get("prefix", ""))
        resp, listed = await asyncio.gather(ex.call_upstream(), records.listed(ex, prefix))
    else:
        resp = await ex.call_upstream()
    if resp.status != 200:
        return await ex.relay(resp)
    ex.upstream_status = resp.status
    try:
        body = await read_capped(resp, _MAX_LISTING)
    finally:
        resp.release()
    if objects:
        body = await _object_classes(ex, body, others)
    elif uploads and op == "ListParts":
        if upload_class is not None:
            body = _with_class(body, upload_class.encode(), b"</ListPartsResult>")
    elif uploads:
        body = _upload_classes(body, listed, others)
    if back:
        body = _ELEMENT.sub(lambda m: b"<StorageClass>" + back.get(m.group(1), m.group(1)) + b"</StorageClass>",
                            body)
    ex.bytes_out += len(body)
    out = Response(status=200, body=body)
    copy_headers(resp, out)
    out.headers["x-amz-request-id"] = ex.request_id
    if ex.response_headers:
        out.headers.update(ex.response_headers)
    if ex.on_answer is not None:   # stages before this one adjust the answer (multipart_checksums)
        out = await ex.run_answer_hooks(resp, out)
    rules = ex.gw.response_rules
    if rules is not None:
        rules.apply(ex.op, out.headers)
    return out


def _text(raw: bytes, url: bool = False) -> str:
    text = unescape(raw.decode("utf-8", "surrogateescape"), _XML_ENTITIES)
    return unquote_plus(text) if url else text


async def _object_classes(ex, body: bytes, others) -> bytes:
    """The page's ``<Contents>`` with the classes the gateway keeps for them."""
    blocks = list(_CONTENTS.finditer(body))
    if not blocks:
        return body
    url = b"<EncodingType>url</EncodingType>" in body
    entries = []
    for m in blocks:
        key = _KEY.search(m.group(0))
        if key is None:
            continue
        modified = _MODIFIED.search(m.group(0))
        entries.append((_text(key.group(1), url), modified.group(1).decode() if modified else None, m))
    if not entries:
        return body
    base = records.object_name(ex.bucket, "")
    first, last = entries[0][0], entries[-1][0]
    found = {}
    for name, etag, modified in await records.listed(ex, base + ex.query.get("prefix", ""),
                                                     base + first[:-1], base + last):
        cls = records.class_of(etag, others)
        if cls is not None:
            found[name[len(base):]] = (cls, records.parse_time(modified))
    if not found:
        return body
    out, at = [], 0
    for key, modified, m in entries:
        hit = found.get(key)
        if hit is None:
            continue
        written = records.parse_time(modified)
        if hit[1] is None or written is None or hit[1] < written:
            continue          # the object was written after its record: the record is outdated
        out.append(body[at:m.start()])
        out.append(_with_class(m.group(0), hit[0].encode(), b"</Contents>"))
        at = m.end()
    out.append(body[at:])
    return b"".join(out)


def _upload_classes(body: bytes, listed, others) -> bytes:
    classes = {}
    for name, etag, _ in listed:
        cls = records.class_of(etag, others)
        if cls is not None:
            classes[records.upload_id_of(name)] = cls.encode()
    if not classes:
        return body

    def one(m):
        block = m.group(0)
        upload = _UPLOAD_ID.search(block)
        cls = classes.get(_text(upload.group(1))) if upload else None
        return _with_class(block, cls, b"</Upload>") if cls else block
    return _UPLOAD.sub(one, body)


def _with_class(block: bytes, cls: bytes, end: bytes) -> bytes:
    element = b"<StorageClass>" + cls + b"</StorageClass>"
    if _ELEMENT.search(block):
        return _ELEMENT.sub(lambda _: element, block, 1)
    at = block.rfind(end)
    return block if at < 0 else block[:at] + element + block[at:]


def register(ext) -> None:
    ext.register(request_class, *_REQUEST_OPS)
    ext.register(complete, "CompleteMultipartUpload")
    ext.register(abort, "AbortMultipartUpload")
    ext.register(listing, *_LIST_OPS)
