"""The test upstreams themselves work: boto3 straight at Ceph RGW (and at moto)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.upstreams.fixtures import s3_client

pytestmark = pytest.mark.rgw


def _bucket(prefix: str = "fx") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_endpoint_and_daemons(rgw):
    assert rgw.endpoint.startswith("http://127.0.0.1:")
    assert rgw.is_running() and rgw.cluster_running()
    assert isinstance(rgw.pid, int)
    # everything lives in the work directory
    assert str(rgw.workdir) in open(f"/proc/{rgw.pid}/cmdline").read()
    assert rgw.mon_port < 32768 and rgw.port < 32768


def test_bucket_and_object_roundtrip(rgw_s3):
    b = _bucket()
    rgw_s3.create_bucket(Bucket=b)
    body = os.urandom(100_000)
    put = rgw_s3.put_object(Bucket=b, Key="dir/obj.bin", Body=body, Metadata={"k": "v"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = rgw_s3.get_object(Bucket=b, Key="dir/obj.bin")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"k": "v"}
    keys = [o["Key"] for o in rgw_s3.list_objects_v2(Bucket=b).get("Contents", [])]
    assert keys == ["dir/obj.bin"]
    rgw_s3.delete_object(Bucket=b, Key="dir/obj.bin")
    with pytest.raises(ClientError) as ei:
        rgw_s3.head_object(Bucket=b, Key="dir/obj.bin")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    rgw_s3.delete_bucket(Bucket=b)


def test_multipart_upload(rgw_s3):
    b = _bucket()
    rgw_s3.create_bucket(Bucket=b)
    part1 = os.urandom(5 * 1024 * 1024)  # RGW's minimum part size (but for the last part)
    part2 = os.urandom(123_456)
    up = rgw_s3.create_multipart_upload(Bucket=b, Key="mp")
    uid = up["UploadId"]
    e1 = rgw_s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = rgw_s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    rgw_s3.complete_multipart_upload(
        Bucket=b, Key="mp", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    got = rgw_s3.get_object(Bucket=b, Key="mp")
    assert got["ContentLength"] == len(part1) + len(part2)
    assert got["Body"].read() == part1 + part2
    # multipart ETag: md5 of the part md5s, dash, part count
    head = rgw_s3.head_object(Bucket=b, Key="mp")
    assert head["ETag"].strip('"').endswith("-2")


def test_sse_c_over_plain_http(rgw_s3):
    b = _bucket()
    rgw_s3.create_bucket(Bucket=b)
    key = os.urandom(32)
    rgw_s3.put_object(Bucket=b, Key="enc", Body=b"top secret",
                      SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    got = rgw_s3.get_object(Bucket=b, Key="enc", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == b"top secret"
    assert got["SSECustomerAlgorithm"] == "AES256"
    # without the key, or with a wrong one, RGW refuses
    with pytest.raises(ClientError):
        rgw_s3.get_object(Bucket=b, Key="enc")
    with pytest.raises(ClientError):
        rgw_s3.get_object(Bucket=b, Key="enc", SSECustomerAlgorithm="AES256",
                          SSECustomerKey=os.urandom(32))


def test_any_region_signs(rgw):
    # RGW does not check the SigV4 credential scope's region
    for region in ("us-east-1", "auto", "eu-west-3"):
        c = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, region)
        c.list_buckets()


def test_wrong_secret_is_refused(rgw):
    c = s3_client(rgw.endpoint, rgw.access_key, "not-the-secret", rgw.region)
    with pytest.raises(ClientError) as ei:
        c.list_buckets()
    assert ei.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_create_user_and_admin(rgw):
    uid = f"u-{uuid.uuid4().hex[:8]}"
    access, secret = rgw.create_user(uid, max_buckets=2)
    info = json.loads(rgw.admin("user", "info", "--uid", uid))
    assert info["max_buckets"] == 2
    assert info["keys"][0]["access_key"] == access
    c = s3_client(rgw.endpoint, access, secret, rgw.region)
    c.create_bucket(Bucket=_bucket("u1"))
    c.create_bucket(Bucket=_bucket("u2"))
    with pytest.raises(ClientError) as ei:
        c.create_bucket(Bucket=_bucket("u3"))
    assert ei.value.response["Error"]["Code"] == "TooManyBuckets"
    # the user the tests run as may own many buckets
    main = rgw.admin_json("user", "info", "--uid", "r2gw-test")
    assert main["max_buckets"] >= 5000


def test_restart_rgw_keeps_data_and_port(rgw, rgw_s3):
    b = _bucket()
    rgw_s3.create_bucket(Bucket=b)
    rgw_s3.put_object(Bucket=b, Key="survivor", Body=b"still here")
    old_pid, endpoint = rgw.pid, rgw.endpoint

    rgw.stop_rgw()
    assert not rgw.is_running()
    assert rgw.cluster_running() is False
    down = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    with pytest.raises(Exception):
        down.list_buckets()
    rgw.start_rgw()
    assert rgw.is_running() and rgw.pid != old_pid

    rgw.restart_rgw()
    assert rgw.endpoint == endpoint
    assert rgw.cluster_running()
    c = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    assert c.get_object(Bucket=b, Key="survivor")["Body"].read() == b"still here"


def test_moto_upstream(moto_upstream, moto_s3):
    assert moto_upstream.endpoint.startswith("http://127.0.0.1:")
    b = _bucket("moto")
    moto_s3.create_bucket(Bucket=b)
    moto_s3.put_object(Bucket=b, Key="k", Body=b"v")
    assert moto_s3.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
