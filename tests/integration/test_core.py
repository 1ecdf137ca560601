"""The core gateway end to end: boto3 → gateway → Ceph RGW, for every operation R2 implements."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from tests import s3raw
from tests.gateway_process import remember_secret


def code_of(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def keys_in(client, bucket: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


# -- buckets --------------------------------------------------------------------------------------

def test_bucket_lifecycle_and_listing(s3, rgw_s3):
    name = "core-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    try:
        s3.head_bucket(Bucket=name)
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert name in [b["Name"] for b in rgw_s3.list_buckets()["Buckets"]]  # really upstream
        loc = s3.get_bucket_location(Bucket=name)
        assert "LocationConstraint" in loc
    finally:
        s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["Error"]["Code"] in ("404", "NoSuchBucket")


def test_delete_nonempty_bucket_is_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert code_of(e.value) == "BucketNotEmpty"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_bucket_cors_roundtrip(s3, bucket):
    rules = [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["https://example.com"],
              "AllowedHeaders": ["*"], "MaxAgeSeconds": 300}]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0]["AllowedOrigins"] == ["https://example.com"]
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(e.value) == "NoSuchCORSConfiguration"


def test_bucket_lifecycle_configuration_roundtrip(s3, bucket):
    cfg = {"Rules": [{"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                      "Expiration": {"Days": 7}}]}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=cfg)
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got[0]["ID"] == "expire-tmp" and got[0]["Expiration"]["Days"] == 7


def test_get_bucket_encryption_is_the_upstreams_answer(s3, rgw_s3, bucket):
    """GetBucketEncryption passes the upstream's configuration through (the gateway cannot vouch
    for encryption at rest it does not do); RGW 16 answers an empty configuration for a new bucket."""
    got = s3.get_bucket_encryption(Bucket=bucket)
    direct = rgw_s3.get_bucket_encryption(Bucket=bucket)
    assert got["ServerSideEncryptionConfiguration"] == direct["ServerSideEncryptionConfiguration"]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket + "-missing")
    assert code_of(e.value) == "NoSuchBucket"


# -- objects --------------------------------------------------------------------------------------

KEYS = ["plain.txt", "dir/../up", "a//double", "pct%2Fslash", "with space", "plus+sign", "ünïcødé/日本",
        "tilde~and=eq&amp", "trailing/", "k" * 1024]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k[:20])
def test_keys_roundtrip_exactly(s3, rgw_s3, bucket, key):
    body = f"body of {key!r}".encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert key in keys_in(rgw_s3, bucket)  # the upstream stored exactly this key
    assert keys_in(s3, bucket) == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert keys_in(rgw_s3, bucket) == []


def test_put_get_head_range_conditionals(s3, bucket):
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data, ContentType="application/x-test",
                        Metadata={"color": "blue"})
    etag = put["ETag"]
    assert etag == '"' + hashlib.md5(data).hexdigest() + '"'
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == len(data) and head["ETag"] == etag
    assert head["Metadata"] == {"color": "blue"} and head["ContentType"] == "application/x-test"
    got = s3.get_object(Bucket=bucket, Key="obj", Range="bytes=10-19")
    assert got["Body"].read() == data[10:20] and got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="obj", IfMatch=etag)["Body"].read() == data
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj", IfMatch='"0000"')
    assert code_of(e.value) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj", Range="bytes=200000-300000")
    assert code_of(e.value) == "InvalidRange"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code_of(e.value) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_error_request_id_matches_header(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    r = e.value.response
    assert r["Error"]["Code"] == "NoSuchKey"
    assert r["ResponseMetadata"]["RequestId"] == r["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_list_objects_v1_v2_delete_objects(s3, rgw_s3, bucket):
    for k in ["a/1", "a/2", "b/1", "c"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert [o["Key"] for o in v2["Contents"]] == ["a/1", "a/2"]
    v2 = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["a/", "b/"]
    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=2)
    assert page["IsTruncated"]
    rest = s3.list_objects_v2(Bucket=bucket, ContinuationToken=page["NextContinuationToken"])
    assert len(page["Contents"]) + len(rest["Contents"]) == 4
    v1 = s3.list_objects(Bucket=bucket, Marker="a/2")
    assert [o["Key"] for o in v1["Contents"]] == ["b/1", "c"]
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a/1"}, {"Key": "a/2"}, {"Key": "c"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a/1", "a/2", "c"]
    assert keys_in(rgw_s3, bucket) == ["b/1"]


def test_copy_object_quotes_etag(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", Metadata={"m": "1"})
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    etag = r["CopyObjectResult"]["ETag"]
    assert etag.startswith('"') and etag == '"' + hashlib.md5(b"copy me").hexdigest() + '"'
    dst = s3.get_object(Bucket=bucket, Key="dst")
    assert dst["Body"].read() == b"copy me" and dst["Metadata"] == {"m": "1"}
    r = s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"},
                       MetadataDirective="REPLACE", Metadata={"n": "2"})
    assert s3.head_object(Bucket=bucket, Key="dst2")["Metadata"] == {"n": "2"}


def test_multipart_upload_with_copy_part_range(s3, rgw_s3, bucket):
    part = os.urandom(5 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="source", Body=b"0123456789" * 1000)
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="big")
    uid = mpu["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    p1 = s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=1, Body=part)
    p2 = s3.upload_part_copy(Bucket=bucket, Key="big", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange="bytes=0-99")
    assert p2["CopyPartResult"]["ETag"].startswith('"')
    parts = s3.list_parts(Bucket=bucket, Key="big", UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]},
                                   {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert done["ETag"].startswith('"') and done["ETag"].endswith('-2"')  # not RGW's empty ETag
    body = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert body == part + (b"0123456789" * 10)
    # partNumber reads (RGW 16 ignores partNumber: the gateway serves them as ranges)
    p1_read = s3.get_object(Bucket=bucket, Key="big", PartNumber=1)
    assert p1_read["Body"].read() == part and p1_read["PartsCount"] == 2
    p2_read = s3.get_object(Bucket=bucket, Key="big", PartNumber=2)
    assert p2_read["Body"].read() == b"0123456789" * 10
    assert s3.head_object(Bucket=bucket, Key="big", PartNumber=2)["ContentLength"] == 100
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="big", PartNumber=3)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400 and code_of(e.value) == "InvalidPart"
    single = s3.get_object(Bucket=bucket, Key="source", PartNumber=1)
    assert single["Body"].read() == b"0123456789" * 1000
    assert "r2gw-internal" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # abort another upload
    uid2 = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=uid2)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_non_uniform_parts_are_invalid_part(s3, rgw_s3, bucket):
    """R2: every part but the last has the same size."""
    uid = s3.create_multipart_upload(Bucket=bucket, Key="uneven")["UploadId"]
    sizes = [5 * 1024 * 1024 + 1, 5 * 1024 * 1024, 10]
    etags = [s3.upload_part(Bucket=bucket, Key="uneven", UploadId=uid, PartNumber=i + 1,
                            Body=b"u" * n)["ETag"] for i, n in enumerate(sizes)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="uneven", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": i + 1, "ETag": t} for i, t in enumerate(etags)]})
    assert code_of(e.value) == "InvalidPart"
    assert keys_in(rgw_s3, bucket) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="uneven", UploadId=uid)


def test_internal_bucket_is_out_of_reach(s3):
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="r2gw-internal")
    assert code_of(e.value) == "AccessDenied"


def test_complete_unknown_upload_is_no_such_upload(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId="2~nonexistent",
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})
    assert code_of(e.value) == "NoSuchUpload"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_sse_c_roundtrip(s3, bucket):
    key = os.urandom(32)
    remember_secret(base64.b64encode(key).decode())
    kw = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    s3.put_object(Bucket=bucket, Key="secret", Body=b"classified", **kw)
    assert s3.get_object(Bucket=bucket, Key="secret", **kw)["Body"].read() == b"classified"
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="secret")  # without the key: refused


def test_presigned_get_and_put(s3, bucket):
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    with urllib.request.urlopen(get_url) as r:
        assert r.read() == b"presigned body"


def test_default_checksummed_upload_over_https(gateway, rgw_s3, bucket):
    """boto3's defaults over HTTPS: aws-chunked with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    s3 = gateway.client(https=True)
    data = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="chunky", Body=io.BytesIO(data))
    got = rgw_s3.get_object(Bucket=bucket, Key="chunky")
    assert got["Body"].read() == data
    assert "aws-chunked" not in (got.get("ContentEncoding") or "")
    s3.upload_fileobj(io.BytesIO(data * 3), bucket, "chunky-mpu",
                      Config=__import__("boto3").s3.transfer.TransferConfig(multipart_threshold=5 * 2**20,
                                                                          multipart_chunksize=5 * 2**20))
    assert rgw_s3.get_object(Bucket=bucket, Key="chunky-mpu")["Body"].read() == data * 3


