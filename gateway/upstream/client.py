"""The upstream S3 store: a keep-alive connection pool, re-signing, streaming both ways.

Errors reaching the upstream become S3 errors: an unreachable upstream is ``503
ServiceUnavailable``, a timeout ``504 GatewayTimeout``. A request body whose checks fail raises from
inside the body iterator; the connection is then dropped mid-body so the upstream commits nothing,
and the body's own error (``BadDigest``, ``SignatureDoesNotMatch``, …) answers the client.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator

import aiohttp
from yarl import URL

from .. import config
from ..errors import S3Error
from . import quirks
from .credentials import ChainCredentials
from .signer import EMPTY_SHA256, UNSIGNED, UpstreamSigner
from .pool import ConnectError, LeanPool


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    path: str            # canonical, already URI-encoded: /bucket/key
    query: str = ""      # canonical, already encoded and sorted
    headers: dict[str, str] | None = None   # lowercase names
    body: "AsyncIterator[bytes] | bytes | None" = None
    content_length: int | None = None


class Upstream:
    """One upstream endpoint (a *store*): ``send()`` signs and sends, returning the streaming response.

    ``name`` is the store's name in the config (``default`` for ``upstream``), a metrics label;
    ``internal_bucket`` the gateway's own hidden bucket on it; ``credentials`` (a keyless store)
    the AWS chain that keeps the signer's keys current (gateway/upstream/credentials.py)."""

    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str, region: str,
                 *, max_connections: int = 256, connect_timeout: float = 5.0,
                 read_timeout: float = 300.0, verify_tls: bool = True, dialect: str = "auto",
                 transport: str = "aiohttp", name: str = "default", internal_bucket: str = "r2gw-internal",
                 credentials: ChainCredentials | None = None, storage_classes=None) -> None:
        url = URL(endpoint)
        self.name = name
        self.internal_bucket = internal_bucket
        self.credentials = credentials
        self.endpoint = endpoint
        self.host = url.raw_authority
        self.signer = UpstreamSigner(access_key_id, secret_access_key, region)
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_connect=connect_timeout, sock_read=read_timeout)
        self._verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None
        # "lean": gateway/upstream/pool.py instead of aiohttp's client (same errors, less CPU)
        self.transport = transport
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._lean: LeanPool | None = None
        self.dialect = dialect if dialect != "auto" else None
        # the classes this store keeps (config), or None: by dialect (quirks.STANDARD_CLASS_ONLY)
        self.storage_classes = frozenset(storage_classes) if storage_classes is not None else None

    @classmethod
    def from_settings(cls, up: "config.Upstream", endpoint: str | None = None,
                      access_key_id: str | None = None, secret_access_key: str | None = None,
                      name: str = "default") -> "Upstream":
        """A client for one configured store (``endpoint`` and keys override the settings'); a store
        with an endpoint and no keys signs with the AWS chain's credentials (resolved at ``start``)."""
        chain = None
        if up.uses_aws_chain and not access_key_id:
            chain = ChainCredentials(name, up.aws_profile)
        return cls(endpoint or up.endpoint, access_key_id or up.access_key_id or "",
                   secret_access_key or (up.secret_access_key.get_secret_value() if up.secret_access_key else ""),
                   up.region, max_connections=up.max_connections, connect_timeout=up.timeouts.connect,
                   read_timeout=up.timeouts.read, verify_tls=up.verify_tls, dialect=up.dialect,
                   transport=up.transport, name=name, internal_bucket=up.internal_bucket, credentials=chain,
                   storage_classes=up.storage_classes)

    async def start(self) -> None:
        if self.credentials is not None:
            await self.credentials.start(self.signer)
        if self.transport == "lean":
            self._lean = LeanPool(self.endpoint, max_connections=self._max_connections,
                                  connect_timeout=self._connect_timeout, read_timeout=self._read_timeout,
                                  verify_tls=self._verify_tls, keepalive_timeout=30)
            return
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0,
                                         keepalive_timeout=30, ssl=None if self._verify_tls else False,
                                         enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            base_url=None, connector=connector, timeout=self._timeout, auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(), read_bufsize=256 * 1024,
            # RFC 2047-encoded metadata makes long header lines (8 KiB decoded ≈ 11 KiB encoded)
            max_line_size=64 * 1024, max_field_size=64 * 1024)

    async def close(self) -> None:
        if self.credentials is not None:
            await self.credentials.close()
        if self._lean is not None:
            await self._lean.close()
            self._lean = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def has(self, quirk: frozenset[str]) -> bool:
        """Whether this upstream's dialect is in ``quirk`` (a set from :mod:`.quirks`)."""
        return self.dialect in quirk

    def keeps_class(self, storage_class: str) -> bool:
        """Whether this store keeps objects in ``storage_class`` (an upstream name) itself."""
        if storage_class == "STANDARD":
            return True
        if self.storage_classes is not None:
            return storage_class in self.storage_classes
        return not self.has(quirks.STANDARD_CLASS_ONLY)

    @property
    def pool_size(self) -> int:
        """Connections open to the upstream now (idle and busy), for metrics and leak tests."""
        if self._lean is not None:
            return self._lean.size
        conn = self._session.connector if self._session else None
        if conn is None:
            return 0
        idle = sum(len(v) for v in getattr(conn, "_conns", {}).values())
        # every acquired connection (and connect in progress); the per-host sets stay empty
        # because limit_per_host is 0
        busy = len(getattr(conn, "_acquired", ()))
        return idle + busy

    async def send(self, req: UpstreamRequest) -> aiohttp.ClientResponse:
        assert self._session is not None or self._lean is not None, "Upstream.start() was not awaited"
        headers = dict(req.headers or ())
        headers["host"] = self.host
        body = req.body
        if body is None:
            payload_hash = EMPTY_SHA256
            if req.method in ("PUT", "POST"):
                headers["content-length"] = "0"
        else:
            payload_hash = UNSIGNED
            length = len(body) if isinstance(body, (bytes, bytearray)) else req.content_length
            if length is not None:
                headers["content-length"] = str(length)
        self.signer.sign(req.method, req.path, req.query, headers, payload_hash)
        if self._lean is not None:
            target = f"{req.path}?{req.query}" if req.query else req.path
            lean = self._lean

            def issue():
                return lean.request(req.method, target, headers, body)
        else:
            url = URL(f"{self.endpoint}{req.path}{'?' + req.query if req.query else ''}", encoded=True)
            session = self._session

            def issue():
                return session.request(req.method, url, headers=headers, data=body,
                                       allow_redirects=False, compress=None, chunked=None)
        try:
            try:
                resp = await issue()
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
                # aiohttp's client resends an idempotent request on a broken keep-alive connection
                # itself (once, and never a POST); the lean pool leaves the choice here
                if self._lean is None or not may_resend(req.method, body, e):
                    raise
                resp = await issue()
        except asyncio.TimeoutError:
            raise S3Error("GatewayTimeout") from None
        except (aiohttp.ClientConnectorError, ConnectError):
            raise S3Error("ServiceUnavailable", "The upstream storage is not reachable.") from None
        except (aiohttp.ClientError, OSError) as e:
            cause = e.__cause__ or e.__context__
            if isinstance(cause, S3Error):
                raise cause from None
            raise S3Error("ServiceUnavailable", "The connection to the upstream storage failed.") from None
        if self.dialect is None:
            self.dialect = guess_dialect(resp.headers)
        return resp


