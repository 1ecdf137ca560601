"""boto3 with its DEFAULT configuration over HTTPS: managed transfers (multipart above 8 MiB,
ranged parallel downloads, multipart copy), and — since botocore 1.36 — every upload sent
``aws-chunked`` with a CRC32 trailer (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``), which botocore does
only over TLS."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from .workflow import cleanup, everyday, new_bucket


class Boto3Driver:
    name = "boto3"

    def __init__(self, gateway) -> None:
        # what a user writes: endpoint, keys, region; nothing else (no Config at all)
        self.s3 = boto3.client("s3", endpoint_url=gateway.https_endpoint, region_name="auto",
                               aws_access_key_id=gateway.access_key,
                               aws_secret_access_key=gateway.secret_key, verify=gateway.ca_bundle)
        # what botocore really put on the wire for uploads: (x-amz-content-sha256, x-amz-trailer)
        self.upload_modes: set[tuple[str, str]] = set()
        self.s3.meta.events.register("before-send.s3", self._saw)

    def _saw(self, request, **_):
        if request.method == "PUT" and "x-amz-copy-source" not in request.headers and request.body:
            h = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
            self.upload_modes.add((h.get("x-amz-content-sha256", ""), h.get("x-amz-trailer", "")))

    def make_bucket(self, bucket):
        self.s3.create_bucket(Bucket=bucket)

    def list_buckets(self):
        return [b["Name"] for b in self.s3.list_buckets()["Buckets"]]

    def upload(self, bucket, key, path: Path, *, large):
        self.s3.upload_file(str(path), bucket, key)

    def list(self, bucket, prefix, delimiter):
        keys, prefixes = [], []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                       Delimiter=delimiter):
            keys += [o["Key"] for o in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return keys, prefixes

    def download(self, bucket, key, dest: Path):
        self.s3.download_file(bucket, key, str(dest))

    def copy(self, bucket, src, dst):
        self.s3.copy({"Bucket": bucket, "Key": src}, bucket, dst)  # managed: UploadPartCopy > 8 MiB

    def presign_get(self, bucket, key):
        return self.s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                              ExpiresIn=600)

    def delete(self, bucket, key):
        self.s3.delete_object(Bucket=bucket, Key=key)

    def delete_many(self, bucket, keys):
        out = self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
        assert not out.get("Errors"), out["Errors"]
        assert sorted(d["Key"] for d in out["Deleted"]) == sorted(keys)

    def remove_bucket(self, bucket):
        self.s3.delete_bucket(Bucket=bucket)


@pytest.mark.rgw
def test_boto3_default_config_over_https(gateway, rgw_s3, payloads, tmp_path):
    driver = Boto3Driver(gateway)
    bucket = new_bucket("boto3")
    try:
        log = everyday(driver, rgw=rgw_s3, gateway=gateway, payloads=payloads,
                       tmp_path=tmp_path, bucket=bucket, ca_bundle=gateway.ca_bundle)
    finally:
        cleanup(rgw_s3, bucket)
    # every upload (the small PutObject and each UploadPart) went aws-chunked with a CRC32 trailer
    assert driver.upload_modes == {("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32")}, \
        driver.upload_modes
    ops = {e["operation"] for e in log}
    assert "UploadPartCopy" in ops, "boto3's managed copy of the large object is a multipart copy"


@pytest.mark.rgw
def test_boto3_managed_copy_condition_is_enforced(gateway, rgw_s3, tmp_path):
    """s3transfer sends x-amz-copy-source-if-match (the source's ETag as it saw it) on every part
    of a managed copy; RGW ignores it, so the gateway checks it: a source replaced in between
    fails the part with 412 instead of silently mixing two versions."""
    s3 = Boto3Driver(gateway).s3
    bucket = new_bucket("boto3cond")
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="src", Body=b"x" * (5 << 20))
        etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
        upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
        src = {"Bucket": bucket, "Key": "src"}
        part = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=1,
                                   CopySource=src, CopySourceIfMatch=etag)
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=2,
                                CopySource=src, CopySourceIfMatch='"0123456789abcdef0123456789abcdef"')
        assert e.value.response["Error"]["Code"] == "PreconditionFailed"
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload, PartNumber=2,
                                CopySource=src, CopySourceIfNoneMatch=etag)
        assert e.value.response["Error"]["Code"] == "PreconditionFailed"
        s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
        assert rgw_s3.head_object(Bucket=bucket, Key="dst")["ContentLength"] == 5 << 20
    finally:
        cleanup(rgw_s3, bucket)


@pytest.mark.rgw
def test_boto3_virtual_hosted_style(vhost_gateway, localhost_subdomains, rgw_s3, payloads, tmp_path):
    """The whole workflow again, virtual-hosted style (``http://<bucket>.localhost:<port>/<key>``),
    with boto3's standard option for it (botocore's "auto" is path-style for a custom endpoint;
    the AWS SDK for JavaScript v3 defaults to virtual-hosted style for one with a host name)."""
    from botocore.config import Config
    driver = Boto3Driver(vhost_gateway)
    driver.s3 = boto3.client("s3", endpoint_url=vhost_gateway.endpoint.replace("127.0.0.1", "localhost"),
                             region_name="auto", aws_access_key_id=vhost_gateway.access_key,
                             aws_secret_access_key=vhost_gateway.secret_key,
                             config=Config(s3={"addressing_style": "virtual"}))
    hosts = set()
    driver.s3.meta.events.register("before-send.s3", lambda request, **_: hosts.add(request.url.split("/")[2]))
    bucket = new_bucket("boto3vh")
    try:
        everyday(driver, rgw=rgw_s3, gateway=vhost_gateway, payloads=payloads, tmp_path=tmp_path,
                 bucket=bucket)
    finally:
        cleanup(rgw_s3, bucket)
    # every bucket request, CreateBucket included, went to the bucket's host; ListBuckets to the bare one
    assert hosts == {f"{bucket}.localhost:{vhost_gateway.port}", f"localhost:{vhost_gateway.port}"}, hosts
