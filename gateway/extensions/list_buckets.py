"""ListBuckets over every store (gateway/stores/buckets.py), paginated two ways:

- R2's: ``prefix``, ``start-after``, ``continuation-token`` and ``max-keys`` (default and at most
  1000) from the query or the ``cf-*`` headers (headers win); ``IsTruncated``,
  ``NextContinuationToken`` and friends in the XML and as ``cf-*`` response headers.
- AWS's (2024), chosen by ``max-buckets`` in the query (1 to 10,000): ``continuation-token`` and
  ``prefix``; the answer's ``ContinuationToken`` is the next page's token, ``Prefix`` echoes.

Continuation tokens are the base64url of the last bucket name returned: opaque to clients and
stateless, so any replica can continue a listing (of the same merged list). A bucket-scoped key
sees only its buckets.
"""
from __future__ import annotations

import base64
import binascii

from ..server import Response

from .. import s3xml
from ..errors import S3Error
from ..s3xml import element
from ..stores.buckets import list_all

MAX_KEYS = 1000
MAX_BUCKETS = 10_000


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None


def _param(ex, name: str) -> str | None:
    return ex.headers.get("cf-" + name, ex.query.get(name))


def _count(raw: str | None, default: int, name: str, low: int, high: int) -> int:
    if raw in (None, ""):
        return default
    try:
        n = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", f"{name} must be an integer") from None
    if n < low:
        raise S3Error("InvalidArgument", f"{name} must not be negative")
    return min(n, high)


async def list_buckets(ex, proceed):
    aws_form = "max-buckets" in ex.query
    prefix = _param(ex, "prefix") or ""
    token = _param(ex, "continuation-token")
    start_after = None if aws_form else _param(ex, "start-after")
    if aws_form:
        limit = int(ex.query["max-buckets"]) if ex.query["max-buckets"].isdigit() else -1
        if not 1 <= limit <= MAX_BUCKETS:
            raise S3Error("InvalidArgument", "max-buckets must be an integer from 1 to 10000",
                          ArgumentName="max-buckets")
    else:
        limit = _count(_param(ex, "max-keys"), MAX_KEYS, "max-keys", 0, MAX_KEYS)
    everything = await list_all(ex)
    key = ex.client_key
    after = decode_token(token) if token else start_after
    selected = [b for b in everything.buckets
                if b.name.startswith(prefix) and (after is None or b.name > after) and key.sees_bucket(b.name)]
    page, truncated = selected[:limit], len(selected) > limit
    next_token = encode_token(page[-1].name) if truncated and page else None
    body = [everything.owner_xml, "<Buckets>"]
    body += [f"<Bucket>{element('Name', n)}{element('CreationDate', d)}</Bucket>" for n, d in page]
    body.append("</Buckets>")
    headers = {"Content-Type": "application/xml", "x-amz-request-id": ex.request_id}
    if aws_form:
        if next_token:
            body.append(element("ContinuationToken", next_token))
        if prefix:
            body.append(element("Prefix", prefix))
        return Response(body=s3xml.document("ListAllMyBucketsResult", body), headers=headers)
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
    body.append(element("MaxKeys", limit))
    headers["cf-is-truncated"] = "true" if truncated else "false"
    if next_token:
        headers["cf-next-continuation-token"] = next_token
    return Response(body=s3xml.document("ListAllMyBucketsResult", body), headers=headers)


def register(ext) -> None:
    ext.register(list_buckets, "ListBuckets")
