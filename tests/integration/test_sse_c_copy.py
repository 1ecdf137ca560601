"""SSE-C copies in every combination through the gateway: CopyObject and UploadPartCopy, plain →
SSE-C, SSE-C → plain, SSE-C → SSE-C with another key; on Ceph RGW (which cannot make most of them:
the gateway copies) with the stored state checked on RGW directly, and on the embedded upstream."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from tests.gateway_process import remember_secret

MiB = 1024 * 1024
K1, K2 = os.urandom(32), os.urandom(32)
for _k in (K1, K2):
    remember_secret(base64.b64encode(_k).decode())


def sse(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key} if key else {}


def source_sse(key):
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key} if key else {}


def md5_b64(key: bytes) -> str:
    return base64.b64encode(hashlib.md5(key).digest()).decode()


def code(e) -> str:
    return e.value.response["Error"]["Code"]


def status(e) -> int:
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"]


COMBINATIONS = {"plain-to-ssec": (None, K1), "ssec-to-plain": (K1, None), "ssec-to-other-key": (K1, K2)}


def on_rgw(gw) -> bool:
    return "R2GW_UPSTREAM_ENDPOINT" in gw.env


def check_stored(gw, rgw_s3, bucket, key, data, dest_key):
    """On RGW itself: an SSE-C object cannot be read without its key (the bytes are stored
    encrypted), and reads back with it; a plain one reads without a key."""
    if not on_rgw(gw):
        return
    if dest_key:
        with pytest.raises(ClientError) as e:
            rgw_s3.get_object(Bucket=bucket, Key=key)
        assert status(e) == 400
        assert rgw_s3.get_object(Bucket=bucket, Key=key, **sse(dest_key))["Body"].read() == data
    else:
        assert rgw_s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


@pytest.mark.parametrize("size", [1, MiB + 17, 8 * MiB])
@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_copy_object(gw, c, b, rgw_s3, combination, size):
    src_key, dst_key = COMBINATIONS[combination]
    data = os.urandom(size)
    c.put_object(Bucket=b, Key="src", Body=data, ContentType="application/x-src", Metadata={"a": "1"}, **sse(src_key))
    r = c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, **source_sse(src_key),
                      **sse(dst_key))
    assert r["CopyObjectResult"]["ETag"].startswith('"') and r["CopyObjectResult"]["LastModified"]
    if dst_key:
        assert r["SSECustomerAlgorithm"] == "AES256" and r["SSECustomerKeyMD5"] == md5_b64(dst_key)
    got = c.get_object(Bucket=b, Key="dst", **sse(dst_key))
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-src" and got["Metadata"] == {"a": "1"}  # COPY directive
    head = c.head_object(Bucket=b, Key="dst", **sse(dst_key))
    assert head["ETag"] == r["CopyObjectResult"]["ETag"]
    if dst_key and on_rgw(gw):
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket=b, Key="dst")   # without the key: 400
        assert status(e) == 400
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket=b, Key="dst", **sse(K2 if dst_key == K1 else K1))  # another key
        assert status(e) in (400, 403)
    check_stored(gw, rgw_s3, b, "dst", data, dst_key)


@pytest.mark.parametrize("combination", list(COMBINATIONS) + ["ssec-same-key"])
def test_upload_part_copy_multipart_sized(gw, c, b, rgw_s3, combination):
    """A 12 MiB source (itself a multipart SSE-C upload where it has a key) copied part by part,
    with ranges, into an upload under the destination's key."""
    src_key, dst_key = COMBINATIONS.get(combination, (K1, K1))
    data = os.urandom(12 * MiB + 5)
    up = c.create_multipart_upload(Bucket=b, Key="src", **sse(src_key))["UploadId"]
    parts = []
    for n, start in enumerate(range(0, len(data), 5 * MiB), 1):
        p = c.upload_part(Bucket=b, Key="src", UploadId=up, PartNumber=n, Body=data[start:start + 5 * MiB],
                          **sse(src_key))
        parts.append({"PartNumber": n, "ETag": p["ETag"]})
    c.complete_multipart_upload(Bucket=b, Key="src", UploadId=up, MultipartUpload={"Parts": parts})

    up = c.create_multipart_upload(Bucket=b, Key="dst", **sse(dst_key))["UploadId"]
    parts = []
    for n, start in enumerate(range(0, len(data), 6 * MiB), 1):
        end = min(start + 6 * MiB, len(data)) - 1
        r = c.upload_part_copy(Bucket=b, Key="dst", UploadId=up, PartNumber=n,
                               CopySource={"Bucket": b, "Key": "src"}, CopySourceRange=f"bytes={start}-{end}",
                               **source_sse(src_key), **sse(dst_key))
        assert r["CopyPartResult"]["ETag"].startswith('"')
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    c.complete_multipart_upload(Bucket=b, Key="dst", UploadId=up, MultipartUpload={"Parts": parts},
                                **sse(dst_key))
    assert c.get_object(Bucket=b, Key="dst", **sse(dst_key))["Body"].read() == data
    if dst_key and on_rgw(gw):
        with pytest.raises(ClientError) as e:
            c.head_object(Bucket=b, Key="dst")
        assert status(e) == 400
    check_stored(gw, rgw_s3, b, "dst", data, dst_key)


