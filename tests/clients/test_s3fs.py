"""s3fs / fsspec over plain HTTP, region ``auto`` (``client_kwargs``). s3fs's default chunk size
is 50 MiB and it only goes multipart from two chunks, so the large upload passes ``chunksize``
(5 MiB) as a user uploading a 21 MiB file in parts would. ``fs.rm([...])`` is a DeleteObjects
batch; ``fs.url`` presigns."""
from __future__ import annotations

import fsspec
import pytest

from .workflow import cleanup, everyday, new_bucket

PART = 5 * 2**20


class S3fsDriver:
    name = "s3fs"

    def __init__(self, gateway) -> None:
        # through fsspec's registry, as `fsspec.filesystem("s3", ...)` users do
        self.fs = fsspec.filesystem("s3", key=gateway.access_key, secret=gateway.secret_key,
                                    endpoint_url=gateway.endpoint, client_kwargs={"region_name": "auto"},
                                    skip_instance_cache=True)

    def make_bucket(self, bucket):
        self.fs.mkdir(bucket)

    def list_buckets(self):
        return [e.rstrip("/") for e in self.fs.ls("", refresh=True)]

    def upload(self, bucket, key, path, *, large):
        self.fs.put_file(str(path), f"{bucket}/{key}", chunksize=PART if large else None)

    def list(self, bucket, prefix, delimiter):
        assert delimiter == "/"
        keys, prefixes = [], []
        for entry in self.fs.ls(f"{bucket}/{prefix}", detail=True, refresh=True):
            name = entry["name"][len(bucket) + 1:]
            if entry["type"] == "directory":
                prefixes.append(name + "/")
            else:
                keys.append(name)
        return keys, prefixes

    def download(self, bucket, key, dest):
        self.fs.get_file(f"{bucket}/{key}", str(dest))

    def copy(self, bucket, src, dst):
        self.fs.copy(f"{bucket}/{src}", f"{bucket}/{dst}")

    def presign_get(self, bucket, key):
        return self.fs.url(f"{bucket}/{key}", expires=600)

    def delete(self, bucket, key):
        self.fs.rm_file(f"{bucket}/{key}")

    def delete_many(self, bucket, keys):
        self.fs.rm([f"{bucket}/{k}" for k in keys])

    def remove_bucket(self, bucket):
        self.fs.rmdir(bucket)


@pytest.mark.rgw
def test_s3fs_everyday(gateway, rgw_s3, payloads, tmp_path):
    bucket = new_bucket("s3fs")
    try:
        log = everyday(S3fsDriver(gateway), rgw=rgw_s3, gateway=gateway, payloads=payloads,
                       tmp_path=tmp_path, bucket=bucket)
    finally:
        cleanup(rgw_s3, bucket)
    assert "DeleteObjects" in {e["operation"] for e in log}


@pytest.mark.rgw
@pytest.mark.xfail(strict=True, raises=OSError, reason=(
    "outside the gateway: s3fs asks GetBucketVersioning before emptying a whole bucket with "
    "fs.rm(bucket, recursive=True); R2 does not implement GetBucketVersioning (❌ in its table) and "
    "the gateway answers 501 NotImplemented as R2 does. fs.rm(bucket + '/prefix', recursive=True) "
    "and fs.rm([paths]) work."))
def test_s3fs_rm_whole_bucket_recursive(gateway, rgw_s3):
    fs = S3fsDriver(gateway).fs
    bucket = new_bucket("s3fsrm")
    fs.mkdir(bucket)
    try:
        fs.pipe({f"{bucket}/a/x": b"1", f"{bucket}/a/y": b"2", f"{bucket}/z": b"3"})
        fs.rm(f"{bucket}/a", recursive=True)  # a prefix: a listing and a DeleteObjects batch
        assert [o["Key"] for o in rgw_s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["z"]
        fs.rm(bucket, recursive=True)  # the whole bucket: GetBucketVersioning first → 501
    finally:
        cleanup(rgw_s3, bucket)
