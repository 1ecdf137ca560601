"""Part reads, 304 answers and expired presigned URLs as S3 and R2 answer them, through the gateway on
Ceph RGW and on the embedded upstream (both get partNumber wrong on their own; RGW's 304 has no ETag,
moto's no Last-Modified), with the upstream's own answers checked directly."""
from __future__ import annotations

import base64
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.gateway_process import remember_secret

MiB = 1024 * 1024


def error(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["ResponseMetadata"]["HTTPHeaders"]


def upload(c, b, key, parts, **kw):
    up = c.create_multipart_upload(Bucket=b, Key=key, **kw)["UploadId"]
    done = [{"PartNumber": i + 1, "ETag": c.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=i + 1,
                                                          Body=p, **kw)["ETag"]}
            for i, p in enumerate(parts)]
    return c.complete_multipart_upload(Bucket=b, Key=key, UploadId=up, MultipartUpload={"Parts": done})


def test_part_past_the_last_is_invalid_part(c, b):
    c.put_object(Bucket=b, Key="whole", Body=b"hello")
    upload(c, b, "parts", [b"a" * 5 * MiB, b"b" * 10])
    for key, past in (("whole", 2), ("parts", 3), ("parts", 10000)):
        for call in (c.get_object, c.head_object):
            status, code, _ = error(call, Bucket=b, Key=key, PartNumber=past)
            assert status == 400, (key, past, call)
            if call is c.get_object:       # HEAD answers carry no body, so no code
                assert code == "InvalidPart"


def test_part_one_of_an_object_uploaded_whole_is_all_of_it(c, b, gw):
    etag = c.put_object(Bucket=b, Key="whole", Body=b"hello")["ETag"]
    got = c.get_object(Bucket=b, Key="whole", PartNumber=1)
    assert got["Body"].read() == b"hello" and got["ETag"] == etag
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206 and got["ContentRange"] == "bytes 0-4/5"
    assert "PartsCount" not in got          # S3 counts parts only for multipart objects
    head = c.head_object(Bucket=b, Key="whole", PartNumber=1)
    assert head["ETag"] == etag and head["ContentLength"] == 5
    # an empty object: all of it is nothing (moto alone answers "bytes 0--1/0")
    c.put_object(Bucket=b, Key="empty", Body=b"")
    empty = c.get_object(Bucket=b, Key="empty", PartNumber=1)
    assert empty["Body"].read() == b"" and "ContentRange" not in empty


def test_parts_of_a_multipart_object_carry_its_etag(c, b):
    done = upload(c, b, "parts", [b"a" * 5 * MiB, b"b" * 10])
    second = c.get_object(Bucket=b, Key="parts", PartNumber=2)
    assert second["Body"].read() == b"b" * 10
    assert second["ETag"] == done["ETag"] and second["PartsCount"] == 2   # the object's, not the part's
    assert second["ContentRange"] == f"bytes {5 * MiB}-{5 * MiB + 9}/{5 * MiB + 10}"


def test_part_reads_of_sse_c_objects(c, b):
    key = os.urandom(32)
    remember_secret(base64.b64encode(key).decode())
    kw = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    c.put_object(Bucket=b, Key="sec", Body=b"classified", **kw)
    assert c.get_object(Bucket=b, Key="sec", PartNumber=1, **kw)["Body"].read() == b"classified"
    assert error(c.get_object, Bucket=b, Key="sec", PartNumber=2, **kw)[:2] == (400, "InvalidPart")
    upload(c, b, "secparts", [b"s" * 5 * MiB, b"t" * 7], **kw)
    assert c.get_object(Bucket=b, Key="secparts", PartNumber=2, **kw)["Body"].read() == b"t" * 7
    assert c.head_object(Bucket=b, Key="secparts", PartNumber=1, **kw)["ContentLength"] == 5 * MiB
    assert error(c.get_object, Bucket=b, Key="secparts", PartNumber=3, **kw)[:2] == (400, "InvalidPart")


def test_range_with_part_number_is_refused(c, b):
    c.put_object(Bucket=b, Key="whole", Body=b"hello")
    assert error(c.get_object, Bucket=b, Key="whole", PartNumber=1, Range="bytes=0-1")[:2] == \
        (400, "InvalidRequest")


def test_not_modified_carries_etag_and_last_modified(c, b):
    put = c.put_object(Bucket=b, Key="k", Body=b"v1")
    head = c.head_object(Bucket=b, Key="k")
    for call in (c.get_object, c.head_object):
        for cond in ({"IfNoneMatch": put["ETag"]}, {"IfModifiedSince": head["LastModified"]}):
            status, _, headers = error(call, Bucket=b, Key="k", **cond)
            assert status == 304
            assert headers.get("etag") == put["ETag"], (call, cond, headers)
            assert headers.get("last-modified") == head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]


def test_not_modified_of_an_sse_c_object(c, b):
    key = os.urandom(32)
    remember_secret(base64.b64encode(key).decode())
    kw = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    put = c.put_object(Bucket=b, Key="sec", Body=b"x", **kw)
    status, _, headers = error(c.get_object, Bucket=b, Key="sec", IfNoneMatch=put["ETag"], **kw)
    assert status == 304 and headers.get("etag") == put["ETag"] and headers.get("last-modified")


def test_rgw_itself_sends_no_etag_with_304(rgw_s3, gateway):
    """The upstream's own 304 lacks what the gateway adds (so the test above tests the gateway)."""
    s3 = gateway.client()
    name = "pr-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    try:
        etag = s3.put_object(Bucket=name, Key="k", Body=b"v")["ETag"]
        status, _, headers = error(rgw_s3.get_object, Bucket=name, Key="k", IfNoneMatch=etag)
        assert status == 304 and "etag" not in headers
        # and RGW answers partNumber past the last part with the whole object's range
        assert rgw_s3.get_object(Bucket=name, Key="k", PartNumber=1)["Body"].read() == b"v"
    finally:
        s3.delete_object(Bucket=name, Key="k")
        s3.delete_bucket(Bucket=name)


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_expired_presigned_url_is_access_denied(c, b):
    c.put_object(Bucket=b, Key="p", Body=b"presigned")
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p"}, ExpiresIn=1)
    assert _fetch(url) == (200, b"presigned")
    time.sleep(2.1)
    status, body = _fetch(url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"<Message>Request has expired</Message>" in body
    assert b"<X-Amz-Expires>1</X-Amz-Expires>" in body


def _presign(gw, method: str, path: str, expires: int) -> str:
    """botocore's own SigV4 query signer (boto3's CRT signer refuses a negative expiry)."""
    req = AWSRequest(method=method, url=gw.endpoint + path)
    S3SigV4QueryAuth(Credentials(gw.access_key, gw.secret_key), "s3", "auto", expires=expires).add_auth(req)
    return req.url


def test_negative_expires_is_expired(gw, c, b):
    c.put_object(Bucket=b, Key="p", Body=b"presigned")
    assert _fetch(_presign(gw, "GET", f"/{b}/p", 60)) == (200, b"presigned")   # the signer is right
    url = _presign(gw, "GET", f"/{b}/p", -5)
    assert "X-Amz-Expires=-5" in url
    status, body = _fetch(url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body
    req = urllib.request.Request(_presign(gw, "PUT", f"/{b}/never", -1), data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403
    assert "never" not in [o["Key"] for o in c.list_objects_v2(Bucket=b).get("Contents", [])]
