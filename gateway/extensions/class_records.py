"""The gateway's records of storage classes a store does not show in its listings, kept as empty-ish
objects in its internal bucket (``upstream.internal_bucket``, out of every client's reach), so that
every gateway replica reads the same ones.

- ``c/<bucket>/<key>``: the object ``key`` is in the class the record names (the gateway keeps it:
  the store has no such class). Named by key, so one listing of the internal bucket covers a page
  of a bucket's listing. A record holds only while it is at least as recent as the object: a later
  write of the key (in another class, or a deletion and a new object) outdates it without anyone
  deleting it, so plain PutObjects pay nothing.
- ``u/<bucket>/<key>/<upload id>``: the multipart upload is in the class the record names (for
  ListParts and ListMultipartUploads, which stores such as RGW 16 answer with STANDARD whatever
  the class). Deleted when the upload is completed or aborted through the gateway.

A record's body is the class name, so its ETag (the MD5 of the body) says the class: listings
give names, ETags and dates, never bodies. Names longer than the store's 1,024-byte key limit are not
recorded (such an object's class is still right in HEAD/GET, which read the object's metadata).
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable
from urllib.parse import quote, unquote, unquote_plus

from .. import s3xml
from ..auth.canonical import uri_encode
from ..errors import S3Error
from ..observability import log
from ..upstream.responses import read_capped

if TYPE_CHECKING:
    from ..exchange import Exchange

MAX_NAME_BYTES = 1024
_MAX_PAGES = 10                 # a records listing reads at most 10,000 names per answer
_MAX_LISTING = 8 * 1024 * 1024


def object_name(bucket: str, key: str) -> str:
    return f"c/{bucket}/{key}"


def upload_name(bucket: str, key: str, upload_id: str) -> str:
    return f"u/{bucket}/{key}/{quote(upload_id, safe='')}"


def upload_prefix(bucket: str, key_prefix: str = "") -> str:
    return f"u/{bucket}/{key_prefix}"


def upload_id_of(name: str) -> str:
    return unquote(name.rpartition("/")[2])


@lru_cache(maxsize=64)
def _by_etag(classes: tuple[str, ...]) -> dict[str, str]:
    return {hashlib.md5(c.encode()).hexdigest(): c for c in classes}


def class_of(etag: str | None, classes: Iterable[str]) -> str | None:
    """The class a record's ETag says (one of ``classes``), else None."""
    if not etag:
        return None
    return _by_etag(tuple(sorted(classes))).get(etag.strip('"'))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _path(ex: "Exchange", name: str | None = None) -> str:
    root = "/" + uri_encode(ex.upstream.internal_bucket, True)
    return root if name is None else root + "/" + uri_encode(name, True)


async def put(ex: "Exchange", name: str, storage_class: str) -> None:
    """Write a record (the internal bucket is made on first use). A record that cannot be written
    is logged: the object itself carries its class, only listings lose it."""
    if len(name.encode()) > MAX_NAME_BYTES:
        return
    body = storage_class.encode()
    try:
        for attempt in (0, 1):
            resp = await ex.call_upstream("PUT", _path(ex, name), "", {"content-type": "text/plain"}, body)
            status = resp.status
            resp.release()
            if status == 404 and attempt == 0:
                made = await ex.call_upstream("PUT", _path(ex), "", {}, None)
                made.release()
                continue
            if status >= 300:
                log.warning("class_record_not_written", request_id=ex.request_id, status=status)
            return
    except S3Error as e:
        log.warning("class_record_not_written", request_id=ex.request_id, error=e.code)


async def delete(ex: "Exchange", name: str) -> None:
    if len(name.encode()) > MAX_NAME_BYTES:
        return
    try:
        resp = await ex.call_upstream("DELETE", _path(ex, name), "", {}, None)
        resp.release()
    except S3Error:
        pass    # a record left behind names an upload that no longer exists: never read again


async def lookup(ex: "Exchange", name: str, classes: Iterable[str]) -> str | None:
    """The class one record names, or None when there is none."""
    if len(name.encode()) > MAX_NAME_BYTES:
        return None
    resp = await ex.call_upstream("HEAD", _path(ex, name), "", {}, None)
    try:
        return class_of(resp.headers.get("ETag"), classes) if resp.status == 200 else None
    finally:
        resp.release()


async def listed(ex: "Exchange", prefix: str, start_after: str | None = None,
                 stop_after: str | None = None) -> list[tuple[str, str | None, str | None]]:
    """(name, ETag, LastModified) of the records under ``prefix`` after ``start_after``, up to the
    first name past ``stop_after`` (or ``_MAX_PAGES`` pages)."""
    out: list[tuple[str, str | None, str | None]] = []
    token = None
    for _ in range(_MAX_PAGES):
        query = ["encoding-type=url", "list-type=2", "max-keys=1000", "prefix=" + uri_encode(prefix, False)]
        if token:
            query.insert(0, "continuation-token=" + uri_encode(token, False))
        elif start_after:
            query.append("start-after=" + uri_encode(start_after, False))
        resp = await ex.call_upstream("GET", _path(ex), "&".join(query), {}, None)
        try:
            if resp.status == 404:
                return out            # no internal bucket yet: no records
            if resp.status != 200:
                log.warning("class_records_unread", request_id=ex.request_id, status=resp.status)
                return out
            root = s3xml.parse(await read_capped(resp, _MAX_LISTING), limit=_MAX_LISTING)
        finally:
            resp.release()
        for child in root:
            if isinstance(child.tag, str) and s3xml.local(child.tag) == "Contents":
                name = unquote_plus(s3xml.find_text(child, "Key") or "")
                out.append((name, s3xml.find_text(child, "ETag"), s3xml.find_text(child, "LastModified")))
                if stop_after is not None and name > stop_after:
                    return out
        token = s3xml.find_text(root, "NextContinuationToken")
        if (s3xml.find_text(root, "IsTruncated") or "false") != "true" or not token:
            break
    return out