@pytest.mark.parametrize("mode", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"])
def test_every_aws_chunked_mode_lands_plain(gateway, rgw_s3, bucket, mode):
    data = os.urandom(200_000)
    status, _, body = s3raw.put_chunked(gateway.endpoint, bucket, "c", data, gateway.access_key,
                                        gateway.secret_key, mode=mode)
    assert status == 200, body
    assert rgw_s3.get_object(Bucket=bucket, Key="c")["Body"].read() == data


def test_signed_payload_hash_verified(gateway, rgw_s3, bucket):
    data = b"signed payload"
    url = f"{gateway.endpoint}/{bucket}/h"
    ok = s3raw.sign("PUT", url, {"Content-Length": str(len(data))}, hashlib.sha256(data).hexdigest(),
                    gateway.access_key, gateway.secret_key)
    assert s3raw.send(gateway.endpoint, "PUT", f"/{bucket}/h", ok, data)[0] == 200
    bad = s3raw.sign("PUT", url + "2", {"Content-Length": str(len(data))}, hashlib.sha256(b"other").hexdigest(),
                     gateway.access_key, gateway.secret_key)
    status, _, body = s3raw.send(gateway.endpoint, "PUT", f"/{bucket}/h2", bad, data)
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    assert keys_in(rgw_s3, bucket) == ["h"]


# -- negative: authentication and integrity -------------------------------------------------------

def test_wrong_signature_unknown_key(gateway, rgw_s3, bucket):
    bad = gateway.client(secret_key="wrong-secret")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="x", Body=b"1")
    assert code_of(e.value) == "SignatureDoesNotMatch"
    unknown = gateway.client(access_key="NOSUCHKEY", secret_key="whatever")
    with pytest.raises(ClientError) as e:
        unknown.put_object(Bucket=bucket, Key="y", Body=b"1")
    assert code_of(e.value) == "InvalidAccessKeyId"
    assert keys_in(rgw_s3, bucket) == []


