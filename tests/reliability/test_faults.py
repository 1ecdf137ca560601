"""Faults between the gateway and its upstream, and from clients: every case ends with a clean S3
error or a complete answer, no partial object upstream, a gateway that serves the next request,
and file descriptors and memory back where they were.

The fault matrix (docs/reliability.md has the results):

| fault                                   | client sees                          | upstream afterwards  |
|-----------------------------------------|--------------------------------------|----------------------|
| upstream stopped (radosgw down)         | 503 ServiceUnavailable (S3 XML)      | nothing written      |
| upstream slow, within the read timeout  | the complete answer                  | —                    |
| upstream slower than the read timeout   | 504 GatewayTimeout (S3 XML)          | complete or nothing  |
| upstream stalls in the middle of a GET  | broken connection, short read        | —                    |
| upstream resets in the middle of a GET  | broken connection, short read        | —                    |
| upstream resets in the middle of a PUT  | 503 (or a reset while still sending) | old object intact    |
| client disconnects in the middle of PUT | —                                    | nothing written      |
| client disconnects in the middle of GET | —                                    | pool does not grow   |
| SIGTERM with uploads in flight          | in-flight uploads complete; new      | complete objects     |
|                                         | connections refused; exit 0          | only                 |
| SIGTERM, uploads longer than the drain  | broken connection                    | nothing written      |
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests import s3raw
from tests.gateway_process import GatewayProcess

from .faultproxy import Fault
from .helpers import (Resources, UpstreamRef, error_code, get_streaming, obj_path, read_response_head,
                      request, settle, signed_headers, raw_connection)

MiB = 1024 * 1024
pytestmark = pytest.mark.rgw


def exists_upstream(rgw_s3, bucket: str, key: str) -> bytes | None:
    try:
        return rgw_s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise


def roundtrip(gw, bucket: str, n: int = 3) -> None:
    """The gateway still serves: PUT, GET and LIST work and return what was stored."""
    s3 = gw.client()
    for i in range(n):
        body = os.urandom(2048)
        key = f"after-{uuid.uuid4().hex[:8]}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] >= n


def baseline(gw, bucket: str) -> Resources:
    """Warm the gateway up (pool, buffers, caches) and read its resources."""
    s3 = gw.client()
    s3.put_object(Bucket=bucket, Key="warm/big", Body=os.urandom(2 * MiB))
    for _ in range(2):
        s3.get_object(Bucket=bucket, Key="warm/big")["Body"].read()
    roundtrip(gw, bucket, 3)
    time.sleep(0.3)
    return Resources.of(gw)


# -- upstream down -----------------------------------------------------------------------------------

def test_upstream_stopped(proxied_gateway, proxy, rgw, pbucket, rgw_s3):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    rgw.stop_rgw()
    try:
        for method, path, body in (("GET", obj_path(pbucket, "warm/big"), b""),
                                   ("PUT", obj_path(pbucket, "while-down"), os.urandom(256 * 1024)),
                                   ("GET", f"/{pbucket}?list-type=2", b""),
                                   ("HEAD", obj_path(pbucket, "warm/big"), b"")):
            t0 = time.monotonic()
            status, headers, resp = request(gw, method, path, body=body, timeout=20)
            assert status == 503, (method, path, status, resp[:300])
            if method != "HEAD":
                assert error_code(resp) == "ServiceUnavailable"
            assert headers.get("x-amz-request-id")
            assert time.monotonic() - t0 < 5, "an unreachable upstream must fail fast"
        with pytest.raises(Exception):
            import urllib.request
            urllib.request.urlopen(gw.endpoint + "/readyz", timeout=10)
    finally:
        rgw.start_rgw()
    assert exists_upstream(rgw_s3, pbucket, "while-down") is None
    roundtrip(gw, pbucket)
    settle(gw, base)


# -- upstream slow -----------------------------------------------------------------------------------

def test_upstream_slow_within_timeout(proxied_gateway, proxy, pbucket):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    s3 = gw.client()
    data = os.urandom(MiB)
    s3.put_object(Bucket=pbucket, Key="slow", Body=data)
    proxy.add(Fault(f"/{pbucket}/slow", delay_response=1.5, times=2))
    t0 = time.monotonic()
    assert s3.get_object(Bucket=pbucket, Key="slow")["Body"].read() == data
    s3.put_object(Bucket=pbucket, Key="slow", Body=data[::-1])
    assert time.monotonic() - t0 >= 3.0
    assert s3.get_object(Bucket=pbucket, Key="slow")["Body"].read() == data[::-1]
    settle(gw, base)


def test_upstream_slower_than_read_timeout(proxied_gateway, proxy, pbucket, rgw_s3):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    data = os.urandom(512 * 1024)
    rgw_s3.put_object(Bucket=pbucket, Key="slower", Body=data)
    proxy.add(Fault(f"/{pbucket}/slower", delay_response=9.0, times=2))
    t0 = time.monotonic()
    status, _, body = request(gw, "GET", obj_path(pbucket, "slower"))
    assert (status, error_code(body)) == (504, "GatewayTimeout")
    assert 2.5 < time.monotonic() - t0 < 8, "the upstream read timeout is 3 s"
    new = os.urandom(512 * 1024)
    status, _, body = request(gw, "PUT", obj_path(pbucket, "slower"), body=new)
    assert (status, error_code(body)) == (504, "GatewayTimeout")
    # the body had been sent in full before the upstream went quiet: old or new, never partial
    assert exists_upstream(rgw_s3, pbucket, "slower") in (data, new)
    roundtrip(gw, pbucket)
    settle(gw, base)


def test_upstream_stalls_mid_get(proxied_gateway, proxy, pbucket, rgw_s3):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    rgw_s3.put_object(Bucket=pbucket, Key="stall", Body=os.urandom(4 * MiB))
    proxy.add(Fault(f"/{pbucket}/stall", stall_response_after=256 * 1024))
    status, length, received, err = get_streaming(gw, pbucket, "stall", timeout=20)
    assert status == 200 and length == 4 * MiB
    assert err is not None and received < length, "a stalled body must not end as a complete one"
    roundtrip(gw, pbucket)
    settle(gw, base)


# -- upstream resets ---------------------------------------------------------------------------------

def test_upstream_reset_mid_get(proxied_gateway, proxy, pbucket, rgw_s3):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    data = os.urandom(4 * MiB)
    rgw_s3.put_object(Bucket=pbucket, Key="reset-get", Body=data)
    for _ in range(3):
        proxy.add(Fault(f"/{pbucket}/reset-get", reset_response_after=MiB))
        status, length, received, err = get_streaming(gw, pbucket, "reset-get")
        assert status == 200 and length == len(data)
        assert err is not None and received < length, "a broken body must not pass for a complete one"
    # boto3 sees it too (botocore checks the length): an error, never short data
    proxy.add(Fault(f"/{pbucket}/reset-get", reset_response_after=MiB))
    with pytest.raises(Exception) as e:
        gw.client().get_object(Bucket=pbucket, Key="reset-get")["Body"].read()
    assert "IncompleteRead" in repr(e.value) or "Connection" in repr(e.value), repr(e.value)
    assert gw.client().get_object(Bucket=pbucket, Key="reset-get")["Body"].read() == data
    roundtrip(gw, pbucket)
    settle(gw, base)


def test_upstream_reset_mid_put(proxied_gateway, proxy, pbucket, rgw_s3):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    old = os.urandom(1000)
    rgw_s3.put_object(Bucket=pbucket, Key="reset-put", Body=old)
    new = os.urandom(4 * MiB)
    outcomes = []
    for _ in range(3):
        proxy.add(Fault(f"/{pbucket}/reset-put", reset_request_after=MiB))
        try:
            status, _, body = request(gw, "PUT", obj_path(pbucket, "reset-put"), body=new)
            outcomes.append((status, error_code(body)))
            assert status >= 500 and error_code(body) == "ServiceUnavailable", (status, body[:300])
        except (ConnectionError, OSError) as e:  # refused while the client was still sending
            outcomes.append(type(e).__name__)
        # the upstream never committed a partial body: the old object is intact
        assert exists_upstream(rgw_s3, pbucket, "reset-put") == old
    assert len(proxy.requests) >= 3
    # a part of a multipart upload: no part is recorded
    s3 = gw.client()
    upload = s3.create_multipart_upload(Bucket=pbucket, Key="reset-part")["UploadId"]
    proxy.add(Fault(f"/{pbucket}/reset-part?partNumber=1", reset_request_after=MiB))
    path = obj_path(pbucket, "reset-part") + f"?partNumber=1&uploadId={upload}"
    try:
        status, _, body = request(gw, "PUT", path, body=new)
        assert status == 503 and error_code(body) == "ServiceUnavailable", (status, body[:300])
    except (ConnectionError, OSError):
        pass
    assert rgw_s3.list_parts(Bucket=pbucket, Key="reset-part", UploadId=upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=pbucket, Key="reset-part", UploadId=upload)
    roundtrip(gw, pbucket)
    settle(gw, base)


# -- client faults -----------------------------------------------------------------------------------

def _head(gw, method: str, path: str, headers: dict[str, str]) -> bytes:
    """A request head as sent on the wire (Host first, as botocore signed it)."""
    return (f"{method} {path} HTTP/1.1\r\nHost: {gw.endpoint.split('//')[1]}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host") + "\r\n").encode()


def _start_put(gw, bucket: str, key: str, length: int, extra: dict[str, str] | None = None):
    path = obj_path(bucket, key)
    headers = {"Content-Length": str(length), **(extra or {})}
    h = signed_headers(gw, "PUT", path, headers)
    sock = raw_connection(gw.endpoint)
    sock.sendall(_head(gw, "PUT", path, h))
    return sock


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnects_mid_upload(proxied_gateway, proxy, pbucket, rgw_s3, how):
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    for i in range(3):
        key = f"client-gone-{how}-{i}"
        sock = _start_put(gw, pbucket, key, 8 * MiB)
        sock.sendall(os.urandom(3 * MiB))
        time.sleep(0.3)
        if how == "reset":
            _linger0(sock)
        sock.close()
        # the gateway noticed and dropped the upstream request
        assert _wait(lambda: all(c == 0 for c in [_in_flight(gw)]), 10)
        assert exists_upstream(rgw_s3, pbucket, key) is None
    puts = [r for r in proxy.requests if r.method == "PUT" and "client-gone" in r.target]
    assert len(puts) == 3
    roundtrip(gw, pbucket)
    settle(gw, base)


def test_client_disconnects_mid_upload_part(proxied_gateway, proxy, pbucket, rgw_s3):
    """UploadPart: the client vanishes halfway; the upload has no part 1 afterwards."""
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    s3 = gw.client()
    upload = s3.create_multipart_upload(Bucket=pbucket, Key="part-gone")["UploadId"]
    path = obj_path(pbucket, "part-gone") + f"?partNumber=1&uploadId={upload}"
    h = signed_headers(gw, "PUT", path, {"Content-Length": str(8 * MiB)})
    sock = raw_connection(gw.endpoint)
    sock.sendall(_head(gw, "PUT", path, h) + os.urandom(3 * MiB))
    time.sleep(0.3)
    _linger0(sock)
    sock.close()
    assert _wait(lambda: _in_flight(gw) == 0, 10)
    assert rgw_s3.list_parts(Bucket=pbucket, Key="part-gone", UploadId=upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=pbucket, Key="part-gone", UploadId=upload)
    roundtrip(gw, pbucket)
    settle(gw, base)


def test_client_disconnects_mid_chunked_upload(proxied_gateway, proxy, pbucket, rgw_s3):
    """aws-chunked with signed chunks: the client vanishes halfway; nothing is stored."""
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    data = os.urandom(4 * MiB)
    path = obj_path(pbucket, "chunked-gone")
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    probe = s3raw.aws_chunked(data, seed_signature="0" * 64, amz_date="20000101T000000Z", sk=gw.secret_key,
                              region="auto")
    headers["Content-Length"] = str(len(probe))
    h = s3raw.sign("PUT", gw.endpoint + path, headers, mode, gw.access_key, gw.secret_key)
    body = s3raw.aws_chunked(data, seed_signature=h["Authorization"].rsplit("Signature=", 1)[1],
                             amz_date=h["X-Amz-Date"], sk=gw.secret_key, region="auto")
    sock = raw_connection(gw.endpoint)
    sock.sendall(_head(gw, "PUT", path, h) + body[: len(body) // 2])
    time.sleep(0.3)
    _linger0(sock)
    sock.close()
    assert _wait(lambda: _in_flight(gw) == 0, 10)
    assert [r.method for r in proxy.requests if "chunked-gone" in r.target] == ["PUT"]
    assert exists_upstream(rgw_s3, pbucket, "chunked-gone") is None
    roundtrip(gw, pbucket)
    settle(gw, base)


def test_client_disconnects_mid_download(proxied_gateway, proxy, pbucket, rgw_s3):
    """Clients that read a little and hang up must not leave upstream connections behind."""
    gw = proxied_gateway
    base = baseline(gw, pbucket)
    rgw_s3.put_object(Bucket=pbucket, Key="dl", Body=os.urandom(16 * MiB))
    path = obj_path(pbucket, "dl")
    for _ in range(10):
        h = signed_headers(gw, "GET", path, {}, s3raw.EMPTY)
        sock = raw_connection(gw.endpoint)
        sock.sendall(_head(gw, "GET", path, h))
        status, _, _ = read_response_head(sock)
        assert status == 200
        sock.recv(65536)
        _linger0(sock)
        sock.close()
    assert _wait(lambda: _in_flight(gw) == 0, 10)
    roundtrip(gw, pbucket)
    after = settle(gw, base)
    assert after.pool <= base.pool + 2, f"upstream pool grew: {base.pool} -> {after.pool}"


# -- SIGTERM -------------------------------------------------------------------------------------------

class _SlowUpload(threading.Thread):
    """A PUT whose body trickles in over ``seconds``; records the status (or the error)."""

    def __init__(self, gw, bucket: str, key: str, data: bytes, seconds: float) -> None:
        super().__init__(daemon=True)
        self.gw, self.bucket, self.key, self.data, self.seconds = gw, bucket, key, data, seconds
        self.result: int | str | None = None
        self.started_sending = threading.Event()

    def run(self) -> None:
        try:
            sock = _start_put(self.gw, self.bucket, self.key, len(self.data))
            steps = 20
            piece = -(-len(self.data) // steps)
            self.started_sending.set()
            for i in range(steps):
                sock.sendall(self.data[i * piece:(i + 1) * piece])
                time.sleep(self.seconds / steps)
            status, _, _ = read_response_head(sock, timeout=30)
            self.result = status
            sock.close()
        except (ConnectionError, OSError) as e:
            self.result = type(e).__name__
        finally:
            self.started_sending.set()


def _gateway_direct(rgw, tmp_path, drain: float) -> GatewayProcess:
    up = UpstreamRef(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    return GatewayProcess(tmp_path, upstream=up, tls=False, env={"R2GW_DRAIN_TIMEOUT": str(drain)},
                          name="gateway-sigterm").start()


def test_sigterm_drains_uploads_in_flight(rgw, rgw_s3, tmp_path):
    bucket = "term-" + uuid.uuid4().hex[:10]
    rgw_s3.create_bucket(Bucket=bucket)
    gw = _gateway_direct(rgw, tmp_path, drain=20)
    try:
        bodies = {f"drain-{i}": os.urandom(2 * MiB + i) for i in range(4)}
        ups = [_SlowUpload(gw, bucket, k, v, seconds=3.0) for k, v in bodies.items()]
        for u in ups:
            u.start()
        for u in ups:
            u.started_sending.wait(10)
        time.sleep(0.8)
        gw.proc.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
            except OSError:
                return True
            return False
        assert _wait(refused, 5), "new connections must be refused once draining"
        assert any(u.is_alive() for u in ups), "the uploads should still be in flight"
        for u in ups:
            u.join(30)
        assert [u.result for u in ups] == [200] * 4
        assert gw.proc.wait(30) == 0
        for k, v in bodies.items():
            assert hashlib.md5(exists_upstream(rgw_s3, bucket, k)).digest() == hashlib.md5(v).digest()
    finally:
        gw.stop()
        from tests.conftest import _empty_and_delete
        _empty_and_delete(rgw_s3, bucket)


def test_sigterm_uploads_longer_than_drain_leave_nothing(rgw, rgw_s3, tmp_path):
    bucket = "term-" + uuid.uuid4().hex[:10]
    rgw_s3.create_bucket(Bucket=bucket)
    gw = _gateway_direct(rgw, tmp_path, drain=1)
    try:
        ups = [_SlowUpload(gw, bucket, f"cut-{i}", os.urandom(2 * MiB), seconds=6.0) for i in range(3)]
        for u in ups:
            u.start()
        for u in ups:
            u.started_sending.wait(10)
        time.sleep(0.5)
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(20) == 0
        assert time.monotonic() - t0 < 8, "the drain must end at drain_timeout"
        for u in ups:
            u.join(30)
            assert u.result != 200
        for i in range(3):
            assert exists_upstream(rgw_s3, bucket, f"cut-{i}") is None
    finally:
        gw.stop()
        from tests.conftest import _empty_and_delete
        _empty_and_delete(rgw_s3, bucket)


# -- small helpers ---------------------------------------------------------------------------------------

def _linger0(sock: socket.socket) -> None:
    import struct
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _in_flight(gw) -> float:
    from .helpers import metric
    return metric(gw.endpoint, "r2gw_requests_in_flight")


def _wait(cond, timeout: float) -> bool:
    from .helpers import wait_until
    return wait_until(cond, timeout, 0.1)
