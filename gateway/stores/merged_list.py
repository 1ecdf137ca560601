"""``list: merged`` (beyond R2's Sippy, which lists the destination only): ListObjects v1 and v2 of
a migrating bucket also show the source's objects that are not copied yet, in one sorted,
paginated listing.

Both buckets are listed from the same position (prefix, delimiter, where the last page ended) with
the client's page size; the two sorted pages are merged — a key present on both is shown once, as
the destination has it; a common prefix once — and cut to the page size. The page is truncated if
anything was cut or either store has more. Where the page ended is the continuation token (v2:
the base64url of that name; v1: ``NextMarker``): stateless, so any replica continues a listing. A
position inside a common prefix skips the whole prefix, on both stores. A source bucket that is
gone lists as empty.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
from typing import NamedTuple
from urllib.parse import quote
from xml.sax.saxutils import escape

from .. import s3xml
from ..auth.canonical import uri_encode
from ..errors import S3Error
from ..rules.response import storage_class_maps
from ..server import Response
from ..s3xml import element
from ..upstream.responses import read_capped, upstream_error

MAX_KEYS = 1000
_PAST = "\U0010ffff"          # sorts after every character a key can hold: skips a whole prefix
_MAX_PAGE = 32 * 1024 * 1024


class Entry(NamedTuple):
    name: str
    xml: str                  # <Contents>…</Contents> or <CommonPrefixes>…</CommonPrefixes>
    is_key: bool


def _token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is invalid.",
                      ArgumentName="continuation-token") from None


def listing_start(after: str | None, prefix: str, delimiter: str) -> str | None:
    """Where the stores' listings start: after ``after``, past its whole common prefix if it is in one."""
    if not after:
        return None
    if delimiter and after.startswith(prefix):
        rest = after[len(prefix):]
        cut = rest.find(delimiter)
        if cut >= 0:
            return prefix + rest[:cut + len(delimiter)] + _PAST
    return after


async def listing(ex, proceed):
    route = ex.route
    if not route.list_merged:
        return await proceed(ex)
    q, v2 = ex.query, ex.op == "ListObjectsV2"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    encoding = q.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request", ArgumentName="encoding-type")
    raw_max = q.get("max-keys", "")
    if raw_max and not raw_max.isdigit():
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer range",
                      ArgumentName="max-keys")
    max_keys = min(int(raw_max), MAX_KEYS) if raw_max else MAX_KEYS
    token = q.get("continuation-token") if v2 else None
    after = _untoken(token) if token else (q.get("start-after") if v2 else q.get("marker"))
    owner = not v2 or q.get("fetch-owner") == "true"
    start = listing_start(after, prefix, delimiter)
    page_size = max(max_keys, 1)
    source = ex.gw.stores.source_of(route)
    (dest_entries, dest_more), (src_entries, src_more) = await asyncio.gather(
        _page(ex, ex.upstream, ex.bucket, prefix, delimiter, start, page_size, owner, missing_ok=False),
        _page(ex, source, route.source_bucket, prefix, delimiter, start, page_size, owner, missing_ok=True))
    merged = {e.name: e for e in src_entries}
    merged.update((e.name, e) for e in dest_entries)
    names = sorted(merged)
    page = [merged[n] for n in names[:max_keys]]
    truncated = len(names) > max_keys or dest_more or src_more
    shown = (lambda s: quote(s, safe="")) if encoding else (lambda s: s)
    body = [element("Name", ex.bucket), element("Prefix", shown(prefix))]
    if v2:
        body.append(element("KeyCount", len(page)))
        if token:
            body.append(element("ContinuationToken", token))
        if q.get("start-after"):
            body.append(element("StartAfter", shown(q["start-after"])))
    else:
        body.append(element("Marker", shown(q.get("marker", ""))))
    body.append(element("MaxKeys", max_keys))
    if delimiter:
        body.append(element("Delimiter", shown(delimiter)))
    body.append(element("IsTruncated", "true" if truncated else "false"))
    if truncated and page:
        body.append(element("NextContinuationToken", _token(page[-1].name)) if v2
                    else element("NextMarker", shown(page[-1].name)))
    if encoding:
        body.append(element("EncodingType", "url"))
    body += [e.xml.replace("\0", escape(shown(e.name))) for e in page]
    headers = {"Content-Type": "application/xml", "x-amz-request-id": ex.request_id}
    return Response(body=s3xml.document("ListBucketResult", body), headers=headers)


async def _page(ex, store, bucket: str, prefix: str, delimiter: str, start: str | None, max_keys: int,
                owner: bool, missing_ok: bool) -> tuple[list[Entry], bool]:
    params = {"list-type": "2", "max-keys": str(max_keys)}
    if prefix:
        params["prefix"] = prefix
    if delimiter:
        params["delimiter"] = delimiter
    if start:
        params["start-after"] = start
    if owner:
        params["fetch-owner"] = "true"
    query = "&".join(f"{uri_encode(k, False)}={uri_encode(v, False)}" for k, v in sorted(params.items()))
    resp = await ex.call_upstream("GET", ex.bucket_path(bucket), query, {}, None, upstream=store)
    try:
        if resp.status == 404 and missing_ok:
            return [], False
        if resp.status >= 300:
            raise await upstream_error(ex, resp)
        root = s3xml.parse(await read_capped(resp, _MAX_PAGE), limit=_MAX_PAGE)
    finally:
        resp.release()
    maps = storage_class_maps(ex.gw.profile)
    back = maps[1] if maps else {}
    entries = []
    for child in root:
        tag = s3xml.local(child.tag) if isinstance(child.tag, str) else ""
        if tag == "Contents":
            entries.append(Entry(s3xml.find_text(child, "Key") or "", _contents(child, back), True))
        elif tag == "CommonPrefixes":
            entries.append(Entry(s3xml.find_text(child, "Prefix") or "", "<CommonPrefixes><Prefix>\0</Prefix>"
                                 "</CommonPrefixes>", False))
    return entries, (s3xml.find_text(root, "IsTruncated") or "false") == "true"


def _contents(el, back: dict[str, str]) -> str:
    """A <Contents> rebuilt from the store's, the key left as a \\0 placeholder (encoded later)."""
    parts = ["<Contents><Key>\0</Key>"]
    for name in ("LastModified", "ETag", "Size"):
        value = s3xml.find_text(el, name)
        if value is not None:
            parts.append(element(name, value))
    storage = s3xml.find_text(el, "StorageClass")
    if storage is not None:
        parts.append(element("StorageClass", back.get(storage, storage)))
    for child in el:
        if isinstance(child.tag, str) and s3xml.local(child.tag) == "Owner":
            parts.append("<Owner>" + element("ID", s3xml.find_text(child, "ID") or "")
                         + element("DisplayName", s3xml.find_text(child, "DisplayName") or "") + "</Owner>")
    parts.append("</Contents>")
    return "".join(parts)