@pytest.mark.parametrize("directive", ["COPY", "REPLACE", "MERGE"])
def test_metadata_directive(c, b, directive):
    c.put_object(Bucket=b, Key="src", Body=b"meta", ContentType="text/plain", Metadata={"a": "1", "b": "2"},
                 **sse(K1))
    c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, MetadataDirective=directive,
                  Metadata={"b": "3", "c": "4"}, ContentType="text/x-new", **source_sse(K1), **sse(K2))
    head = c.head_object(Bucket=b, Key="dst", **sse(K2))
    expected = {"COPY": ({"a": "1", "b": "2"}, "text/plain"), "REPLACE": ({"b": "3", "c": "4"}, "text/x-new"),
                "MERGE": ({"a": "1", "b": "3", "c": "4"}, "text/x-new")}[directive]
    assert (head["Metadata"], head["ContentType"]) == expected


def test_source_and_destination_conditions(c, b, rgw_s3, gw):
    etag = c.put_object(Bucket=b, Key="src", Body=b"cond", **sse(K1))["ETag"]
    c.put_object(Bucket=b, Key="taken", Body=b"old")
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, CopySourceIfMatch='"nope"',
                      **source_sse(K1), **sse(K2))
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, CopySourceIfNoneMatch=etag,
                      **source_sse(K1))
    assert code(e) == "PreconditionFailed"
    client = c

    def destination_if_none_match(request, **_):
        request.headers["cf-copy-destination-if-none-match"] = "*"
    client.meta.events.register("before-sign.s3.CopyObject", destination_if_none_match)
    with pytest.raises(ClientError) as e:
        client.copy_object(Bucket=b, Key="taken", CopySource={"Bucket": b, "Key": "src"}, **source_sse(K1),
                           **sse(K2))
    assert code(e) == "PreconditionFailed"
    assert c.get_object(Bucket=b, Key="taken")["Body"].read() == b"old"
    client.copy_object(Bucket=b, Key="fresh", CopySource={"Bucket": b, "Key": "src"}, CopySourceIfMatch=etag,
                       **source_sse(K1), **sse(K2))
    assert c.get_object(Bucket=b, Key="fresh", **sse(K2))["Body"].read() == b"cond"
    assert "dst" not in [o["Key"] for o in c.list_objects_v2(Bucket=b).get("Contents", [])]


