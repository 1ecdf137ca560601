"""Hand-built S3 requests for tests that need what SDKs will not send: tampered chunks, wrong
trailers, skewed clocks. Signing uses botocore (an independent implementation of SigV4), and the
aws-chunked encoder follows AWS's published format, so the gateway's own code is not its oracle.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import zlib
from unittest import mock
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY = hashlib.sha256(b"").hexdigest()


def sign(method: str, url: str, headers: dict[str, str], payload_hash: str, ak: str, sk: str,
         region: str = "auto", when: dt.datetime | None = None) -> dict[str, str]:
    """SigV4-sign with botocore; returns the headers to send (Authorization, X-Amz-Date, …)."""
    req = AWSRequest(method=method, url=url, headers=dict(headers))
    req.headers["X-Amz-Content-SHA256"] = payload_hash
    class _Auth(S3SigV4Auth):  # botocore would hash the (absent) body: sign the given value
        def payload(self, request):
            return payload_hash

    auth = _Auth(Credentials(ak, sk), "s3", region)
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    return dict(req.headers.items())


def _key(sk: str, date: str, region: str) -> bytes:
    k = hmac.new(("AWS4" + sk).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def aws_chunked(data: bytes, *, seed_signature: str | None, amz_date: str, sk: str, region: str,
                chunk: int = 64 * 1024, trailer: tuple[str, str] | None = None,
                signed_trailer: bool = False, tamper_chunk: int | None = None) -> bytes:
    """Encode ``data`` as aws-chunked. With ``seed_signature`` every chunk is signed (chained);
    ``trailer`` = (header name, base64 value) appends a trailing checksum. ``tamper_chunk`` flips
    a byte in that chunk *after* signing it."""
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    key = _key(sk, amz_date[:8], region)
    prev = seed_signature
    out = bytearray()
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for n, piece in enumerate(pieces):
        ext = b""
        if seed_signature is not None:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY,
                             hashlib.sha256(piece).hexdigest()])
            prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            ext = b";chunk-signature=" + prev.encode()
        if tamper_chunk == n and piece:
            piece = bytes([piece[0] ^ 1]) + piece[1:]
        out += f"{len(piece):x}".encode() + ext + b"\r\n" + piece
        if piece:
            out += b"\r\n"
    if trailer is not None:
        line = f"{trailer[0]}:{trailer[1]}"
        out += line.encode() + b"\r\n"
        if signed_trailer:
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                             hashlib.sha256((line + "\n").encode()).hexdigest()])
            sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            out += f"x-amz-trailer-signature:{sig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def send(endpoint: str, method: str, path: str, headers: dict[str, str], body: bytes = b"",
         timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def put_chunked(endpoint: str, bucket: str, key: str, data: bytes, ak: str, sk: str, *,
                mode: str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", region: str = "auto",
                tamper_chunk: int | None = None, trailer_value: str | None = None,
                when: dt.datetime | None = None, chunk: int = 64 * 1024, headers: dict[str, str] | None = None,
                content_encoding: str = "aws-chunked"):
    """PutObject with an aws-chunked body, signed like SDKs sign it (``headers``: more, signed too)."""
    path = f"/{quote(bucket)}/{quote(key)}"
    url = endpoint + path
    trailer = None
    headers = {"Content-Encoding": content_encoding, "x-amz-decoded-content-length": str(len(data)),
               **(headers or {})}
    if mode.endswith("TRAILER"):
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
        trailer = ("x-amz-checksum-crc32", trailer_value or crc32_b64(data))
    # Content-Length is signed by SDKs; compute the encoded length first with a dummy signature
    probe = aws_chunked(data, seed_signature="0" * 64 if "HMAC" in mode else None, amz_date="20000101T000000Z",
                        sk=sk, region=region, trailer=trailer, signed_trailer="HMAC" in mode and trailer is not None,
                        chunk=chunk)
    headers["Content-Length"] = str(len(probe))
    signed = sign("PUT", url, headers, mode, ak, sk, region, when)
    amz_date = signed["X-Amz-Date"]
    seed = signed["Authorization"].rsplit("Signature=", 1)[1]
    body = aws_chunked(data, seed_signature=seed if "HMAC" in mode else None, amz_date=amz_date, sk=sk,
                       region=region, trailer=trailer, signed_trailer="HMAC" in mode and trailer is not None,
                       tamper_chunk=tamper_chunk, chunk=chunk)
    assert len(body) == len(probe)
    return send(endpoint, "PUT", path, signed, body)


def presign(method: str, url: str, ak: str, sk: str, region: str = "auto", expires: int = 600) -> str:
    """A presigned URL for ``url`` (botocore's query-string SigV4; only Host is signed)."""
    from botocore.auth import S3SigV4QueryAuth
    req = AWSRequest(method=method, url=url, headers={})
    S3SigV4QueryAuth(Credentials(ak, sk), "s3", region, expires=expires).add_auth(req)
    return req.url
