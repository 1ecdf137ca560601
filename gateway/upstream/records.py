"""What the gateway keeps for itself upstream, where the store lacks a feature: small objects in its
internal bucket (``upstream.internal_bucket``, refused to every client request and left out of
ListBuckets), and metadata on the objects themselves under names no client may set or see.

Every gateway replica reads the same records: nothing is kept in a process's memory.

- ``RESERVED_METADATA``: ``x-amz-meta-*`` names the gateway writes on objects. Dropped from every
  client request (``Exchange.forwarded_headers``) and from every answer (``responses.DROP_RESPONSE``).
- Records are addressed by a path under the internal bucket; a record body is JSON (or empty, when
  all it says is in its name, so that one listing reads many).
"""
from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING

from .. import s3xml
from ..auth.canonical import uri_encode
from ..errors import S3Error
from ..observability import log
from .responses import CHECKSUM_METADATA, RESERVED_METADATA, read_capped

if TYPE_CHECKING:
    from ..exchange import Exchange

__all__ = ["CHECKSUM_METADATA", "RESERVED_METADATA", "put", "put_json", "get_json", "list_names",
           "delete_names"]

_MAX_RECORD = 64 * 1024
_MAX_LISTING = 8 * 1024 * 1024


def _path(ex: "Exchange", name: str | None = None) -> str:
    root = "/" + uri_encode(ex.upstream.internal_bucket, True)
    return root if name is None else root + "/" + uri_encode(name, True)


async def put(ex: "Exchange", name: str, body: bytes = b"", content_type: str = "application/json") -> None:
    """Write one record (the internal bucket is created on first use). An upstream that refuses
    it is an error: a record the gateway promised must exist."""
    for attempt in (0, 1):
        resp = await ex.call_upstream("PUT", _path(ex, name), "", {"content-type": content_type}, body)
        status = resp.status
        resp.release()
        if status == 404 and attempt == 0:
            r = await ex.call_upstream("PUT", _path(ex), "", {}, None)
            r.release()
            continue
        if status >= 300:
            log.warning("record_unwritten", request_id=ex.request_id, upstream=ex.upstream.name, status=status,
                        bucket=ex.upstream.internal_bucket,
                        hint="403: the internal bucket belongs to another account of this store "
                             "(set internal_bucket)" if status == 403 else None)
            raise S3Error("ServiceUnavailable", "The gateway could not keep its record upstream.")
        return


async def put_json(ex: "Exchange", name: str, record: dict) -> None:
    await put(ex, name, json.dumps(record, separators=(",", ":")).encode())


async def get_json(ex: "Exchange", name: str) -> dict | None:
    """A record, or None when there is none (or it is unreadable)."""
    resp = await ex.call_upstream("GET", _path(ex, name), "", {}, None)
    try:
        if resp.status != 200:
            return None
        value = json.loads(await read_capped(resp, _MAX_RECORD))
        return value if isinstance(value, dict) else None
    except (ValueError, S3Error):
        return None
    finally:
        resp.release()


async def list_names(ex: "Exchange", prefix: str, limit: int = 20_000) -> list[str]:
    """The names of the records under ``prefix`` (every page, up to ``limit``)."""
    names: list[str] = []
    token = None
    while len(names) < limit:
        query = "list-type=2&max-keys=1000&prefix=" + uri_encode(prefix, False)
        if token:
            query = "continuation-token=" + uri_encode(token, False) + "&" + query
        resp = await ex.call_upstream("GET", _path(ex), query, {}, None)
        try:
            if resp.status == 404:
                return names          # no internal bucket yet: no records
            if resp.status != 200:
                log.warning("records_unreadable", request_id=ex.request_id, upstream=ex.upstream.name,
                            status=resp.status, bucket=ex.upstream.internal_bucket,
                            hint="403: the internal bucket belongs to another account of this store "
                                 "(set internal_bucket)" if resp.status == 403 else None)
                raise S3Error("ServiceUnavailable", "The gateway could not read its records upstream.")
            root = s3xml.parse(await read_capped(resp, _MAX_LISTING), limit=_MAX_LISTING)
        finally:
            resp.release()
        for child in root:
            if isinstance(child.tag, str) and s3xml.local(child.tag) == "Contents":
                key = s3xml.find_text(child, "Key")
                if key is not None:
                    names.append(key)
        token = s3xml.find_text(root, "NextContinuationToken")
        if (s3xml.find_text(root, "IsTruncated") or "false") != "true" or not token:
            break
    return names


async def delete_names(ex: "Exchange", names: list[str]) -> None:
    """Remove records (best effort: a record left behind is ignored by its readers)."""
    for i in range(0, len(names), 1000):
        batch = names[i:i + 1000]
        body = s3xml.document("Delete", ["<Quiet>true</Quiet>"] + [
            "<Object>" + s3xml.element("Key", n) + "</Object>" for n in batch])
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        try:
            resp = await ex.call_upstream("POST", _path(ex), "delete=",
                                          {"content-type": "application/xml", "content-md5": md5}, body)
            try:
                answer = await read_capped(resp, _MAX_LISTING) if resp.status == 200 else b""
            finally:
                resp.release()
        except S3Error as e:
            log.warning("internal_records_not_deleted", records=len(batch), error=e.code)
            return
        if resp.status != 200 or b"<Error>" in answer:
            log.warning("internal_records_not_deleted", records=len(batch), status=resp.status,
                        answer=answer[:300].decode("utf-8", "replace"))
