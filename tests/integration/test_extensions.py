"""R2's extensions through the gateway, on Ceph RGW and on the embedded (moto) upstream."""
from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import os
import uuid
from email.header import decode_header, make_header

import pytest
from botocore.exceptions import ClientError

from tests import s3raw


def with_headers(client, operation: str, headers: dict[str, str]):
    """Make ``client`` send extra headers on one operation (as R2's docs show for custom headers)."""
    def add(request, **_):
        for k, v in headers.items():
            request.headers[k] = v
    client.meta.events.register(f"before-sign.s3.{operation}", add)
    return client


def code(e) -> str:
    return e.value.response["Error"]["Code"]


# -- MERGE ---------------------------------------------------------------------------------------

def test_merge_metadata_directive(c, b):
    c.put_object(Bucket=b, Key="src", Body=b"data", ContentType="text/plain", CacheControl="max-age=60",
                 Metadata={"a": "1", "b": "2"})
    c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, MetadataDirective="MERGE",
                  Metadata={"b": "3", "c": "4"}, ContentLanguage="fr")
    head = c.head_object(Bucket=b, Key="dst")
    assert head["Metadata"] == {"a": "1", "b": "3", "c": "4"}
    assert head["ContentType"] == "text/plain" and head["CacheControl"] == "max-age=60"
    assert head["ContentLanguage"] == "fr"
    assert c.get_object(Bucket=b, Key="dst")["Body"].read() == b"data"


def test_merge_cannot_delete_a_key(c, b):
    c.put_object(Bucket=b, Key="src", Body=b"data", Metadata={"keep": "me", "also": "this"})
    c.copy_object(Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"}, MetadataDirective="MERGE",
                  Metadata={})
    assert c.head_object(Bucket=b, Key="src")["Metadata"] == {"keep": "me", "also": "this"}
    # REPLACE still can
    c.copy_object(Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"}, MetadataDirective="REPLACE",
                  Metadata={"only": "one"})
    assert c.head_object(Bucket=b, Key="src")["Metadata"] == {"only": "one"}


# -- cf-create-bucket-if-missing ----------------------------------------------------------------

def test_create_bucket_if_missing(gw, c):
    name = "auto-" + uuid.uuid4().hex[:10]
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=name, Key="k", Body=b"1")
    assert code(e) == "NoSuchBucket"
    with_headers(c, "PutObject", {"cf-create-bucket-if-missing": "true"})
    c.put_object(Bucket=name, Key="k", Body=b"first upload")
    assert c.get_object(Bucket=name, Key="k")["Body"].read() == b"first upload"
    c.delete_object(Bucket=name, Key="k")
    c.delete_bucket(Bucket=name)


def test_create_bucket_if_missing_concurrent_and_multipart(gw):
    name = "race-" + uuid.uuid4().hex[:10]

    def upload(i):
        cl = with_headers(gw.client(), "PutObject", {"cf-create-bucket-if-missing": "true"})
        cl.put_object(Bucket=name, Key=f"k{i}", Body=os.urandom(10_000))
        return i
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(upload, range(8))) == list(range(8))
    c = gw.client()
    assert len(c.list_objects_v2(Bucket=name)["Contents"]) == 8
    mp_bucket = name + "-mp"
    cm = with_headers(gw.client(), "CreateMultipartUpload", {"cf-create-bucket-if-missing": "true"})
    uid = cm.create_multipart_upload(Bucket=mp_bucket, Key="m")["UploadId"]
    c.abort_multipart_upload(Bucket=mp_bucket, Key="m", UploadId=uid)
    for bk in (name, mp_bucket):
        for o in c.list_objects_v2(Bucket=bk).get("Contents", []):
            c.delete_object(Bucket=bk, Key=o["Key"])
        c.delete_bucket(Bucket=bk)


# -- conditional PutObject ------------------------------------------------------------------------

def test_conditional_put_if_none_match_star(c, b):
    c.put_object(Bucket=b, Key="once", Body=b"v1", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="once", Body=b"v2", IfNoneMatch="*")
    assert code(e) == "PreconditionFailed"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert c.get_object(Bucket=b, Key="once")["Body"].read() == b"v1"  # untouched


