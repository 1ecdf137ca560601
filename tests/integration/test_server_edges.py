"""The client-side HTTP edges through the real gateway in front of Ceph RGW, over real sockets:
``100 Continue`` only once a request is authorized and allowed, other expectations refused, and
repeated singleton headers refused — each checked on RGW directly (nothing stored)."""
from __future__ import annotations

import hashlib
import socket
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.s3raw import sign


def _raw(endpoint: str, head: bytes, body: bytes | None = None, wait: float = 2.0) -> bytes:
    """Send a head; read what comes back within ``wait`` s (then the body, if asked, and more)."""
    u = urlsplit(endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=wait) as s:
        s.sendall(head)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                data = s.recv(65536)
                if not data:
                    break
                got += data
        except socket.timeout:
            pass
        if body is not None and got.startswith(b"HTTP/1.1 100"):
            s.sendall(body)
            try:
                while True:
                    data = s.recv(65536)
                    if not data or b"</" in got[got.find(b"\r\n\r\n", got.find(b"100")) :]:
                        break
                    got += data
            except socket.timeout:
                pass
        return got


def _put_head(gateway, bucket: str, key: str, body: bytes, secret: str | None = None, **extra) -> bytes:
    url = f"{gateway.endpoint}/{bucket}/{key}"
    headers = {"Content-Length": str(len(body)), **extra}
    signed = sign("PUT", url, headers, hashlib.sha256(body).hexdigest(), gateway.access_key,
                  secret or gateway.secret_key)
    lines = [f"PUT /{bucket}/{key} HTTP/1.1", f"Host: {urlsplit(gateway.endpoint).netloc}"]
    lines += [f"{k}: {v}" for k, v in signed.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _absent(rgw_s3, bucket: str, key: str) -> bool:
    try:
        rgw_s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return e.response["Error"]["Code"] in ("404", "NoSuchKey")
    return False


def test_continue_is_sent_after_authorization_and_the_upload_lands(gateway, bucket, rgw_s3):
    body = b"hello world"
    got = _raw(gateway.endpoint, _put_head(gateway, bucket, "ok.txt", body, Expect="100-continue"), body)
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
    assert rgw_s3.get_object(Bucket=bucket, Key="ok.txt")["Body"].read() == body


def test_a_wrong_signature_is_refused_without_100_continue(gateway, bucket, rgw_s3):
    head = _put_head(gateway, bucket, "bad.txt", b"hello", secret="not-the-secret", Expect="100-continue")
    got = _raw(gateway.endpoint, head)
    assert got.startswith(b"HTTP/1.1 403") and b"100 Continue" not in got
    assert b"SignatureDoesNotMatch" in got
    assert _absent(rgw_s3, bucket, "bad.txt")


def test_an_unimplemented_header_is_refused_without_100_continue(gateway, bucket, rgw_s3):
    head = _put_head(gateway, bucket, "acl.txt", b"hello", Expect="100-continue", **{"x-amz-acl": "public-read"})
    got = _raw(gateway.endpoint, head)
    assert got.startswith(b"HTTP/1.1 501") and b"100 Continue" not in got
    assert _absent(rgw_s3, bucket, "acl.txt")


def test_other_expectations_are_417(gateway, bucket, rgw_s3):
    got = _raw(gateway.endpoint, _put_head(gateway, bucket, "e.txt", b"hello", Expect="something-else") + b"hello")
    assert got.startswith(b"HTTP/1.1 417") and b"ExpectationFailed" in got
    assert _absent(rgw_s3, bucket, "e.txt")


@pytest.mark.parametrize("dup", ["Host: other.example", "X-Amz-Date: 20200101T000000Z",
                                 "Content-Length: 5", "X-Amz-Content-SHA256: UNSIGNED-PAYLOAD"])
def test_repeated_singleton_headers_are_400(gateway, bucket, rgw_s3, dup):
    head = _put_head(gateway, bucket, "dup.txt", b"hello")
    head = head[:-2] + dup.encode() + b"\r\n\r\n"
    got = _raw(gateway.endpoint, head + b"hello")
    assert got.startswith(b"HTTP/1.1 400")
    assert _absent(rgw_s3, bucket, "dup.txt")


def test_a_control_character_in_a_response_override_is_400_not_5xx(gateway, bucket, s3):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", ResponseContentType="text/\x1fplain")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    assert s3.get_object(Bucket=bucket, Key="k", ResponseContentType="text/plain")["ContentType"] == "text/plain"
