"""The request as it travels through the gateway (``Exchange``): what the client sent, what the
stages decided (bucket, key, operation, key's permissions, body), and what goes upstream; with the
helpers every stage uses to ask the upstream something and to relay its answer to the client."""
from __future__ import annotations

import itertools
import os
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
from multidict import CIMultiDict

from . import addressing, forwarding
from .auth.canonical import AuthResult, canonical_query, uri_encode
from .auth.presign import strip_presign_params
from .errors import ClientClosed, S3Error, UpstreamBroken
from .observability import log
from .payload import Ingest
from .upstream.records import RESERVED_METADATA
from .server import Request, Response, StreamResponse
from .upstream import dialects, splice
from .upstream.client import UpstreamRequest
from .upstream.responses import copy_headers, read_capped, upstream_error
from .upstream.stream import LeanResponse

if TYPE_CHECKING:
    from .app import Gateway

_MAX_HOOKED_ANSWER = 8 * 1024 * 1024   # a ListParts page of 1,000 parts is far smaller
_SPLICE_FROM = 1024 * 1024      # GET bodies from this size move socket to socket in the kernel
_SSE_C = "x-amz-server-side-encryption-customer-"
_SOURCE_SSE_C = "x-amz-copy-source-server-side-encryption-customer-"


class _RequestIds:
    """16 hex digits: a random per-process prefix and a counter (no syscall per request; a forked
    worker draws a prefix of its own)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = os.urandom(3).hex().upper()
        self._count = itertools.count(int.from_bytes(os.urandom(2), "big") << 16)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFF:010X}"


new_request_id = _RequestIds()


class Exchange:
    """One client request as it travels through the gateway."""

    __slots__ = ("gw", "request", "request_id", "method", "raw_path", "raw_query", "headers", "bucket",
                 "key", "query", "op", "auth", "client_key", "ingest", "body", "upstream_status",
                 "bytes_in", "bytes_out", "started", "upstream_headers", "features", "response_headers",
                 "query_override", "upstream_request_id", "claimed_key_id", "route", "upstream",
                 "on_answer", "notes")

    def __init__(self, gw: "Gateway", request: Request) -> None:
        self.gw = gw
        self.request = request
        self.request_id = new_request_id()
        self.method = request.method
        path, _, self.raw_query = request.raw_path.partition("?")
        self.raw_path = path
        self.headers = request.header_dict   # lowercase names, repeated headers joined by ","
        self.bucket: str | None = None
        self.key: str | None = None
        self.query: dict[str, str] = {}
        self.op = "Unknown"
        self.auth: AuthResult | None = None
        self.client_key = None
        self.ingest: Ingest | None = None
        self.body: bytes | Ingest | None = None
        self.upstream_status: int | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.perf_counter()
        self.upstream_headers: dict[str, str] = {}
        self.features: list[str] = []
        self.response_headers: dict[str, str] = {}
        self.query_override: str | None = None
        # the upstream's x-amz-request-id of each call this request made, comma-separated
        self.upstream_request_id: str | None = None
        # the access key id a request named that failed authentication (readiness findings only)
        self.claimed_key_id: str | None = None
        # the bucket's route and the store that holds it (gateway/stores), set after addressing
        self.route = None
        self.upstream = None
        # stages that adjust a successful answer before it is relayed: each awaited with
        # (ex, upstream response, body) — body is the small answer read whole when a hook asked
        # for it (``answer_body``), else None — and returns the body to send (or None)
        self.on_answer: list | None = None
        self.notes: dict | None = None   # what a stage remembers between the request and its answer

    # -- what the upstream is asked ------------------------------------------------------------
    @property
    def upstream_path(self) -> str:
        if self.bucket is None:
            return "/"
        if self.key is None:
            return "/" + uri_encode(self.bucket, True)
        return f"/{uri_encode(self.bucket, True)}/{uri_encode(self.key, True)}"

    @staticmethod
    def bucket_path(bucket: str, key: str | None = None) -> str:
        path = "/" + uri_encode(bucket, True)
        return path if key is None else f"{path}/{uri_encode(key, True)}"

    def copy_source(self) -> tuple[str, str, str | None]:
        """x-amz-copy-source → (bucket, key, versionId); URL-decoded once, as S3 does. The bucket
        must be a valid name (a decoded '/' or '%' would name another bucket upstream)."""
        raw = self.headers.get("x-amz-copy-source", "")
        path, _, q = raw.partition("?")
        path = unquote(path)
        if path.startswith("/"):
            path = path[1:]
        bucket, slash, key = path.partition("/")
        if not bucket or not slash or not key:
            raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                          "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source")
        version = addressing.parse_query(q).get("versionId") if q else None
        return addressing.check_bucket(bucket), key, version

    def sse_c(self, source: bool = False) -> dict[str, str]:
        """The SSE-C headers that let the gateway read the object upstream: the request's own, or
        (``source``) the copy source's ``x-amz-copy-source-server-side-encryption-customer-*``."""
        if not source:
            return {k: v for k, v in self.upstream_headers.items() if k.startswith(_SSE_C)}
        return {_SSE_C + k[len(_SOURCE_SSE_C):]: v for k, v in self.headers.items()
                if k.startswith(_SOURCE_SSE_C)}

    async def head(self, bucket: str, key: str | None = None, headers: dict[str, str] | None = None):
        """HEAD a bucket or object on the store that holds the bucket → (status, headers)."""
        resp = await self.call_upstream("HEAD", self.bucket_path(bucket, key), "", dict(headers or {}), None,
                                        upstream=self.gw.stores.for_bucket(bucket))
        resp.release()
        return resp.status, resp.headers

    def upstream_query(self) -> str:
        if self.query_override is not None:
            return self.query_override
        raw = strip_presign_params(self.raw_query) if self.auth and self.auth.presigned else self.raw_query
        return canonical_query(first_of_each(raw)) if raw else ""

    def forwarded_headers(self) -> dict[str, str]:
        """The request headers that go upstream: the allow-list of :mod:`.forwarding`."""
        out = forwarding.forwarded(self.headers, self.auth.signed_headers if self.auth else (), self.method)
        if "content-encoding" in out:
            # as the client wrote it, less aws-chunked (spacing kept)
            stored = stored_content_encoding(self.headers.get("content-encoding", ""))
            if stored:
                out["content-encoding"] = stored
            else:
                del out["content-encoding"]
        if "x-amz-copy-source" in out:
            # re-encoded canonically: the upstream sees one unambiguous spelling of the source
            bucket, key, version = self.copy_source()
            out["x-amz-copy-source"] = self.bucket_path(bucket, key) + (
                f"?versionId={uri_encode(version, False)}" if version else "")
        return out

    async def call_upstream(self, method: str | None = None, path: str | None = None,
                            query: str | None = None, headers: dict[str, str] | None = None,
                            body="default", upstream=None) -> aiohttp.ClientResponse:
        """Send (a variant of) this request to the bucket's store (or to ``upstream``); returns the
        streaming response."""
        gw = self.gw
        store = upstream or self.upstream
        if body == "default":
            body = self.body
        # a streaming body (Ingest, PostObject's file part) carries its length and, once it has
        # refused its own bytes, the error that answers the client
        streaming = body is not None and not isinstance(body, (bytes, bytearray))
        req = UpstreamRequest(method or self.method, path or self.upstream_path,
                              self.upstream_query() if query is None else query,
                              self.upstream_headers if headers is None else headers, body,
                              body.length if streaming else None)
        t0 = time.perf_counter()
        try:
            resp = await store.send(req)
        except S3Error as e:
            if streaming and body.error is not None:
                raise body.error from None
            gw.metrics.upstream_failed(e.code, store.name)
            raise
        gw.metrics.observe_upstream(self.op, store.name, time.perf_counter() - t0)
        rid = resp.headers.get("x-amz-request-id")
        if rid is not None:
            prev = self.upstream_request_id
            self.upstream_request_id = rid if prev is None else f"{prev},{rid}"
        if streaming and body.error is not None:
            resp.close()
            raise body.error
        return resp

    async def relay(self, resp: aiohttp.ClientResponse, tap=None) -> StreamResponse:
        """Stream an upstream response to the client (errors re-rendered as our S3 XML). ``tap`` (a
        ``stores.pipe.Pipe``) is offered every body piece the client is sent, until it refuses
        one; the relay's caller closes or fails it."""
        self.upstream_status = resp.status
        try:
            if resp.status >= 400:
                raise await upstream_error(self, resp)
            fixed = await dialects.fix_response(self, resp)
            if self.on_answer is not None and resp.status < 300:
                fixed = await self.run_answer_hooks(resp, fixed)
            response_rules = self.gw.response_rules  # the profile's answer headers (rules/response.py)
            if fixed is not None:
                if response_rules is not None:
                    response_rules.apply(self.op, fixed.headers)
                return fixed
            out = StreamResponse(status=resp.status, reason=resp.reason)
            copy_headers(resp, out)
            if response_rules is not None:
                response_rules.apply(self.op, out.headers)
            out.headers["x-amz-request-id"] = self.request_id
            if self.response_headers:
                out.headers.update(self.response_headers)
            length = resp.headers.get("Content-Length")
            if length is not None:
                out.content_length = int(length)
            await out.prepare(self.request)
            if self.method == "HEAD" or resp.status in (204, 304):
                await out.write_eof()
                return out
            try:
                if tap is None and self._can_splice(resp, out):
                    return await self._relay_spliced(resp, out)
                async for data in resp.content.iter_any():
                    await out.write(data)
                    self.bytes_out += len(data)
                    if tap is not None and not tap.offer(data):
                        tap = None
            except ClientClosed:
                raise   # the client hung up (logged 499): the upstream was fine
            except (aiohttp.ClientError, OSError) as e:
                # The upstream broke mid-body: break the client's connection too, so a short body
                # can never pass for a complete one.
                self.gw.metrics.upstream_errors.labels("broken_stream", self.upstream.name).inc()
                log.warning("upstream_stream_broken", request_id=self.request_id, error=type(e).__name__)
                if self.request.transport is not None:
                    self.request.transport.abort()
                raise UpstreamBroken("upstream stream broken") from None
            await out.write_eof()
            return out
        finally:
            resp.release()

    def add_answer_hook(self, hook, body: bool = False) -> None:
        """Run ``hook(ex, resp, body)`` on a successful upstream answer before it is relayed; with
        ``body`` the answer (a small XML document) is read whole and the hook may rewrite it."""
        if self.on_answer is None:
            self.on_answer = []
        self.on_answer.append((hook, body))

    async def run_answer_hooks(self, resp, fixed: Response | None) -> Response | None:
        """The hooks, on the upstream's answer (or on ``fixed``, the answer a stage made of it)."""
        wants_body = fixed is not None or any(b for _, b in self.on_answer)
        body = fixed.body if fixed is not None else (await read_capped(resp, _MAX_HOOKED_ANSWER)
                                                     if wants_body else None)
        for hook, _ in self.on_answer:
            new = await hook(self, resp, body)
            if new is not None:
                body = new
        if not wants_body:
            return None
        if fixed is None:
            fixed = Response(status=resp.status, body=body)
            copy_headers(resp, fixed)
            fixed.headers["x-amz-request-id"] = self.request_id
        fixed.body = body
        fixed.headers.update(self.response_headers)
        return fixed

    def _can_splice(self, resp, out: StreamResponse) -> bool:
        """A big GET body on plain TCP both ends, still arriving: the kernel can move it."""
        return (self.method == "GET" and out.content_length is not None
                and out.content_length >= _SPLICE_FROM and isinstance(resp, LeanResponse)
                and self.gw.settings.splice and resp.can_splice()
                and splice.usable(self.request.transport, resp.transport))

    async def _relay_spliced(self, resp: LeanResponse, out: StreamResponse) -> StreamResponse:
        async def before(pieces: list[bytes]) -> None:
            for piece in pieces:
                await out.write(piece)
                self.bytes_out += len(piece)
            await out.send_head()   # and nothing left in the client transport's buffer

        # counted as the kernel moves them, so a client that hangs up mid-body is logged with
        # the bytes it was sent
        await resp.splice_to(self.request.transport.get_extra_info("socket"), before,
                             self.gw.settings.limits.client_send_timeout, self._sent)
        await out.write_eof()
        return out

    def _sent(self, n: int) -> None:
        self.bytes_out += n