def test_conditional_put_if_match(c, b):
    etag = c.put_object(Bucket=b, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="k", Body=b"v2", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert code(e) == "PreconditionFailed"
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"v1"
    c.put_object(Bucket=b, Key="k", Body=b"v2", IfMatch=etag)  # quoted ETag, as clients send it
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"v2"
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="absent", Body=b"x", IfMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (404, 412)


def test_conditional_put_by_time(gw, b):
    c = gw.client()
    c.put_object(Bucket=b, Key="t", Body=b"v1")
    past = "Mon, 01 Jan 2001 00:00:00 GMT"
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    with pytest.raises(ClientError) as e:
        with_headers(gw.client(), "PutObject", {"If-Unmodified-Since": past}).put_object(
            Bucket=b, Key="t", Body=b"v2")
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        with_headers(gw.client(), "PutObject", {"If-Modified-Since": future}).put_object(
            Bucket=b, Key="t", Body=b"v2")
    assert code(e) == "PreconditionFailed"
    assert c.get_object(Bucket=b, Key="t")["Body"].read() == b"v1"
    with_headers(gw.client(), "PutObject", {"If-Unmodified-Since": future}).put_object(
        Bucket=b, Key="t", Body=b"v3")
    assert c.get_object(Bucket=b, Key="t")["Body"].read() == b"v3"


# -- cf-copy-destination-if-* and x-amz-copy-source-if-* -----------------------------------------

def test_copy_destination_conditions(gw, b):
    c = gw.client()
    c.put_object(Bucket=b, Key="src", Body=b"source")
    dst_etag = c.put_object(Bucket=b, Key="dst", Body=b"old")["ETag"]
    with pytest.raises(ClientError) as e:
        with_headers(gw.client(), "CopyObject", {"cf-copy-destination-if-none-match": "*"}).copy_object(
            Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert code(e) == "PreconditionFailed"
    assert c.get_object(Bucket=b, Key="dst")["Body"].read() == b"old"
    with pytest.raises(ClientError) as e:
        with_headers(gw.client(), "CopyObject", {"cf-copy-destination-if-match": '"ffff"'}).copy_object(
            Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert code(e) == "PreconditionFailed"
    with_headers(gw.client(), "CopyObject", {"cf-copy-destination-if-match": dst_etag}).copy_object(
        Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert c.get_object(Bucket=b, Key="dst")["Body"].read() == b"source"
    with_headers(gw.client(), "CopyObject", {"cf-copy-destination-if-none-match": "*"}).copy_object(
        Bucket=b, Key="new", CopySource={"Bucket": b, "Key": "src"})
    assert c.get_object(Bucket=b, Key="new")["Body"].read() == b"source"


def test_copy_source_conditions_keep_s3_meaning(c, b):
    etag = c.put_object(Bucket=b, Key="src", Body=b"source")["ETag"]
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, CopySourceIfMatch='"abc"')
    assert code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, CopySourceIfNoneMatch=etag)
    assert code(e) == "PreconditionFailed"
    c.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"}, CopySourceIfMatch=etag)
    assert c.get_object(Bucket=b, Key="dst")["Body"].read() == b"source"


# -- ListBuckets pagination ----------------------------------------------------------------------

def test_list_buckets_pages_through_2500_with_headers_only(gateway, rgw_s3):
    prefix = "lb" + uuid.uuid4().hex[:6] + "-"
    names = [f"{prefix}{i:04d}" for i in range(2500)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: rgw_s3.create_bucket(Bucket=n), names))
    try:
        seen, token, pages = [], None, 0
        while True:
            h = {"cf-max-keys": "1000", "cf-prefix": prefix}
            if token:
                h["cf-continuation-token"] = token
            status, headers, body = s3raw.send(gateway.endpoint, "GET", "/", s3raw.sign(
                "GET", gateway.endpoint + "/", h, s3raw.EMPTY, gateway.access_key, gateway.secret_key))
            assert status == 200, body
            from lxml import etree
            root = etree.fromstring(body)
            ns = {"s": root.nsmap.get(None, "")}
            page = [e.text for e in root.findall("s:Buckets/s:Bucket/s:Name", ns)]
            assert root.findtext("s:KeyCount", namespaces=ns) == str(len(page))
            assert root.findtext("s:MaxKeys", namespaces=ns) == "1000"
            seen += page
            pages += 1
            truncated = headers["cf-is-truncated"] == "true"
            assert root.findtext("s:IsTruncated", namespaces=ns) == headers["cf-is-truncated"]
            if not truncated:
                assert "cf-next-continuation-token" not in headers
                break
            token = headers["cf-next-continuation-token"]
            assert root.findtext("s:NextContinuationToken", namespaces=ns) == token
        assert pages == 3 and seen == names
    finally:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: rgw_s3.delete_bucket(Bucket=n), names))


