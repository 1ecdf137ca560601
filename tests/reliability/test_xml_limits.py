"""Hostile XML bodies through the real gateway: entity bombs and a 1 GB document are refused
quickly, with bounded gateway memory, and never reach the upstream."""
from __future__ import annotations

import threading
import time

import pytest

from tests import s3raw

from .helpers import error_code, raw_connection, read_response_head, request, rss_kib, signed_headers

pytestmark = pytest.mark.rgw
GiB = 1024 ** 3


def _entities(depth: int = 10, fan: int = 10) -> str:
    lines = ['<!ENTITY lol0 "lol">']
    for i in range(1, depth):
        lines.append(f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * fan}">')
    return "".join(lines)


def billion_laughs(root: str, inner: str, encoding: str = "utf-8") -> bytes:
    doc = (f'<?xml version="1.0" encoding="{encoding.upper()}"?><!DOCTYPE {root} [{_entities()}]>'
           f"<{root}>{inner.replace('X', '&lol9;')}</{root}>")
    return doc.encode(encoding)


# (operation, method, path template, root element, a child that uses the entity)
XML_OPS = [
    ("DeleteObjects", "POST", "/{b}?delete", "Delete", "<Object><Key>X</Key></Object>"),
    ("CompleteMultipartUpload", "POST", "/{b}/mp?uploadId=nope", "CompleteMultipartUpload",
     "<Part><PartNumber>1</PartNumber><ETag>X</ETag></Part>"),
    ("CreateBucket", "PUT", "/{b}-new", "CreateBucketConfiguration", "<LocationConstraint>X</LocationConstraint>"),
    ("PutBucketCors", "PUT", "/{b}?cors", "CORSConfiguration",
     "<CORSRule><AllowedOrigin>X</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"),
    ("PutBucketLifecycleConfiguration", "PUT", "/{b}?lifecycle", "LifecycleConfiguration",
     "<Rule><ID>X</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>"),
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize("op,method,path,root,inner", XML_OPS, ids=[o[0] for o in XML_OPS])
def test_billion_laughs_refused(proxied_gateway, proxy, pbucket, op, method, path, root, inner, encoding):
    gw = proxied_gateway
    rss0 = rss_kib(gw.pid)
    body = billion_laughs(root, inner, encoding)
    proxy.reset_log()
    t0 = time.monotonic()
    status, _, resp = request(gw, method, path.format(b=pbucket), {}, body)
    elapsed = time.monotonic() - t0
    assert (status, error_code(resp)) == (400, "MalformedXML"), (status, resp[:300])
    assert elapsed < 2
    assert proxy.requests == [], "an entity bomb must not reach the upstream"
    assert rss_kib(gw.pid) - rss0 < 20 * 1024


class _RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)


def _stream_huge_body(gw, method: str, path: str, headers: dict[str, str], total: int, block: bytes,
                      first: bytes = b"") -> dict:
    """Send ``first`` + ``block``s up to ``total`` bytes while waiting for the answer; stop sending
    once it came (as an HTTP client that reads while it writes does). Measures the gateway."""
    sampler = _RssSampler(gw.pid)
    rss0 = rss_kib(gw.pid)
    sampler.start()
    sock = raw_connection(gw.endpoint, timeout=60)
    head = (f"{method} {path} HTTP/1.1\r\nHost: {gw.endpoint.split('//')[1]}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host") + "\r\n")
    answer: dict = {}

    def read() -> None:
        try:
            answer["status"], answer["headers"], rest = read_response_head(sock, 60)
            answer["at"] = time.monotonic()
            answer["body"] = rest
        except Exception as e:  # noqa: BLE001 - recorded for the assertion message
            answer["error"] = repr(e)
    reader = threading.Thread(target=read, daemon=True)
    t0 = time.monotonic()
    sock.sendall(head.encode())
    reader.start()
    sent = 0
    try:
        sock.sendall(first)
        sent = len(first)
        while sent < total and reader.is_alive():
            n = min(len(block), total - sent)
            sock.sendall(block[:n])
            sent += n
    except OSError as e:
        answer["send_error"] = type(e).__name__
    reader.join(60)
    sock.close()
    sampler.stop.set()
    sampler.join()
    answer.update(sent=sent, seconds=answer.get("at", time.monotonic()) - t0, rss0=rss0, peak=sampler.peak)
    return answer


@pytest.mark.parametrize("framing", ["content-length", "aws-chunked"])
def test_one_gigabyte_xml_body_refused_quickly(proxied_gateway, proxy, pbucket, framing):
    gw = proxied_gateway
    path = f"/{pbucket}?delete"
    first = b'<?xml version="1.0"?><Delete>'
    block = b"<Object><Key>" + b"k" * 1000 + b"</Key></Object>" * 1
    block = block * (1024 * 1024 // len(block))
    if framing == "content-length":
        headers = signed_headers(gw, "POST", path, {"Content-Length": str(GiB)})
    else:  # streaming signed chunks: the declared decoded length alone is over the limit
        headers = s3raw.sign("POST", gw.endpoint + path, {
            "Content-Length": str(GiB + 100_000), "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(GiB)}, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            gw.access_key, gw.secret_key)
    proxy.reset_log()
    got = _stream_huge_body(gw, "POST", path, headers, GiB, block, first)
    print("1GB", framing, {k: v for k, v in got.items() if k not in ("headers", "body")})
    assert got.get("status") == 400, got
    assert b"MaxMessageLengthExceeded" in got["body"] or got["headers"].get("content-length"), got
    assert got["seconds"] < 2, f"refusal took {got['seconds']:.1f}s"
    assert got["sent"] < GiB // 4, f"the client could push {got['sent'] >> 20} MiB before being cut off"
    assert got["peak"] - got["rss0"] < 32 * 1024, f"gateway RSS grew {(got['peak'] - got['rss0']) >> 10} MiB"
    assert proxy.requests == []


def test_xml_body_without_length_refused(proxied_gateway, proxy, pbucket):
    """HTTP chunked transfer coding and no length: refused (411) before the body is read."""
    gw = proxied_gateway
    path = f"/{pbucket}?delete"
    headers = signed_headers(gw, "POST", path, {"Transfer-Encoding": "chunked"})
    chunk = b"<Object><Key>k</Key></Object>" * 1000
    block = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    proxy.reset_log()
    got = _stream_huge_body(gw, "POST", path, headers, 256 * 1024 * 1024, block)
    assert got.get("status") in (400, 411), got
    assert got["seconds"] < 2
    assert got["peak"] - got["rss0"] < 32 * 1024
    assert proxy.requests == []