def stored_content_encoding(value: str) -> str:
    """``Content-Encoding`` as the client wrote it, less the ``aws-chunked`` framing token:
    ``aws-chunked, deflate, gzip`` → ``deflate, gzip`` (the other tokens and their spacing kept)."""
    if "aws-chunked" not in value.lower():
        return value
    kept = [t for t in value.split(",") if t.strip().lower() != "aws-chunked"]
    return ",".join(kept).strip()


def first_of_each(raw_query: str) -> str:
    """The raw query with each parameter's first occurrence only — the one the gateway itself reads
    (``addressing.parse_query``). Repeated names would reach the upstream otherwise, and Ceph RGW
    keeps one of them when it checks the gateway's signature: ``?cors&cors`` failed as 502."""
    if "&" not in raw_query:
        return raw_query
    seen: set[str] = set()
    parts = []
    for part in raw_query.split("&"):
        name = unquote(part.partition("=")[0])
        if part and name not in seen:
            seen.add(name)
            parts.append(part)
    return "&".join(parts)


def error_response(method: str, err: S3Error, request_id: str, resource: str | None = None) -> Response:
    """``err`` as S3 answers it: XML with the request id (no body for HEAD)."""
    headers = CIMultiDict({"x-amz-request-id": request_id})
    for k, v in err.headers.items():
        if not k.startswith("_"):
            headers[k] = v
    if method == "HEAD" or err.headers.get("_no_body"):
        return Response(status=err.status, headers=headers)
    headers["Content-Type"] = "application/xml"
    return Response(status=err.status, body=err.to_xml(request_id, resource), headers=headers)