#: Methods whose request, executed twice, leaves what executing it once leaves (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def may_resend(method: str, body, error: BaseException) -> bool:
    """Whether a request whose connection broke may be sent again, once, on another connection.

    Only when no byte of the answer came back (the lean pool's ``ServerDisconnectedError``: the
    connection ended before any byte), the body is one the gateway still holds whole (or none), and
    the method is idempotent. A POST
    (CompleteMultipartUpload, DeleteObjects, CreateMultipartUpload, RestoreObject, …) is never sent
    twice: the upstream may have executed it before the connection broke. (The lean pool checks a
    pooled connection for an end the upstream already sent before it writes a POST on it, so a
    stale keep-alive connection does not fail those.) Its ``ClientOSError`` (the connection broke
    while a streaming body was being sent) is never resent.
    """
    if method not in IDEMPOTENT or not isinstance(error, aiohttp.ServerDisconnectedError):
        return False
    return body is None or isinstance(body, (bytes, bytearray))   # a streaming body is gone once sent


def guess_dialect(headers) -> str:
    """Which S3 implementation answered, from its response headers."""
    server = headers.get("Server", "")
    request_id = headers.get("x-amz-request-id", "")
    if "MinIO" in server:
        return "minio"
    if request_id.startswith("tx0") or "Ceph" in server:
        return "ceph"
    if server == "AmazonS3":
        return "aws"
    if "Werkzeug" in server or "moto" in server.lower():
        return "moto"
    return "s3"
