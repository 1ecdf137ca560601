"""When is a request whose upstream connection broke sent again? Only when that is safe: no byte of
the answer came back, and the request is idempotent with a body the gateway still holds. The fault
proxy lets the request reach RGW, then cuts the connection before any byte of the answer: RGW has
executed it, and the proxy counts how many times it was sent.
"""
from __future__ import annotations

import os

import pytest

from tests import s3raw

from .faultproxy import Fault
from .helpers import error_code, obj_path, request

pytestmark = pytest.mark.rgw


def _seen(proxy, method: str, fragment: str) -> int:
    return sum(1 for r in proxy.requests if r.method == method and fragment in r.target)


def test_a_post_is_not_sent_twice(proxied_gateway, proxy, pbucket, rgw_s3):
    proxy.add(Fault(match="?uploads", reset_response_after=0))
    status, _, body = request(proxied_gateway, "POST", obj_path(pbucket, "once") + "?uploads",
                              {"Content-Length": "0"})
    assert status >= 500, body          # the outcome is unknown: the client is told so, and may look
    assert _seen(proxy, "POST", "?uploads") == 1
    uploads = rgw_s3.list_multipart_uploads(Bucket=pbucket).get("Uploads", [])
    assert len(uploads) == 1            # RGW executed it exactly once


def test_delete_objects_is_not_sent_twice(proxied_gateway, proxy, pbucket, rgw_s3):
    rgw_s3.put_object(Bucket=pbucket, Key="a", Body=b"1")
    proxy.add(Fault(match="?delete", reset_response_after=0))
    xml = b"<Delete><Object><Key>a</Key></Object></Delete>"
    status, _, body = request(proxied_gateway, "POST", f"/{pbucket}?delete",
                              {"Content-Length": str(len(xml)), "Content-MD5": s3raw.base64.b64encode(
                                  s3raw.hashlib.md5(xml).digest()).decode()}, xml)
    assert status >= 500, body
    assert _seen(proxy, "POST", "?delete") == 1


def test_a_get_is_sent_again(proxied_gateway, proxy, pbucket, rgw_s3):
    rgw_s3.put_object(Bucket=pbucket, Key="g", Body=b"again")
    proxy.add(Fault(match=f"/{pbucket}/g", reset_response_after=0))
    status, _, body = request(proxied_gateway, "GET", obj_path(pbucket, "g"), payload_hash=s3raw.EMPTY)
    assert (status, body) == (200, b"again")
    assert _seen(proxy, "GET", f"/{pbucket}/g") == 2


def test_a_put_is_sent_again(proxied_gateway, proxy, pbucket, rgw_s3):
    # an empty body: always one the gateway holds (a small body that arrived whole is too, but
    # whether it did depends on how the client's segments arrived)
    proxy.add(Fault(match=f"/{pbucket}/p", reset_response_after=0))
    status, _, body = request(proxied_gateway, "PUT", obj_path(pbucket, "p"), {"Content-Length": "0"})
    assert status == 200, body
    assert _seen(proxy, "PUT", f"/{pbucket}/p") == 2
    assert rgw_s3.get_object(Bucket=pbucket, Key="p")["Body"].read() == b""


@pytest.mark.skipif(os.environ.get("TEST_UPSTREAM_TRANSPORT") == "aiohttp",
                    reason="aiohttp's client resends an idempotent request itself, answer begun or not")
def test_no_resend_after_part_of_the_answer(proxied_gateway, proxy, pbucket, rgw_s3):
    rgw_s3.put_object(Bucket=pbucket, Key="h", Body=b"x" * 100)
    proxy.add(Fault(match=f"/{pbucket}/h", reset_response_after=10))   # a piece of the status line
    status, _, body = request(proxied_gateway, "GET", obj_path(pbucket, "h"), payload_hash=s3raw.EMPTY)
    assert status >= 500 and error_code(body) is not None
    assert _seen(proxy, "GET", f"/{pbucket}/h") == 1
