"""Storage classes under the upstream's names: the profile's ``storage_class_map`` (client's class →
upstream's, with the gateway config's ``storage_class_map`` laid over it) applied both ways.

- Requests: ``x-amz-storage-class`` of PutObject, CopyObject and CreateMultipartUpload is rewritten
  to the upstream's class (the rules stage has checked the client's class against the profile).
  PostObject's form field is mapped by its handler.
- Answers: the ``x-amz-storage-class`` header (GetObject, HeadObject, …) is mapped back by the
  response rules (``gateway.rules.response``) in the relay; the ``<StorageClass>`` elements of
  listings (ListObjects, ListObjectsV2, ListParts, ListMultipartUploads, ListObjectVersions) here:
  such an answer is read whole (capped at 32 MiB: a 1,000-key page is far smaller), rewritten and
  sent with its new length. This stage answers those listings itself: it must stay the last stage
  registered for them.

A profile whose map is the identity (r2) costs one cached lookup per request on these operations.
"""
from __future__ import annotations

import re
from functools import lru_cache

from ..server import Response

from ..rules.response import storage_class_maps
from ..upstream.responses import copy_headers, read_capped

_REQUEST_OPS = ("PutObject", "CopyObject", "CreateMultipartUpload")
_LIST_OPS = ("ListObjects", "ListObjectsV2", "ListParts", "ListMultipartUploads", "ListObjectVersions")
_MAX_LISTING = 32 * 1024 * 1024
_ELEMENT = re.compile(rb"<StorageClass>([^<]*)</StorageClass>")


@lru_cache(maxsize=8)
def _maps(profile):
    maps = storage_class_maps(profile)
    if maps is None:
        return None
    forward, back = maps
    return forward, {u.encode(): c.encode() for u, c in back.items()}


async def request_class(ex, proceed):
    maps = _maps(ex.gw.profile)
    if maps is not None:
        value = ex.upstream_headers.get("x-amz-storage-class")
        if value is not None:
            ex.upstream_headers["x-amz-storage-class"] = maps[0].get(value, value)
    return await proceed(ex)


async def listing(ex, proceed):
    maps = _maps(ex.gw.profile)
    if maps is None or not maps[1]:
        return await proceed(ex)
    back = maps[1]
    resp = await ex.call_upstream()
    if resp.status != 200:
        return await ex.relay(resp)
    ex.upstream_status = resp.status
    try:
        body = await read_capped(resp, _MAX_LISTING)
    finally:
        resp.release()
    body = _ELEMENT.sub(lambda m: b"<StorageClass>" + back.get(m.group(1), m.group(1)) + b"</StorageClass>", body)
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


def register(ext) -> None:
    ext.register(request_class, *_REQUEST_OPS)
    ext.register(listing, *_LIST_OPS)