def test_wrong_or_missing_source_key_stores_nothing(gateway, rgw_s3, bucket):
    c = gateway.client()
    c.put_object(Bucket=bucket, Key="src", Body=b"x" * 1000, **sse(K1))
    for args in (source_sse(K2), {}):
        with pytest.raises(ClientError) as e:
            c.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, **args, **sse(K2))
        assert status(e) in (400, 403)
    bad = {"CopySourceSSECustomerAlgorithm": "AES128", "CopySourceSSECustomerKey": K1}
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, **bad, **sse(K2))
    assert code(e) == "InvalidArgument"
    assert [o["Key"] for o in rgw_s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["src"]


def test_key_rotation_in_place(gateway, rgw_s3, bucket):
    """The same object re-encrypted under a new key (a copy onto itself that changes the key)."""
    c = gateway.client()
    data = os.urandom(8 * MiB)
    c.put_object(Bucket=bucket, Key="obj", Body=data, **sse(K1))
    c.copy_object(Bucket=bucket, Key="obj", CopySource={"Bucket": bucket, "Key": "obj"}, **source_sse(K1), **sse(K2))
    assert c.get_object(Bucket=bucket, Key="obj", **sse(K2))["Body"].read() == data
    with pytest.raises(ClientError):
        c.get_object(Bucket=bucket, Key="obj", **sse(K1))
    with pytest.raises(ClientError) as e:   # onto itself, changing nothing: S3's InvalidRequest
        c.copy_object(Bucket=bucket, Key="obj", CopySource={"Bucket": bucket, "Key": "obj"}, **source_sse(K2),
                      **sse(K2))
    assert code(e) == "InvalidRequest"
    check_stored(gateway, rgw_s3, bucket, "obj", data, K2)


def test_rgw_itself_cannot(rgw_s3, bucket, gateway):
    """Why the gateway copies: what RGW 16 answers for these copies when asked directly (if it
    ever learns them, quirks.NO_SSE_C_COPY / NO_SSE_C_PART_COPY can lose "ceph")."""
    rgw_s3.put_object(Bucket=bucket, Key="enc", Body=b"e", **sse(K1))
    rgw_s3.put_object(Bucket=bucket, Key="plain", Body=b"p")
    with pytest.raises(ClientError) as e:
        rgw_s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "enc"}, **source_sse(K1))
    assert status(e) == 501
    rgw_s3.copy_object(Bucket=bucket, Key="d2", CopySource={"Bucket": bucket, "Key": "plain"}, **sse(K1))
    assert rgw_s3.get_object(Bucket=bucket, Key="d2")["Body"].read() == b"p"   # stored unencrypted
    up = rgw_s3.create_multipart_upload(Bucket=bucket, Key="m", **sse(K2))["UploadId"]
    with pytest.raises(ClientError) as e:
        rgw_s3.upload_part_copy(Bucket=bucket, Key="m", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "enc"}, **source_sse(K1), **sse(K2))
    assert code(e) == "InvalidArgument"
    rgw_s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=up)


def test_part_copy_into_a_checksummed_upload(gateway, rgw_s3, bucket):
    """A part the gateway copies gets its checksum computed on the way (in CopyPartResult, ListParts
    and the object's COMPOSITE checksum); an upload with a part RGW copied natively completes
    without an object checksum (the gateway never saw those bytes)."""
    c = gateway.client()
    data = os.urandom(5 * MiB + 11)
    c.put_object(Bucket=bucket, Key="src", Body=data, **sse(K1))
    c.put_object(Bucket=bucket, Key="plain", Body=data)
    up = c.create_multipart_upload(Bucket=bucket, Key="dst", ChecksumAlgorithm="SHA256", **sse(K2))["UploadId"]
    r = c.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"},
                           **source_sse(K1), **sse(K2))
    part = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert r["CopyPartResult"]["ChecksumSHA256"] == part
    assert c.list_parts(Bucket=bucket, Key="dst", UploadId=up)["Parts"][0]["ChecksumSHA256"] == part
    done = c.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=up, **sse(K2), MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    composite = base64.b64encode(hashlib.sha256(hashlib.sha256(data).digest()).digest()).decode() + "-1"
    assert done["ChecksumSHA256"] == composite
    assert c.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED", **sse(K2))["ChecksumSHA256"] == composite
    assert c.get_object(Bucket=bucket, Key="dst", **sse(K2))["Body"].read() == data

    up = c.create_multipart_upload(Bucket=bucket, Key="native", ChecksumAlgorithm="SHA256")["UploadId"]
    r = c.upload_part_copy(Bucket=bucket, Key="native", UploadId=up, PartNumber=1,
                           CopySource={"Bucket": bucket, "Key": "plain"})
    done = c.complete_multipart_upload(Bucket=bucket, Key="native", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert "ChecksumSHA256" not in done
    assert "ChecksumSHA256" not in c.head_object(Bucket=bucket, Key="native", ChecksumMode="ENABLED")
    assert c.get_object(Bucket=bucket, Key="native")["Body"].read() == data
