"""One request's path: addressing → auth → operation → permission → rules → extensions → upstream
→ response. Each stage is a module of its own; this file only calls them in order and carries the
``Exchange`` (the request as it travels) between them.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import aiohttp

from . import addressing, observability, post_object, s3xml
from .auth.sigv4 import authenticate
from .errors import S3Error
from .exchange import Exchange, error_response
from .observability import log
from .operations import classify
from .payload import Ingest
from .server import Request, StreamResponse
from .upstream import dialects

if TYPE_CHECKING:
    from .app import Gateway

# operations whose request body is an XML document the gateway reads whole (size-capped)
XML_BODY_OPERATIONS = frozenset({
    "DeleteObjects", "CompleteMultipartUpload", "CreateBucket", "PutBucketCors",
    "PutBucketLifecycleConfiguration", "PutBucketEncryption", "RestoreObject",
})
# the root element of each of those bodies (checked before anything is forwarded)
XML_ROOTS = {
    "DeleteObjects": "Delete", "CompleteMultipartUpload": "CompleteMultipartUpload",
    "CreateBucket": "CreateBucketConfiguration", "PutBucketCors": "CORSConfiguration",
    "PutBucketLifecycleConfiguration": "LifecycleConfiguration",
    "PutBucketEncryption": "ServerSideEncryptionConfiguration", "RestoreObject": "RestoreRequest",
}
_WHOLE_BODY_BYTES = 64 * 1024   # bodies up to this size that have fully arrived are read whole


async def forward(ex: Exchange) -> StreamResponse:
    """The default last stage: send the request upstream as it is and relay the answer."""
    await dialects.fix_request(ex)
    return await ex.relay(await ex.call_upstream())


async def handle(ex: Exchange) -> StreamResponse:
    gw = ex.gw
    headers = ex.headers
    for value in headers.values():
        if not value.isascii() and any(0xDC80 <= ord(c) <= 0xDCFF for c in value):
            # bytes that are not UTF-8 (the server hands them over surrogate-escaped): they can be
            # neither verified nor forwarded as they were sent
            raise S3Error("InvalidArgument", "Header values must be valid UTF-8.")
    # 1. addressing
    addr = addressing.parse(headers.get("host", ""), ex.raw_path, gw.virtual_host_domains)
    ex.bucket, ex.key = addr.bucket, addr.key
    if ex.bucket == gw.internal_bucket:
        raise S3Error("AccessDenied")
    if ex.method == "POST" and ex.key is None and ex.bucket and not ex.raw_query \
            and headers.get("content-type", "")[:19].lower() == "multipart/form-data" \
            and "x-amz-request-route" not in headers:
        # PostObject (browser form upload): authenticated by its signed policy, not SigV4 headers
        return await post_object.handle(ex)
    # 2. authentication
    try:
        ex.auth = auth = authenticate(ex.method, ex.raw_path, ex.raw_query, headers, gw.keys.secret_for,
                                      skew_seconds=gw.settings.limits.clock_skew_seconds)
    except S3Error as e:
        gw.metrics.auth_failures.labels(e.code).inc()
        raise
    ex.client_key = gw.keys.get(auth.access_key_id)
    # 3. which operation
    ex.query = query = addressing.parse_query(ex.raw_query)
    ex.op = op = classify(ex.method, ex.bucket, ex.key, query, headers)
    # 4. may this key do it?
    source_bucket = ex.copy_source()[0] if "x-amz-copy-source" in headers else None
    if source_bucket == gw.internal_bucket:   # its records are not a client's to copy out
        raise S3Error("AccessDenied")
    ex.client_key.authorize(op, ex.bucket, source_bucket,
                            creates_bucket=headers.get("cf-create-bucket-if-missing", "").lower() == "true"
                            and op in ("PutObject", "CreateMultipartUpload"))
    # 5. compatibility rules
    gw.rules.apply(ex)
    # the body, verified on its way through
    if _has_body(ex.request, headers):
        ex.ingest = Ingest(ex.request.content, auth, headers, ex.request.content_length,
                           gw.settings.limits.client_read_timeout)
        if op in XML_BODY_OPERATIONS:
            ex.body = await ex.ingest.read_all(gw.settings.limits.max_xml_body_bytes)
            ex.bytes_in = len(ex.body)
            s3xml.check_document(ex.body, XML_ROOTS[op])
        elif ex.request.complete and ex.request.content_length is not None \
                and ex.request.content_length <= _WHOLE_BODY_BYTES:
            # a small body that has already arrived whole: verified now, before anything goes
            # upstream, and sent in one write (no body-writer task; replayable on a stale connection)
            ex.body = await ex.ingest.read_all(_WHOLE_BODY_BYTES)
            ex.bytes_in = len(ex.body)
        else:
            ex.body = ex.ingest
    ex.upstream_headers = ex.forwarded_headers()
    # 6. R2 extensions, then 7. upstream and response
    return await gw.extensions.run(ex, forward)


def _has_body(request: Request, headers: dict[str, str]) -> bool:
    if "transfer-encoding" in headers:
        return True
    length = request.content_length
    return bool(length)


def _drop_tracebacks(err: BaseException) -> None:
    """Forget where an answered error was raised. A traceback holds the frames it passed through,
    and an error kept by something in those frames (a rule's violation, the body's reader) closes
    a reference cycle: left for the collector, on every refused request. Once answered (and, if
    unexpected, logged), the tracebacks serve no one."""
    seen = 0
    e: BaseException | None = err
    while e is not None and seen < 8:
        e.__traceback__ = None
        e = e.__cause__ or e.__context__
        seen += 1


async def entry(gw: "Gateway", request: Request) -> StreamResponse:
    """The server's handler: runs the pipeline, answers errors as S3 XML, logs and counts the request."""
    internal = gw.internal_endpoint(request)
    if internal is not None:
        return await internal(request)
    ex = Exchange(gw, request)
    gw.in_flight += 1
    status = 500
    try:
        try:
            resp = await handle(ex)
        except S3Error as err:
            # a refused upload's unread body is read and dropped by the server after this answer
            # (bounded by its lingering time): closing at once would reset the connection and
            # could destroy the answer before the client reads it
            resp = error_response(ex.method, err, ex.request_id, ex.raw_path)
            _drop_tracebacks(err)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            status = 499
            raise
        except Exception as err:
            log.exception("unhandled_error", request_id=ex.request_id, operation=ex.op)
            resp = error_response(ex.method, S3Error("InternalError"), ex.request_id, ex.raw_path)
            _drop_tracebacks(err)
        status = resp.status
        if gw.draining:
            resp.force_close()
        return resp
    finally:
        gw.in_flight -= 1
        elapsed = time.perf_counter() - ex.started
        if ex.ingest is not None and ex.body is ex.ingest:
            ex.bytes_in = ex.ingest._verifier.received
        gw.metrics.observe_request(ex.op, status, elapsed, ex.bytes_in, ex.bytes_out)
        observability.access_log.request(ex.request_id, ex.auth.access_key_id if ex.auth else None, ex.op,
                                         ex.method, ex.bucket, ex.key, status, ex.upstream_status,
                                         ex.bytes_in, ex.bytes_out, round(elapsed * 1000, 3), ex.features or None)
