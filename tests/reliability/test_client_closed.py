"""A client that hangs up in the middle of a GET is the client's doing, not the upstream's: the access
line says 499 with the bytes really sent, and neither ``upstream_stream_broken`` nor
``r2gw_upstream_errors_total{reason="broken_stream"}`` moves. Checked on both relay paths: the
kernel relay (splice, a GET of 1 MiB and more on plain TCP) and the user-space copy (splice off).
The counterpart, an upstream that breaks off mid-body, still is an upstream failure (logged 502)."""
from __future__ import annotations

import json
import os
import socket
import struct

import pytest

from tests import s3raw
from tests.gateway_process import GatewayProcess

from .faultproxy import Fault
from .helpers import (UpstreamRef, metric_sum, obj_path, raw_connection, read_response_head, signed_headers,
                      wait_until)

MiB = 1024 * 1024
SIZE = 16 * MiB
pytestmark = pytest.mark.rgw


@pytest.fixture(scope="module")
def copying_gateway(rgw, fault_proxy, tmp_path_factory):
    """The gateway with the kernel relay off: every body goes through user space."""
    up = UpstreamRef(fault_proxy.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    gw = GatewayProcess(tmp_path_factory.mktemp("gw-nosplice"), upstream=up, tls=False,
                        env={"R2GW_SPLICE": "false", "R2GW_UPSTREAM_TIMEOUTS_READ": "3"}, name="gateway-nosplice")
    gw.start()
    yield gw
    gw.stop()


def _events(gw, request_id: str, timeout: float = 5.0) -> list[dict]:
    """Every JSON log line of the gateway about ``request_id``, once its access line is there."""
    found: list[dict] = []

    def access_line_written() -> bool:
        found.clear()
        for line in gw.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and request_id in line:
                found.append(json.loads(line))
        return any(e.get("event") == "request" for e in found)
    assert wait_until(access_line_written, timeout), f"no access line for {request_id}"
    return found


def _get_and_hang_up(gw, bucket: str, key: str, read: int) -> tuple[str, int]:
    """GET ``key``, read about ``read`` body bytes, then reset the connection. → (request id, bytes read)."""
    path = obj_path(bucket, key)
    headers = signed_headers(gw, "GET", path, {}, s3raw.EMPTY)
    sock = raw_connection(gw.endpoint)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {gw.endpoint.split('//')[1]}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host") + "\r\n").encode())
    status, head, got = read_response_head(sock)
    assert status == 200 and int(head["content-length"]) == SIZE
    received = len(got)
    while received < read:
        data = sock.recv(65536)
        assert data, "the gateway closed first"
        received += len(data)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST, as a killed client
    sock.close()
    return head["x-amz-request-id"], received


@pytest.mark.parametrize("relay", ["kernel", "copy"])
def test_a_client_hanging_up_is_499_with_true_bytes_and_no_upstream_error(relay, proxied_gateway, copying_gateway,
                                                                           proxy, pbucket, rgw_s3):
    gw = proxied_gateway if relay == "kernel" else copying_gateway
    rgw_s3.put_object(Bucket=pbucket, Key="big", Body=os.urandom(SIZE))
    broken_before = metric_sum(gw.endpoint, "r2gw_upstream_errors_total", reason="broken_stream")
    closed_before = metric_sum(gw.endpoint, "r2gw_requests_total", operation="GetObject", status="499")
    request_id, received = _get_and_hang_up(gw, pbucket, "big", read=2 * MiB)
    events = _events(gw, request_id)
    (line,) = [e for e in events if e["event"] == "request"]
    assert line["status"] == 499 and line["upstream_status"] == 200 and line["error_code"] is None
    # what the gateway handed to the client's socket: at least what the client read, never all of it
    assert received <= line["bytes_out"] < SIZE, (received, line["bytes_out"])
    assert not [e for e in events if e["event"] == "upstream_stream_broken"]
    assert metric_sum(gw.endpoint, "r2gw_upstream_errors_total", reason="broken_stream") == broken_before
    assert wait_until(lambda: metric_sum(gw.endpoint, "r2gw_requests_total", operation="GetObject",
                                         status="499") == closed_before + 1, 5)
    # the gateway still serves the whole object
    assert len(gw.client().get_object(Bucket=pbucket, Key="big")["Body"].read()) == SIZE


@pytest.mark.parametrize("relay", ["kernel", "copy"])
def test_an_upstream_breaking_off_mid_body_still_is_an_upstream_failure(relay, proxied_gateway, copying_gateway,
                                                                        proxy, pbucket, rgw_s3):
    gw = proxied_gateway if relay == "kernel" else copying_gateway
    rgw_s3.put_object(Bucket=pbucket, Key="cut", Body=os.urandom(SIZE))
    before = metric_sum(gw.endpoint, "r2gw_upstream_errors_total", reason="broken_stream")
    proxy.add(Fault(f"/{pbucket}/cut", reset_response_after=3 * MiB))
    path = obj_path(pbucket, "cut")
    sock = raw_connection(gw.endpoint)
    headers = signed_headers(gw, "GET", path, {}, s3raw.EMPTY)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {gw.endpoint.split('//')[1]}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host") + "\r\n").encode())
    status, head, got = read_response_head(sock)
    received = len(got)
    try:
        while data := sock.recv(1 << 20):
            received += len(data)
    except ConnectionError:
        pass
    sock.close()
    assert status == 200 and received < SIZE
    events = _events(gw, head["x-amz-request-id"])
    (line,) = [e for e in events if e["event"] == "request"]
    assert line["status"] == 502 and line["upstream_status"] == 200
    assert received <= line["bytes_out"] < SIZE
    assert [e for e in events if e["event"] == "upstream_stream_broken"]
    assert wait_until(lambda: metric_sum(gw.endpoint, "r2gw_upstream_errors_total",
                                         reason="broken_stream") == before + 1, 5)
