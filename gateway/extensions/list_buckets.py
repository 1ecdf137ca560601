"""ListBuckets with R2's pagination: ``prefix``, ``start-after``, ``continuation-token`` and
``max-keys`` from the query or the ``cf-*`` headers (headers win); ``IsTruncated``,
``NextContinuationToken`` and friends in the XML and as ``cf-*`` response headers.

Continuation tokens are the base64url of the last bucket name returned: opaque to clients and
stateless, so any replica can continue a listing. A bucket-scoped key sees only its buckets.
"""
from __future__ import annotations

import base64
import binascii

from ..server import Response

from .. import s3xml
from ..errors import S3Error
from ..upstream.responses import read_capped, upstream_error
from ..s3xml import element

MAX_KEYS = 1000


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


def _param(ex, name: str) -> str | None:
    return ex.headers.get("cf-" + name, ex.query.get(name))


async def list_buckets(ex, proceed):
    prefix = _param(ex, "prefix") or ""
    start_after = _param(ex, "start-after")
    token = _param(ex, "continuation-token")
    raw_max = _param(ex, "max-keys")
    try:
        max_keys = MAX_KEYS if raw_max in (None, "") else int(raw_max)
    except ValueError:
        raise S3Error("InvalidArgument", "max-keys must be an integer") from None
    if not 0 <= max_keys:
        raise S3Error("InvalidArgument", "max-keys must not be negative")
    max_keys = min(max_keys, MAX_KEYS)
    resp = await ex.call_upstream("GET", "/", "", {}, None)
    ex.upstream_status = resp.status
    try:
        if resp.status >= 400:
            raise await upstream_error(ex, resp)
        root = s3xml.parse(await read_capped(resp, 64 * 1024 * 1024), limit=64 * 1024 * 1024)
    finally:
        resp.release()
    owner_xml = ""
    buckets: list[tuple[str, str]] = []
    for child in root:
        name = s3xml.local(child.tag) if isinstance(child.tag, str) else ""
        if name == "Owner":
            owner_xml = "<Owner>" + element("ID", s3xml.find_text(child, "ID") or "") + \
                element("DisplayName", s3xml.find_text(child, "DisplayName") or "") + "</Owner>"
        elif name == "Buckets":
            for b in child:
                buckets.append((s3xml.find_text(b, "Name") or "", s3xml.find_text(b, "CreationDate") or ""))
    key = ex.client_key
    buckets.sort()
    after = decode_token(token) if token else start_after
    hidden = ex.gw.internal_bucket
    selected = [b for b in buckets
                if b[0] != hidden and b[0].startswith(prefix) and (after is None or b[0] > after) and key.sees_bucket(b[0])]
    page, truncated = selected[:max_keys], len(selected) > max_keys
    next_token = encode_token(page[-1][0]) if truncated and page else None
    body = [owner_xml, "<Buckets>"]
    body += [f"<Bucket>{element('Name', n)}{element('CreationDate', d)}</Bucket>" for n, d in page]
    body.append("</Buckets>")
    body.append(element("IsTruncated", "true" if truncated else "false"))
    if next_token:
        body.append(element("NextContinuationToken", next_token))
    if token:
        body.append(element("ContinuationToken", token))
    if start_after:
        body.append(element("StartAfter", start_after))
    if prefix:
        body.append(element("Prefix", prefix))
    body.append(element("KeyCount", len(page)))
    body.append(element("MaxKeys", max_keys))
    out = Response(body=s3xml.document("ListAllMyBucketsResult", body),
                       headers={"Content-Type": "application/xml", "x-amz-request-id": ex.request_id,
                                "cf-is-truncated": "true" if truncated else "false"})
    if next_token:
        out.headers["cf-next-continuation-token"] = next_token
    return out


def register(ext) -> None:
    ext.register(list_buckets, "ListBuckets")
