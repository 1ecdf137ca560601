"""What each upstream gets wrong, and how the gateway makes up for it so clients see S3's answers.

Each fix is idempotent and keyed on the operation, so it is harmless on an upstream that already
answers correctly (AWS S3, MinIO) and needed on the ones that do not (Ceph RGW, moto):

- CopyObject / UploadPartCopy: ETags in the result XML come unquoted (RGW) → quoted.
- CompleteMultipartUpload: an empty ``<ETag>`` (RGW) → filled from a HEAD of the new object.
- GetObject / HeadObject answered ``304 Not Modified`` without ``ETag`` (RGW) or without
  ``Last-Modified`` (moto): both taken from a HEAD of the object, as RFC 9110 §15.4.5 wants them
  in a 304. The HEAD is made only for such a 304, never for an answer that has them.
- Copying PUTs that RGW decodes twice (UploadPartCopy, a PUT with ``x-amz-copy-source-range``):
  the copy source's '%' escaped once more (:func:`fix_request`), so no key can crash radosgw.

Errors are translated in :mod:`.responses`; which dialect has which quirk is :mod:`.quirks`.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import aiohttp

from .. import s3xml
from ..server import Response, StreamResponse
from . import quirks
from .client import UpstreamRequest
from .responses import copy_headers, read_capped, translate_error

if TYPE_CHECKING:
    from ..exchange import Exchange

_ETAG = re.compile(rb"<ETag>([^<\"]*)</ETag>")
_EMPTY_ETAG = re.compile(rb"<ETag>(&quot;)?(&#34;)?\"?\"?(&quot;)?(&#34;)?</ETag>")
_FIX_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy", "CompleteMultipartUpload"})
_OBJECT_READS = frozenset({"GetObject", "HeadObject"})
_MAX_RESULT = 1024 * 1024
_PROBE_PATH = "/r2gw-dialect-probe"


async def fix_request(ex: "Exchange") -> None:
    """Request-side quirks, applied just before the request goes upstream.

    Ceph RGW (16.2.15) URL-decodes ``x-amz-copy-source`` a *second* time when it handles a copying
    PUT as an upload: UploadPartCopy, and any object PUT carrying ``x-amz-copy-source-range``
    (plain CopyObject decodes once, as S3). With the canonical single encoding, a source key with
    '%' followed by two non-hex characters ("anyfilename%.txt" sent as ``anyfilename%25.txt``)
    decodes to an empty key and radosgw aborts — the whole process, one client request; "a%41"
    copies the key "aA" and "a%" copies "a". For those requests the '%' of the canonical form is
    escaped once more: RGW's two decodes then give exactly the key the client named.
    """
    headers = ex.upstream_headers
    source = headers.get("x-amz-copy-source")
    if source is None or "%" not in source or ex.method != "PUT" or ex.key is None:
        return
    if "uploadId" not in ex.query and "x-amz-copy-source-range" not in headers:
        return
    upstream = ex.upstream
    await learn_dialect(upstream)  # before sending a form that could crash it
    if upstream.has(quirks.DOUBLE_DECODES_COPY_SOURCE):
        headers["x-amz-copy-source"] = source.replace("%", "%25")


async def learn_dialect(upstream) -> None:
    """Ask the upstream once, if its dialect is not known yet (``upstream.dialect`` set from the
    answer's headers), so that a quirk set can be consulted before the first real request. The
    question is a HEAD of a bucket that is not there: RGW answers ``HEAD /`` with a body that
    would spoil the keep-alive connection for the request after it."""
    if upstream.dialect is None:
        resp = await upstream.send(UpstreamRequest("HEAD", _PROBE_PATH))
        resp.release()


async def fix_response(ex: "Exchange", resp: aiohttp.ClientResponse) -> StreamResponse | None:
    """A corrected small response for the operations some upstreams answer wrongly, else None."""
    if resp.status != 200:
        if resp.status == 304 and ex.op in _OBJECT_READS \
                and ("ETag" not in resp.headers or "Last-Modified" not in resp.headers):
            return await _not_modified(ex, resp)
        return None
    if ex.op not in _FIX_OPERATIONS:
        return None
    body = await read_capped(resp, _MAX_RESULT)
    if b"<Error>" in body[:512]:  # S3 may answer 200 with an error document; pass it as an error
        root = s3xml.parse(body)
        raise translate_error(ex, 500, s3xml.find_text(root, "Code"), s3xml.find_text(root, "Message"), {})
    body = _ETAG.sub(lambda m: b'<ETag>"' + m.group(1) + b'"</ETag>' if m.group(1) else m.group(0), body)
    if ex.op == "CompleteMultipartUpload" and _EMPTY_ETAG.search(body):
        etag = await _head_etag(ex)
        if etag:
            body = _EMPTY_ETAG.sub(b"<ETag>" + etag.replace('"', "&quot;").encode() + b"</ETag>", body, 1)
    out = Response(status=200, body=body)
    copy_headers(resp, out)
    out.headers["x-amz-request-id"] = ex.request_id
    out.headers["Content-Type"] = "application/xml"
    out.headers.update(ex.response_headers)
    return out


async def _not_modified(ex: "Exchange", resp: aiohttp.ClientResponse) -> Response:
    """The upstream's 304 with the object's validators, read from a HEAD without the conditions."""
    out = Response(status=304)
    copy_headers(resp, out)
    head = await ex.call_upstream("HEAD", query="", headers=ex.sse_c(), body=None)
    try:
        if head.status == 200:
            for name in ("ETag", "Last-Modified"):
                value = head.headers.get(name)
                if value and name not in out.headers:
                    out.headers[name] = value
    finally:
        head.release()
    out.headers["x-amz-request-id"] = ex.request_id
    out.headers.update(ex.response_headers)
    return out


async def _head_etag(ex: "Exchange") -> str | None:
    resp = await ex.call_upstream("HEAD", query="", headers=ex.sse_c(), body=None)
    try:
        etag = resp.headers.get("ETag")
    finally:
        resp.release()
    if etag and not etag.startswith('"'):
        etag = f'"{etag}"'
    return etag