def test_list_buckets_query_parameters_and_start_after(gw, c):
    prefix = "q" + uuid.uuid4().hex[:6] + "-"
    names = [f"{prefix}{i}" for i in range(5)]
    for n in names:
        c.create_bucket(Bucket=n)
    try:
        status, headers, body = s3raw.send(gw.endpoint, "GET", f"/?prefix={prefix}&max-keys=2&start-after={names[0]}",
                                           s3raw.sign("GET", f"{gw.endpoint}/?prefix={prefix}&max-keys=2&start-after={names[0]}",
                                                      {}, s3raw.EMPTY, gw.access_key, gw.secret_key))
        assert status == 200
        assert f"<Name>{names[1]}</Name><".encode() in body and f"<Name>{names[2]}</Name>".encode() in body
        assert names[0].encode() + b"</Name>" not in body and headers["cf-is-truncated"] == "true"
        assert f"<StartAfter>{names[0]}</StartAfter>".encode() in body
        # plain boto3 list_buckets still works (no parameters: all buckets up to 1000)
        assert set(names) <= {x["Name"] for x in c.list_buckets()["Buckets"]}
    finally:
        for n in names:
            c.delete_bucket(Bucket=n)


# -- Unicode metadata ------------------------------------------------------------------------------

def rfc2047(value: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def test_unicode_metadata_roundtrips_through_boto3(c, b):
    text = "Grüße, 世界 — ✓"
    c.put_object(Bucket=b, Key="u", Body=b"x", Metadata={"title": rfc2047(text), "plain": "ascii"})
    meta = c.head_object(Bucket=b, Key="u")["Metadata"]
    assert decoded(meta["title"]) == text and meta["plain"] == "ascii"
    # Q-encoding in, the same text out
    c.put_object(Bucket=b, Key="q", Body=b"x", Metadata={"title": "=?utf-8?q?caf=C3=A9?="})
    assert decoded(c.get_object(Bucket=b, Key="q")["Metadata"]["title"]) == "café"


def test_metadata_limit_is_on_decoded_value(c, b):
    fits = "é" * 4000  # 8,000 bytes decoded; ~10.7 KB encoded
    c.put_object(Bucket=b, Key="fits", Body=b"x", Metadata={"v": rfc2047(fits)})
    assert decoded(c.head_object(Bucket=b, Key="fits")["Metadata"]["v"]) == fits
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="big", Body=b"x", Metadata={"v": rfc2047("é" * 4200)})
    assert code(e) == "MetadataTooLarge"


# -- region auto ---------------------------------------------------------------------------------

@pytest.mark.parametrize("constraint", ["auto", "us-east-1", None])
def test_region_auto(c, constraint):
    name = "reg-" + uuid.uuid4().hex[:10]
    kw = {"CreateBucketConfiguration": {"LocationConstraint": constraint}} if constraint else {}
    c.create_bucket(Bucket=name, **kw)
    try:
        assert c.get_bucket_location(Bucket=name)["LocationConstraint"] == "auto"
    finally:
        c.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        c.get_bucket_location(Bucket=name)
    assert code(e) == "NoSuchBucket"


# -- checksums -----------------------------------------------------------------------------------

def test_wrong_crc64nvme_leaves_nothing(gw, c, b):
    data = os.urandom(100_000)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="crc", Body=data, ChecksumCRC64NVME="AAAAAAAAAAA=")
    assert code(e) == "BadDigest"
    assert c.list_objects_v2(Bucket=b).get("KeyCount") == 0
    c.put_object(Bucket=b, Key="crc", Body=data, ChecksumAlgorithm="CRC64NVME")
    assert c.get_object(Bucket=b, Key="crc")["Body"].read() == data


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_checksum_trailers_over_https(gateway, bucket, rgw_s3, algorithm):
    s3 = gateway.client(https=True)
    data = os.urandom(512 * 1024)
    s3.put_object(Bucket=bucket, Key=algorithm, Body=data, ChecksumAlgorithm=algorithm)
    assert rgw_s3.get_object(Bucket=bucket, Key=algorithm)["Body"].read() == data
