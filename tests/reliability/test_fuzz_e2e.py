"""Garbage through the real gateway (to Ceph RGW behind the counting proxy): XML bodies, aws-chunked
framing, query strings. Always a 4xx (or a success), never a 5xx, never a hang; RGW stays up."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import s3raw

from .helpers import error_code, obj_path, request
from .test_fuzz_properties import mangled, xml_documents

pytestmark = pytest.mark.rgw
E2E = settings(max_examples=int(os.environ.get("R2GW_E2E_EXAMPLES", "50")), deadline=None, database=None,
               suppress_health_check=list(HealthCheck))

XML_REQUESTS = {  # root element -> (method, path template)
    "Delete": ("POST", "/{b}?delete"),
    "CompleteMultipartUpload": ("POST", "/{b}/mp?uploadId={u}"),
    "CreateBucketConfiguration": ("PUT", "/{b}-x"),
    "CORSConfiguration": ("PUT", "/{b}?cors"),
    "LifecycleConfiguration": ("PUT", "/{b}?lifecycle"),
}


def _check(status: int, body: bytes, what) -> None:
    """A 4xx or a success; 501 NotImplemented only as R2 answers what it does not implement."""
    if status == 501:
        assert error_code(body) == "NotImplemented", (what, body[:300])
        return
    assert status < 500, (what, status, body[:400])
    if status >= 400 and body:
        assert error_code(body), (what, body[:200])


@pytest.mark.parametrize("root", list(XML_REQUESTS))
def test_garbage_xml_bodies_are_4xx(proxied_gateway, pbucket, rgw, rgw_s3, root):
    gw = proxied_gateway
    s3 = gw.client()
    # an object no garbage may touch (no generated document can name this key), read back from RGW
    sentinel = "sentinel-" + os.urandom(8).hex()
    rgw_s3.put_object(Bucket=pbucket, Key=sentinel, Body=b"untouched")
    upload = s3.create_multipart_upload(Bucket=pbucket, Key="mp")["UploadId"]
    method, template = XML_REQUESTS[root]
    path = template.format(b=pbucket, u=upload)

    @E2E
    @given(body=st.one_of(mangled(xml_documents(root)), mangled(xml_documents()), st.binary(max_size=400)),
           md5=st.booleans())
    def run(body, md5):
        headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()} if md5 else {}
        status, _, resp = request(gw, method, path, headers, body, timeout=15)
        _check(status, resp, body)
    try:
        run()
        assert rgw.is_running()
        # the bucket holds exactly what it held: the sentinel, intact, and the upload still open
        # (no garbage CompleteMultipartUpload made an object of it, no Delete removed anything)
        listing = rgw_s3.list_objects_v2(Bucket=pbucket)
        assert [o["Key"] for o in listing.get("Contents", [])] == [sentinel], listing.get("Contents")
        assert rgw_s3.get_object(Bucket=pbucket, Key=sentinel)["Body"].read() == b"untouched"
        uploads = rgw_s3.list_multipart_uploads(Bucket=pbucket).get("Uploads", [])
        assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp", upload)]
    finally:
        for cleanup in (lambda: s3.abort_multipart_upload(Bucket=pbucket, Key="mp", UploadId=upload),
                        lambda: s3.delete_bucket(Bucket=f"{pbucket}-x")):  # a body that was valid after all
            try:
                cleanup()
            except Exception:
                pass


@st.composite
def chunked_mutation(draw):
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        ops.append((draw(st.integers(0, 3)), draw(st.integers(0, 1 << 20)), draw(st.binary(min_size=1, max_size=12))))
    return ops


def _mutate(body: bytes, ops) -> bytes:
    b = bytearray(body)
    for op, at, blob in ops:
        at %= len(b) + 1
        if op == 0 and at < len(b):
            b[at] ^= blob[0] or 1
        elif op == 1:
            del b[at:at + len(blob)]
        elif op == 2:
            b[at:at] = blob
        else:
            b = b[:at]
    return bytes(b)


@pytest.mark.parametrize("mode", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"])
def test_garbage_chunked_framing_is_4xx(proxied_gateway, pbucket, rgw_s3, mode):
    gw = proxied_gateway
    data = os.urandom(3000)
    key = "chunky-" + mode[-7:].lower()
    path = obj_path(pbucket, key)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    trailer = None
    if mode.endswith("TRAILER"):
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
        trailer = ("x-amz-checksum-crc32", s3raw.crc32_b64(data))

    @E2E
    @given(ops=chunked_mutation(), chunk=st.sampled_from([1000, 1024, 4096]))
    def run(ops, chunk):
        signed_mode = "HMAC" in mode
        probe = s3raw.aws_chunked(data, seed_signature="0" * 64 if signed_mode else None, amz_date="20000101T000000Z",
                                  sk=gw.secret_key, region="auto", trailer=trailer,
                                  signed_trailer=signed_mode and trailer is not None, chunk=chunk)
        h = s3raw.sign("PUT", gw.endpoint + path, {**headers, "Content-Length": str(len(probe))}, mode,
                       gw.access_key, gw.secret_key)
        body = s3raw.aws_chunked(data, seed_signature=h["Authorization"].rsplit("Signature=", 1)[1] if signed_mode
                                 else None, amz_date=h["X-Amz-Date"], sk=gw.secret_key, region="auto", trailer=trailer,
                                 signed_trailer=signed_mode and trailer is not None, chunk=chunk)
        bad = _mutate(body, ops)
        h["Content-Length"] = str(len(bad))
        status, _, resp = s3raw.send(gw.endpoint, "PUT", path, h, bad, timeout=15)
        _check(status, resp, ops)
        if status == 200:  # accepted: then it is exactly the data (an unsigned mode may take a
            got = rgw_s3.get_object(Bucket=pbucket, Key=key)["Body"].read()  # harmless mutation)
            assert got == data or not signed_mode and len(got) == len(data), ops
        if status < 300:
            rgw_s3.delete_object(Bucket=pbucket, Key=key)
        else:  # refused: nothing of it stored upstream (the key is absent before every example)
            assert rgw_s3.list_objects_v2(Bucket=pbucket, Prefix=key)["KeyCount"] == 0, ops
    run()


SUBRESOURCES = ["acl", "cors", "lifecycle", "uploads", "uploadId", "partNumber", "versionId", "delete", "tagging",
                "location", "list-type", "prefix", "marker", "max-keys", "versioning", "policy", "website",
                "encryption", "restore", "select", "torrent", "attributes", "x-id", "response-content-type"]


@E2E
@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]), on_object=st.booleans(),
       params=st.lists(st.tuples(st.one_of(st.sampled_from(SUBRESOURCES), st.text(max_size=8)),
                                 st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)), max_size=3),
       raw_tail=st.sampled_from(["", "&", "&&", "&=x", "&a=b=c", "&a+b=c+d", "&%41=%2B", "&x=%zz", "&%=%",
                                 "&prefix=%E2%82", "&uploads=&uploads"]),
       headers=st.dictionaries(st.sampled_from(["x-amz-copy-source", "range", "x-amz-metadata-directive",
                                                "if-match", "x-amz-storage-class", "content-md5",
                                                "x-amz-checksum-crc32", "cf-create-bucket-if-missing"]),
                               st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=20), max_size=2))
def test_garbage_queries_and_headers_are_never_5xx(proxied_gateway, pbucket_module, method, on_object, params,
                                                   raw_tail, headers):
    from urllib.parse import quote
    gw = proxied_gateway
    path = obj_path(pbucket_module, "fuzzed") if on_object else f"/{pbucket_module}"
    query = "&".join(quote(k, safe="-_.~") + ("=" + quote(v, safe="-_.~") if v else "") for k, v in params)
    query = (query + raw_tail).lstrip("&") if query or raw_tail.strip("&") else query
    status, _, resp = request(gw, method, path + ("?" + query if query else ""), headers,
                              b"x" if method in ("PUT", "POST") else b"", timeout=15)
    _check(status, resp, (method, path, query, headers))


@pytest.fixture(scope="module")
def pbucket_module(proxied_gateway, rgw):
    import uuid
    from tests.conftest import _empty_and_delete
    from tests.upstreams.fixtures import s3_client
    client = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    name = "fz-" + uuid.uuid4().hex[:10]
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="fuzzed", Body=b"fuzz target object")
    yield name
    _empty_and_delete(client, name)
