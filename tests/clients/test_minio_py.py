"""The MinIO Python SDK over plain HTTP, region ``auto``: ``fput_object`` splits anything above its
minimum part size (5 MiB) into a multipart upload; ``remove_objects`` is a DeleteObjects batch.
Path-style, as the SDK does for any endpoint that is not AWS's."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject

from .workflow import cleanup, everyday, new_bucket


class MinioPyDriver:
    name = "minio-py"

    def __init__(self, gateway) -> None:
        self.mc = Minio(urlsplit(gateway.endpoint).netloc, access_key=gateway.access_key,
                        secret_key=gateway.secret_key, secure=False, region="auto")

    def make_bucket(self, bucket):
        self.mc.make_bucket(bucket)
        self._last_bucket = bucket

    def list_buckets(self):
        assert self.mc.bucket_exists(self._last_bucket)
        return [b.name for b in self.mc.list_buckets()]

    def upload(self, bucket, key, path, *, large):
        self.mc.fput_object(bucket, key, str(path))

    def list(self, bucket, prefix, delimiter):
        assert delimiter == "/"
        keys, prefixes = [], []
        for o in self.mc.list_objects(bucket, prefix=prefix, recursive=False):
            (prefixes if o.is_dir else keys).append(o.object_name)
        return keys, prefixes

    def download(self, bucket, key, dest):
        self.mc.fget_object(bucket, key, str(dest))

    def copy(self, bucket, src, dst):
        self.mc.copy_object(bucket, dst, CopySource(bucket, src))

    def presign_get(self, bucket, key):
        return self.mc.presigned_get_object(bucket, key)

    def delete(self, bucket, key):
        self.mc.remove_object(bucket, key)

    def delete_many(self, bucket, keys):
        errors = list(self.mc.remove_objects(bucket, [DeleteObject(k) for k in keys]))
        assert not errors, errors

    def remove_bucket(self, bucket):
        self.mc.remove_bucket(bucket)


@pytest.mark.rgw
def test_minio_py_everyday(gateway, rgw_s3, payloads, tmp_path):
    bucket = new_bucket("miniopy")
    try:
        log = everyday(MinioPyDriver(gateway), rgw=rgw_s3, gateway=gateway, payloads=payloads,
                       tmp_path=tmp_path, bucket=bucket)
    finally:
        cleanup(rgw_s3, bucket)
    assert "DeleteObjects" in {e["operation"] for e in log}
