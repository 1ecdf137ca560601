"""rclone (Debian) with the remote R2's own docs describe: ``type = s3``, ``provider = Cloudflare``,
keys, ``endpoint``, ``region = auto`` (rclone.conf), over HTTPS with ``--ca-cert``. rclone's
default ``upload_cutoff`` is 200 MiB, so the large upload is made multipart the way a user does:
``--s3-upload-cutoff``/``--s3-chunk-size``. Steps: ``mkdir``, ``copyto``, ``lsf``, ``link``
(a presigned GET), ``copy``/``sync``/``check`` of a directory, ``deletefile``, ``delete``, ``rmdir``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import client_env, require, run
from .workflow import cleanup, everyday, new_bucket, rgw_bytes, rgw_keys, sha256_file

MULTIPART = ["--s3-upload-cutoff", "8M", "--s3-chunk-size", "5M"]


class RcloneDriver:
    name = "rclone"

    def __init__(self, gateway, home: Path) -> None:
        self.rclone = require("rclone")
        self.config = home / "rclone.conf"
        self.config.write_text(
            "[r2]\n"
            "type = s3\n"
            "provider = Cloudflare\n"
            f"access_key_id = {gateway.access_key}\n"
            f"secret_access_key = {gateway.secret_key}\n"
            f"endpoint = {gateway.https_endpoint}\n"
            "region = auto\n")
        self.env = client_env(home)
        self.ca_bundle = gateway.ca_bundle

    def __call__(self, *args, timeout: float = 120, ok=(0,)) -> str:
        return run([self.rclone, "--config", self.config, "--ca-cert", self.ca_bundle, "--retries", "1",
                    "--low-level-retries", "1", *args], self.env, timeout=timeout, ok=ok).stdout

    def make_bucket(self, bucket):
        self("mkdir", f"r2:{bucket}")

    def list_buckets(self):
        return [name.rstrip("/") for name in self("lsf", "--dirs-only", "r2:").splitlines()]

    def upload(self, bucket, key, path, *, large):
        self("copyto", *(MULTIPART if large else []), path, f"r2:{bucket}/{key}")

    def list(self, bucket, prefix, delimiter):
        assert delimiter == "/"
        keys, prefixes = [], []
        for name in self("lsf", f"r2:{bucket}/{prefix}").splitlines():
            (prefixes if name.endswith("/") else keys).append(prefix + name)
        return keys, prefixes

    def download(self, bucket, key, dest):
        self("copyto", f"r2:{bucket}/{key}", dest)

    def copy(self, bucket, src, dst):
        self("copyto", f"r2:{bucket}/{src}", f"r2:{bucket}/{dst}")  # server-side

    def presign_get(self, bucket, key):
        return self("link", "--expire", "10m", f"r2:{bucket}/{key}").strip()

    def delete(self, bucket, key):
        self("deletefile", f"r2:{bucket}/{key}")

    def delete_many(self, bucket, keys):
        self("delete", f"r2:{bucket}")

    def remove_bucket(self, bucket):
        self("rmdir", f"r2:{bucket}")

    # -- copy, sync and check of a directory -------------------------------------------------
    def sync_and_check(self, bucket, rgw, tmp_path: Path, payloads):
        src = tmp_path / "tree"
        (src / "nested").mkdir(parents=True)
        (src / "one.txt").write_bytes(b"one\n")
        (src / "nested" / "two words.txt").write_bytes(b"two\n")
        (src / "large.bin").symlink_to(payloads.large)
        self("copy", "--copy-links", *MULTIPART, src, f"r2:{bucket}/tree")
        assert rgw_keys(rgw, bucket, "tree/") == ["tree/large.bin", "tree/nested/two words.txt",
                                                   "tree/one.txt"]
        self("check", "--copy-links", src, f"r2:{bucket}/tree")  # sizes and MD5s, large included
        (src / "one.txt").write_bytes(b"one, changed\n")
        (src / "nested" / "two words.txt").unlink()
        self("check", "--copy-links", src, f"r2:{bucket}/tree", ok=(1,))  # now they differ
        self("sync", "--copy-links", *MULTIPART, src, f"r2:{bucket}/tree")
        assert rgw_keys(rgw, bucket, "tree/") == ["tree/large.bin", "tree/one.txt"]
        assert rgw_bytes(rgw, bucket, "tree/one.txt") == b"one, changed\n"
        self("check", "--copy-links", src, f"r2:{bucket}/tree")
        back = tmp_path / "back"
        self("sync", f"r2:{bucket}/tree", back)
        assert sorted(p.name for p in back.iterdir()) == ["large.bin", "one.txt"]
        assert sha256_file(back / "large.bin") == payloads.large_sha256


@pytest.mark.rgw
def test_rclone_everyday(gateway, rgw_s3, payloads, tmp_path, home):
    driver = RcloneDriver(gateway, home)
    bucket = new_bucket("rclone")
    try:
        everyday(driver, rgw=rgw_s3, gateway=gateway, payloads=payloads, tmp_path=tmp_path,
                 bucket=bucket, ca_bundle=gateway.ca_bundle,
                 extras=lambda b: driver.sync_and_check(b, rgw_s3, tmp_path, payloads))
    finally:
        cleanup(rgw_s3, bucket)