def test_unsigned_request_is_denied(gateway, bucket):
    status, _, body = s3raw.send(gateway.endpoint, "GET", f"/{bucket}", {})
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_expired_presign(s3, gateway, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"1")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url)
    assert e.value.code == 403 and b"AccessDenied" in e.value.read()


def test_presign_longer_than_7_days_refused(gateway, bucket):
    url = gateway.client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"},
                                                  ExpiresIn=604801)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url)
    assert e.value.code in (400, 403)


def test_skewed_clock(gateway, rgw_s3, bucket):
    when = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=16)
    url = f"{gateway.endpoint}/{bucket}/skew"
    h = s3raw.sign("PUT", url, {"Content-Length": "1"}, "UNSIGNED-PAYLOAD", gateway.access_key,
                   gateway.secret_key, when=when)
    status, _, body = s3raw.send(gateway.endpoint, "PUT", f"/{bucket}/skew", h, b"1")
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body
    assert keys_in(rgw_s3, bucket) == []


def test_tampered_chunk_never_lands(gateway, rgw_s3, bucket):
    data = os.urandom(300_000)
    status, _, body = s3raw.put_chunked(gateway.endpoint, bucket, "t", data, gateway.access_key,
                                        gateway.secret_key, tamper_chunk=2)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert keys_in(rgw_s3, bucket) == []


def test_wrong_trailer_checksum_never_lands(gateway, rgw_s3, bucket):
    data = os.urandom(300_000)
    for mode in ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"):
        status, _, body = s3raw.put_chunked(gateway.endpoint, bucket, "w", data, gateway.access_key,
                                            gateway.secret_key, mode=mode, trailer_value="AAAAAA==")
        assert status == 400 and b"<Code>BadDigest</Code>" in body, (mode, body)
    assert keys_in(rgw_s3, bucket) == []


def test_wrong_content_md5_never_lands(s3, rgw_s3, bucket):
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"actual body" * 1000, ContentMD5=wrong)
    assert code_of(e.value) == "BadDigest"
    assert keys_in(rgw_s3, bucket) == []


def test_unreachable_upstream_is_503(tmp_path):
    from tests.gateway_process import GatewayProcess, free_port

    class Dead:
        endpoint, access_key, secret_key = f"http://127.0.0.1:{free_port()}", "a", "b"
    with GatewayProcess(tmp_path, upstream=Dead, tls=False) as gw:
        with pytest.raises(ClientError) as e:
            gw.client().list_buckets()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert code_of(e.value) == "ServiceUnavailable"


# -- the newcomer's path: embedded in-memory upstream -------------------------------------------

def test_embedded_upstream_quickstart(embedded_gateway):
    s3 = embedded_gateway.client()
    s3.create_bucket(Bucket="quickstart")
    s3.put_object(Bucket="quickstart", Key="hello.txt", Body=b"hello")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="quickstart")["Contents"]] == ["hello.txt"]
    assert s3.get_object(Bucket="quickstart", Key="hello.txt")["Body"].read() == b"hello"
    s3.delete_object(Bucket="quickstart", Key="hello.txt")
    s3.delete_bucket(Bucket="quickstart")
    assert "NOTHING IS PERSISTED" in embedded_gateway.log_path.read_text()


def test_expect_100_continue(gateway, rgw_s3, bucket):
    """SDKs send Expect: 100-continue and wait for it before the body."""
    import socket
    body = b"after the interim answer"
    h = s3raw.sign("PUT", f"{gateway.endpoint}/{bucket}/expect", {"Content-Length": str(len(body)),
                                                                   "Expect": "100-continue"},
                   "UNSIGNED-PAYLOAD", gateway.access_key, gateway.secret_key)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall((f"PUT /{bucket}/expect HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
    assert rgw_s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == body
