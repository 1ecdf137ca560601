"""Checksums kept and returned as R2 keeps them, through the gateway on Ceph RGW (which drops them:
the gateway keeps them) and on the embedded upstream; the upstream's state checked directly."""
from __future__ import annotations

import base64
import hashlib
import io
import os

import boto3
import pytest
from botocore.exceptions import ClientError

from gateway.checksums import compute_b64, new_checksum
from tests import s3raw

MiB = 1024 * 1024
ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
INTERNAL = "r2gw-internal"


def field(algorithm: str) -> str:
    return "Checksum" + algorithm


def code(e) -> str:
    return e.value.response["Error"]["Code"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_object_checksum_comes_back(c, b, algorithm):
    data = os.urandom(70_000)
    expected = compute_b64(algorithm, data)
    put = c.put_object(Bucket=b, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    assert put[field(algorithm)] == expected and put["ChecksumType"] == "FULL_OBJECT"
    for call in (c.head_object, c.get_object):
        got = call(Bucket=b, Key="k", ChecksumMode="ENABLED")
        assert got[field(algorithm)] == expected and got["ChecksumType"] == "FULL_OBJECT"
    plain = c.head_object(Bucket=b, Key="k")
    assert field(algorithm) not in plain and "ChecksumType" not in plain
    ranged = c.get_object(Bucket=b, Key="k", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert field(algorithm) not in ranged and ranged["Body"].read() == data[:10]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_trailer_checksum_comes_back(gateway, rgw_s3, bucket, algorithm):
    """boto3's default over HTTPS: the checksum arrives in an aws-chunked trailer, after the body;
    the gateway keeps it in its internal bucket, tied to the object's ETag."""
    s3 = gateway.client(https=True)
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="t", Body=io.BytesIO(data), ChecksumAlgorithm=algorithm)
    assert put[field(algorithm)] == compute_b64(algorithm, data)
    head = s3.head_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert head[field(algorithm)] == compute_b64(algorithm, data) and head["ChecksumType"] == "FULL_OBJECT"
    assert s3.get_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")["Body"].read() == data
    # on RGW: the bytes as sent, no checksum of its own, and no trace of the gateway's metadata
    direct = rgw_s3.head_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert direct["ContentLength"] == len(data) and field(algorithm) not in direct
    assert "r2gw-checksum" in direct["Metadata"]   # the gateway's own metadata, hidden from clients
    assert "r2gw-checksum" not in head["Metadata"]


def test_overwritten_upstream_shows_no_checksum(gateway, rgw_s3, bucket):
    c = gateway.client()
    https = gateway.client(https=True)
    c.put_object(Bucket=bucket, Key="h", Body=b"header form", ChecksumAlgorithm="SHA256")
    https.put_object(Bucket=bucket, Key="t", Body=io.BytesIO(b"trailer form"), ChecksumAlgorithm="CRC32C")
    assert "ChecksumSHA256" in c.head_object(Bucket=bucket, Key="h", ChecksumMode="ENABLED")
    assert "ChecksumCRC32C" in c.head_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    rgw_s3.put_object(Bucket=bucket, Key="h", Body=b"written on the upstream")
    # even keeping the gateway's metadata: the record is tied to the ETag of what the gateway stored
    rgw_s3.put_object(Bucket=bucket, Key="t", Body=b"written on the upstream",
                      Metadata={"r2gw-checksum": "crc32c FULL_OBJECT"})
    for key in ("h", "t"):
        head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert not [k for k in head if k.startswith("Checksum")], head


def test_client_cannot_forge_the_kept_checksum(c, b):
    forged = base64.b64encode(b"\0\0\0\0").decode()
    c.put_object(Bucket=b, Key="f", Body=b"data", Metadata={"r2gw-checksum": f"crc32 FULL_OBJECT {forged}", "x": "1"})
    head = c.head_object(Bucket=b, Key="f", ChecksumMode="ENABLED")
    assert head["Metadata"] == {"x": "1"}
    assert head.get("ChecksumCRC32") == compute_b64("CRC32", b"data")   # boto3's own, not the forged one


def test_wrong_checksum_stores_nothing(gateway, rgw_s3, bucket):
    c = gateway.client()
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="bad", Body=b"x" * 5000, ChecksumSHA1=compute_b64("SHA1", b"y"))
    assert code(e) == "BadDigest"
    assert "Contents" not in rgw_s3.list_objects_v2(Bucket=bucket)
    assert "Contents" not in rgw_s3.list_objects_v2(Bucket=INTERNAL, Prefix=f"checksums/{bucket}/")


def _parts(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def _expected(algorithm: str, parts: list[bytes]) -> tuple[str, str]:
    if algorithm == "CRC64NVME":
        whole = new_checksum(algorithm)
        for p in parts:
            whole.update(p)
        return whole.digest_b64(), "FULL_OBJECT"
    digests = b"".join(base64.b64decode(compute_b64(algorithm, p)) for p in parts)
    return f"{compute_b64(algorithm, digests)}-{len(parts)}", "COMPOSITE"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_multipart_checksums(gw, c, b, rgw_s3, algorithm):
    parts = _parts(os.urandom(11 * MiB + 3), 5 * MiB)
    created = c.create_multipart_upload(Bucket=b, Key="m", ChecksumAlgorithm=algorithm)
    assert created["ChecksumAlgorithm"] == algorithm
    up = created["UploadId"]
    done = []
    for n, part in enumerate(parts, 1):
        r = c.upload_part(Bucket=b, Key="m", UploadId=up, PartNumber=n, Body=part, ChecksumAlgorithm=algorithm)
        assert r[field(algorithm)] == compute_b64(algorithm, part)
        done.append({"PartNumber": n, "ETag": r["ETag"], field(algorithm): r[field(algorithm)]})
    listed = c.list_parts(Bucket=b, Key="m", UploadId=up)
    assert listed["ChecksumAlgorithm"] == algorithm
    assert [p[field(algorithm)] for p in listed["Parts"]] == [compute_b64(algorithm, p) for p in parts]
    value, kind = _expected(algorithm, parts)
    completed = c.complete_multipart_upload(Bucket=b, Key="m", UploadId=up, MultipartUpload={"Parts": done})
    assert completed[field(algorithm)] == value and completed["ChecksumType"] == kind
    head = c.head_object(Bucket=b, Key="m", ChecksumMode="ENABLED")
    assert head[field(algorithm)] == value and head["ChecksumType"] == kind
    got = c.get_object(Bucket=b, Key="m", ChecksumMode="ENABLED")   # boto3 validates FULL_OBJECT CRCs
    assert got["Body"].read() == b"".join(parts)
    if "R2GW_UPSTREAM_ENDPOINT" in gw.env:
        # the upload's own records are gone; the object's stays, and no client sees the bucket
        records = rgw_s3.list_objects_v2(Bucket=INTERNAL).get("Contents", [])
        assert not [r for r in records if r["Key"].startswith("uploads/")]
        assert [r for r in records if r["Key"].startswith(f"checksums/{b}/")]
        assert INTERNAL not in [x["Name"] for x in c.list_buckets()["Buckets"]]
        with pytest.raises(ClientError) as e:
            c.list_objects_v2(Bucket=INTERNAL)
        assert code(e) == "AccessDenied"
    assert [o["Key"] for o in c.list_objects_v2(Bucket=b)["Contents"]] == ["m"]


def test_checksum_type_and_required_part_checksums(c, b):
    with pytest.raises(ClientError) as e:     # R2: CRC32 is COMPOSITE only
        c.create_multipart_upload(Bucket=b, Key="x", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 501)
    created = c.create_multipart_upload(Bucket=b, Key="x", ChecksumAlgorithm="CRC64NVME",
                                        ChecksumType="FULL_OBJECT")
    assert created.get("ChecksumType") == "FULL_OBJECT"
    up = created["UploadId"]
    raw = c.meta.client if hasattr(c.meta, "client") else c
    plain = boto3.client("s3", endpoint_url=c.meta.endpoint_url, region_name="auto",
                         aws_access_key_id=c._request_signer._credentials.access_key,
                         aws_secret_access_key=c._request_signer._credentials.secret_key,
                         config=__import__("botocore.config").config.Config(
                             request_checksum_calculation="when_required", s3={"addressing_style": "path"},
                             retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:     # no checksum on a part of a checksummed upload
        plain.upload_part(Bucket=b, Key="x", UploadId=up, PartNumber=1, Body=b"p")
    assert code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:     # another algorithm
        raw.upload_part(Bucket=b, Key="x", UploadId=up, PartNumber=1, Body=b"p", ChecksumAlgorithm="SHA256")
    assert code(e) == "InvalidRequest"
    r = raw.upload_part(Bucket=b, Key="x", UploadId=up, PartNumber=1, Body=b"p", ChecksumAlgorithm="CRC64NVME")
    with pytest.raises(ClientError) as e:     # a part checksum that is not the part's
        c.complete_multipart_upload(Bucket=b, Key="x", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC64NVME": compute_b64("CRC64NVME", b"q")}]})
    assert code(e) == "InvalidPart"
    done = c.complete_multipart_upload(Bucket=b, Key="x", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r["ETag"]}]})
    assert done["ChecksumCRC64NVME"] == compute_b64("CRC64NVME", b"p")


def test_abort_removes_the_upload_records(gateway, rgw_s3, bucket):
    c = gateway.client()
    up = c.create_multipart_upload(Bucket=bucket, Key="a", ChecksumAlgorithm="SHA1")["UploadId"]
    c.upload_part(Bucket=bucket, Key="a", UploadId=up, PartNumber=1, Body=b"x" * 100, ChecksumAlgorithm="SHA1")
    prefix = "uploads/" + hashlib.sha256(f"{bucket}\0{up}".encode()).hexdigest() + "/"
    assert rgw_s3.list_objects_v2(Bucket=INTERNAL, Prefix=prefix).get("KeyCount") == 2   # the upload, its part
    c.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=up)
    assert rgw_s3.list_objects_v2(Bucket=INTERNAL, Prefix=prefix).get("KeyCount") == 0


def test_sdk_default_multipart_over_https(gateway, rgw_s3, bucket):
    """upload_fileobj with boto3's defaults (CRC32 declared at CreateMultipartUpload, trailers on
    each part): the object's COMPOSITE checksum comes back."""
    s3 = gateway.client(https=True)
    data = os.urandom(10 * MiB + 1)
    s3.upload_fileobj(io.BytesIO(data), bucket, "sdk", Config=boto3.s3.transfer.TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    value, kind = _expected("CRC32", _parts(data, 5 * MiB))
    head = s3.head_object(Bucket=bucket, Key="sdk", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == value and head["ChecksumType"] == kind
    assert rgw_s3.get_object(Bucket=bucket, Key="sdk")["Body"].read() == data


def test_content_encoding_kept_as_written(gateway, rgw_s3, bucket):
    data = b"compressed, supposedly"
    status, _, body = s3raw.put_chunked(gateway.endpoint, bucket, "enc", data, gateway.access_key,
                                        gateway.secret_key, content_encoding="aws-chunked, deflate,  gzip")
    assert status == 200, body
    assert rgw_s3.head_object(Bucket=bucket, Key="enc")["ContentEncoding"] == "deflate,  gzip"
    assert gateway.client().head_object(Bucket=bucket, Key="enc")["ContentEncoding"] == "deflate,  gzip"
    status, _, body = s3raw.put_chunked(gateway.endpoint, bucket, "only", data, gateway.access_key,
                                        gateway.secret_key, content_encoding="aws-chunked")
    assert status == 200, body
    assert "ContentEncoding" not in rgw_s3.head_object(Bucket=bucket, Key="only")
    assert hashlib.md5(rgw_s3.get_object(Bucket=bucket, Key="only")["Body"].read()).digest() == \
        hashlib.md5(data).digest()


def test_internal_records_cannot_be_copied_out(gateway, rgw_s3, bucket):
    c = gateway.client()
    c.put_object(Bucket=bucket, Key="t", Body=b"x")
    gateway.client(https=True).put_object(Bucket=bucket, Key="t2", Body=io.BytesIO(b"y"), ChecksumAlgorithm="SHA1")
    record = rgw_s3.list_objects_v2(Bucket=INTERNAL, Prefix=f"checksums/{bucket}/")["Contents"][0]["Key"]
    for call in (lambda: c.copy_object(Bucket=bucket, Key="leak", CopySource={"Bucket": INTERNAL, "Key": record}),
                 lambda: c.get_object(Bucket=INTERNAL, Key=record),
                 lambda: c.head_object(Bucket=INTERNAL, Key=record)):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "leak" not in [o["Key"] for o in rgw_s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_a_started_gateway_has_awscrt_loaded_before_any_crc32c_request(rgw, tmp_path):
    """awscrt is imported lazily (a bulk copy skips it); the gateway loads it at start, so a
    worker's first CRC32C/CRC64NVME request does not wait ~40 ms for the import."""
    from tests.gateway_process import GatewayProcess
    gw = GatewayProcess(tmp_path, upstream=rgw).start()
    try:
        maps = open(f"/proc/{gw.proc.pid}/maps").read()
    finally:
        gw.stop()
    assert "_awscrt" in maps
