"""Reading the upstream's answers: a small body read whole (capped), the headers a client may see,
and an upstream error turned into the gateway's own S3 error (with the dialects' wrong codes
absorbed). Relaying a body to the client is ``Exchange.relay`` (gateway/exchange.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from multidict import CIMultiDict

from .. import s3xml
from ..errors import ERRORS, S3Error
from ..observability import log

if TYPE_CHECKING:
    from ..exchange import Exchange
    from ..server import StreamResponse

#: ``x-amz-meta-*`` names the gateway writes on objects for itself: never a client's to set or to
#: see. The storage class the gateway keeps for a store that lacks it (the upstream's name): the
#: object's answers carry it as ``x-amz-storage-class``.
CLASS_METADATA = "x-amz-meta-r2gw-class"
#: The checksum it keeps (``records``): ``<algorithm> <type> [<base64 value>]``.
CHECKSUM_METADATA = "x-amz-meta-r2gw-checksum"
RESERVED_METADATA = frozenset({CLASS_METADATA, CHECKSUM_METADATA})
# response headers never relayed
DROP_RESPONSE = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
    "server", "date", "x-amz-request-id", "content-length", *RESERVED_METADATA,
})
MAX_ERROR_BODY = 64 * 1024
# an error without a body (HEAD), or without a code: the code its status implies
_STATUS_CODES = {400: "InvalidRequest", 403: "AccessDenied", 405: "MethodNotAllowed", 409: "OperationAborted",
                 411: "MissingContentLength", 412: "PreconditionFailed", 416: "InvalidRange",
                 501: "NotImplemented", 503: "ServiceUnavailable"}


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """A small upstream body read to its end; larger than ``limit`` is a BadGateway."""
    parts, size = [], 0
    async for data in resp.content.iter_any():
        size += len(data)
        if size > limit:
            raise S3Error("BadGateway", "The upstream's answer was larger than expected.")
        parts.append(data)
    return b"".join(parts)


def copy_headers(resp: aiohttp.ClientResponse, out: "StreamResponse") -> None:
    """The upstream's response headers, less hop-by-hop ones and those the gateway sets itself; a
    storage class the gateway keeps for the object is its ``x-amz-storage-class``."""
    copied = CIMultiDict(resp.headers)
    kept_class = copied.get(CLASS_METADATA)
    for name in DROP_RESPONSE:
        if name in copied:
            del copied[name]
    if kept_class is not None:
        copied["x-amz-storage-class"] = kept_class
    out.headers.extend(copied)


async def upstream_error(ex: "Exchange", resp: aiohttp.ClientResponse) -> S3Error:
    """The upstream's error, re-rendered with our request id (and dialect quirks absorbed)."""
    body = b""
    if ex.method != "HEAD":
        try:
            body = await read_capped(resp, MAX_ERROR_BODY)
        except (aiohttp.ClientError, OSError, S3Error):
            body = b""
    code, message, fields = None, None, {}
    if body:
        try:
            root = s3xml.parse(body)
            code = s3xml.find_text(root, "Code")
            message = s3xml.find_text(root, "Message")
            for name in ("BucketName", "Key", "UploadId", "Condition"):
                value = s3xml.find_text(root, name)
                if value:
                    fields[name] = value
        except S3Error:
            pass
    if resp.status >= 500:
        ex.gw.metrics.upstream_errors.labels(f"http_{resp.status}", ex.upstream.name).inc()
    err = translate_error(ex, resp.status, code, message, fields)
    if ex.method == "HEAD":
        err.headers["_no_body"] = "1"
    return err


def translate_error(ex: "Exchange", status: int, code: str | None, message: str | None,
                    fields: dict[str, str]) -> S3Error:
    """An upstream error as the client should see it:

    - an unknown upload id answered with 500 (RGW) → 404 NoSuchUpload;
    - the upstream refusing the gateway's *own* credentials → 502 BadGateway (it is not the
      client's signature that failed), logged as an operator error;
    - no code (HEAD, empty body) → the S3 code the status implies.
    """
    if status == 500 and ex.op == "CompleteMultipartUpload" and code in (None, "UnknownError", "InternalError"):
        return S3Error("NoSuchUpload", UploadId=ex.query.get("uploadId", ""))
    if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthorizationHeaderMalformed",
                "RequestTimeTooSkewed") and status in (400, 403):
        log.error("upstream_refused_gateway_credentials", code=code, operation=ex.op)
        return S3Error("BadGateway", "The upstream storage refused the gateway's credentials.", status=502)
    if not code:
        if status == 404:
            code = "NoSuchKey" if ex.key is not None else "NoSuchBucket"
        else:
            code = _STATUS_CODES.get(status, "InternalError" if status >= 500 else "InvalidRequest")
    if code not in ERRORS and status < 400:
        status = 500
    return S3Error(code, message or None, status=status, **fields)
