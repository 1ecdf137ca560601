"""One S3 store as the bulk copy sees it: the few object calls it makes, on the gateway's own signing
client (:class:`~gateway.upstream.client.Upstream`), built from the config's store definitions.

Every failure is a :class:`StoreError` carrying the HTTP status and S3 error code, and whether trying
again may help (``transient``: 5xx, 429, timeouts, broken connections).
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator
from urllib.parse import unquote

import aiohttp

from .. import s3xml
from ..auth.canonical import uri_encode
from ..config import Settings
from ..errors import S3Error
from ..upstream import quirks
from ..upstream.client import Upstream, UpstreamRequest

_MAX_XML = 32 * 1024 * 1024
_TRANSIENT_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
                              "GatewayTimeout", "BadGateway", "TooManyRequests", "OperationAborted"})


class StoreError(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{status} {code}" + (f": {message}" if message else ""))

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.status in (408, 429) or self.code in _TRANSIENT_CODES


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing (or a HEAD) shows it; ``etag`` without its quotes."""
    key: str
    size: int
    etag: str
    last_modified: float      # seconds since the epoch


def _iso_time(text: str) -> float:
    # 2026-12-04T00:56:35.809Z (listings)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def http_time(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return 0.0


def unquote_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"')


def object_path(bucket: str, key: str | None = None) -> str:
    path = "/" + uri_encode(bucket, True)
    return path if key is None else path + "/" + uri_encode(key, True)


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{uri_encode(k, False)}={uri_encode(v, False)}" for k, v in sorted(params.items()))


class Store:
    """A named store (``default`` or a key of ``upstreams``) and its client."""

    def __init__(self, name: str, upstream: Upstream) -> None:
        self.name = name
        self.upstream = upstream

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> "Store":
        try:
            up = settings.store(name)
        except KeyError:
            raise ValueError(f"no store named {name!r} in the config (known: default, "
                             f"{', '.join(sorted(settings.upstreams)) or '-'})") from None
        if up.endpoint is None:
            raise ValueError(f"store {name!r} has no endpoint (the embedded upstream cannot be migrated)")
        return cls(name, Upstream.from_settings(up, name=name))

    async def start(self) -> None:
        await self.upstream.start()

    async def close(self) -> None:
        await self.upstream.close()

    # -- plumbing ------------------------------------------------------------------------------
    async def _send(self, method: str, path: str, query: str = "", headers: dict | None = None,
                    body=None, length: int | None = None):
        try:
            return await self.upstream.send(UpstreamRequest(method, path, query, headers or {}, body, length))
        except S3Error as e:
            raise StoreError(e.status, e.code, e.message) from None
        except (aiohttp.ClientError, OSError) as e:
            raise StoreError(503, "ConnectionError", type(e).__name__) from None

    @staticmethod
    async def _read(resp, limit: int = _MAX_XML) -> bytes:
        parts, size = [], 0
        try:
            async for data in resp.content.iter_any():
                size += len(data)
                if size > limit:
                    raise StoreError(502, "BadGateway", "answer larger than expected")
                parts.append(data)
        except (aiohttp.ClientError, OSError) as e:
            raise StoreError(503, "ConnectionError", type(e).__name__) from None
        finally:
            resp.release()
        return b"".join(parts)

    async def _error(self, resp, method: str) -> StoreError:
        body = b"" if method == "HEAD" else await self._read(resp, 64 * 1024)
        resp.release()
        code, message = None, ""
        if body:
            try:
                root = s3xml.parse(body)
                code, message = s3xml.find_text(root, "Code"), s3xml.find_text(root, "Message") or ""
            except S3Error:
                pass
        return StoreError(resp.status, code or _STATUS_CODE.get(resp.status, f"HTTP{resp.status}"), message)

    async def call(self, method: str, path: str, query: str = "", headers: dict | None = None,
                   body=None, length: int | None = None, ok=(200,)):
        """Send; an answer outside ``ok`` is raised as a StoreError (its body read and released)."""
        resp = await self._send(method, path, query, headers, body, length)
        if resp.status not in ok:
            raise await self._error(resp, method)
        return resp

    # -- objects -------------------------------------------------------------------------------
    async def list_page(self, bucket: str, prefix: str = "", token: str | None = None,
                        max_keys: int = 1000) -> tuple[list[ObjectInfo], str | None]:
        """One ListObjectsV2 page (keys URL-encoded on the wire, so any key survives XML)."""
        params = {"list-type": "2", "max-keys": str(max_keys), "encoding-type": "url"}
        if prefix:
            params["prefix"] = prefix
        if token:
            params["continuation-token"] = token
        resp = await self.call("GET", object_path(bucket), _query(params))
        root = s3xml.parse(await self._read(resp), limit=_MAX_XML)
        encoded = (s3xml.find_text(root, "EncodingType") or "").lower() == "url"
        items = []
        for node in root:
            if not isinstance(node.tag, str) or s3xml.local(node.tag) != "Contents":
                continue
            key = s3xml.find_text(node, "Key") or ""
            items.append(ObjectInfo(unquote(key) if encoded else key,
                                    int(s3xml.find_text(node, "Size") or 0),
                                    unquote_etag(s3xml.find_text(node, "ETag")),
                                    _iso_time(s3xml.find_text(node, "LastModified") or "1970-01-01T00:00:00Z")))
        truncated = (s3xml.find_text(root, "IsTruncated") or "").lower() == "true"
        nxt = s3xml.find_text(root, "NextContinuationToken") if truncated else None
        if truncated and not nxt:
            raise StoreError(502, "BadGateway", "truncated listing without a continuation token")
        return items, nxt

    async def list(self, bucket: str, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        token = None
        while True:
            items, token = await self.list_page(bucket, prefix, token)
            for item in items:
                yield item
            if token is None:
                return

    async def head(self, bucket: str, key: str) -> "tuple[ObjectInfo, dict] | None":
        """The object's listing facts and its response headers; None when it does not exist."""
        resp = await self._send("HEAD", object_path(bucket, key))
        resp.release()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise StoreError(resp.status, _STATUS_CODE.get(resp.status, f"HTTP{resp.status}"))
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return ObjectInfo(key, int(headers.get("content-length", 0)), unquote_etag(headers.get("etag")),
                          http_time(headers.get("last-modified"))), headers

    async def get(self, bucket: str, key: str, etag: str | None = None):
        """A streaming GET of the version whose ETag is ``etag`` (412 if it changed)."""
        headers = {"if-match": f'"{etag}"'} if etag else {}
        return await self.call("GET", object_path(bucket, key), headers=headers)

    def condition(self, etag: str | None) -> dict[str, str]:
        """The write condition: only if absent (``etag`` None), or only if still ``etag``."""
        if etag is None:
            return {"if-none-match": "*"}
        return {"if-match": etag if self.upstream.has(quirks.UNQUOTED_IF_MATCH) else f'"{etag}"'}

    async def put(self, bucket: str, key: str, body, length: int, headers: dict[str, str]) -> dict:
        resp = await self.call("PUT", object_path(bucket, key), "", headers, body if length else None, length)
        resp.release()
        return {k.lower(): v for k, v in resp.headers.items()}

    async def create_upload(self, bucket: str, key: str, headers: dict[str, str]) -> str:
        resp = await self.call("POST", object_path(bucket, key), "uploads=", headers)
        upload_id = s3xml.find_text(s3xml.parse(await self._read(resp)), "UploadId")
        if not upload_id:
            raise StoreError(502, "BadGateway", "CreateMultipartUpload answered no UploadId")
        return upload_id

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes,
                          md5_b64: str) -> str:
        query = _query({"partNumber": str(number), "uploadId": upload_id})
        resp = await self.call("PUT", object_path(bucket, key), query, {"content-md5": md5_b64}, data, len(data))
        resp.release()
        return unquote_etag(resp.headers.get("ETag"))

    async def complete_upload(self, bucket: str, key: str, upload_id: str, etags: list[str],
                              headers: dict[str, str]) -> str:
        body = s3xml.document("CompleteMultipartUpload", (
            f"<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>" for n, e in enumerate(etags, 1)))
        resp = await self.call("POST", object_path(bucket, key), _query({"uploadId": upload_id}),
                               {"content-type": "application/xml", **headers}, body)
        data = await self._read(resp)
        root = s3xml.parse(data)
        if s3xml.local(root.tag) == "Error":   # S3 may answer 200 with an error document
            raise StoreError(500, s3xml.find_text(root, "Code") or "InternalError",
                             s3xml.find_text(root, "Message") or "")
        return unquote_etag(s3xml.find_text(root, "ETag"))

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        resp = await self.call("DELETE", object_path(bucket, key), _query({"uploadId": upload_id}),
                               ok=(200, 204, 404))
        resp.release()

    async def delete(self, bucket: str, key: str) -> None:
        resp = await self.call("DELETE", object_path(bucket, key), ok=(200, 204, 404))
        resp.release()


_STATUS_CODE = {400: "InvalidRequest", 403: "AccessDenied", 404: "NoSuchKey", 409: "Conflict",
                412: "PreconditionFailed", 416: "InvalidRange", 500: "InternalError", 503: "ServiceUnavailable"}
