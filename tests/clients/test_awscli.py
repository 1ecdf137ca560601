"""aws-cli v1 (PyPI, its own virtualenv) over HTTPS: ``aws s3 mb/cp/ls/presign/rm/rb/sync`` and
``aws s3api``, configured only through the environment (keys, ``AWS_ENDPOINT_URL``,
``AWS_DEFAULT_REGION=auto``, ``AWS_CA_BUNDLE``). It uses path-style for an IP-address endpoint, as
botocore does by default; uploads above 8 MiB are multipart, copies above 8 MiB multipart copies,
and uploads are aws-chunked with a CRC32 trailer (TLS; checked on the small one with ``--debug``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import AWS, client_env, require, run
from .workflow import cleanup, everyday, new_bucket, rgw_bytes, rgw_keys, sha256_file


class AwsCliDriver:
    name = "awscli"

    def __init__(self, gateway, home: Path) -> None:
        self.aws = require(AWS)
        self.env = client_env(home, AWS_ACCESS_KEY_ID=gateway.access_key,
                              AWS_SECRET_ACCESS_KEY=gateway.secret_key, AWS_DEFAULT_REGION="auto",
                              AWS_ENDPOINT_URL=gateway.https_endpoint, AWS_CA_BUNDLE=gateway.ca_bundle,
                              AWS_PAGER="")

    def __call__(self, *args, timeout: float = 120) -> str:
        return run([self.aws, *args], self.env, timeout=timeout).stdout

    def make_bucket(self, bucket):
        self("s3", "mb", f"s3://{bucket}")

    def list_buckets(self):
        return [line.split()[-1] for line in self("s3", "ls").splitlines() if line.strip()]

    def upload(self, bucket, key, path, *, large):
        if large:
            self("s3", "cp", "--only-show-errors", path, f"s3://{bucket}/{key}")
            return
        # the small one with --debug, to see what went on the wire
        err = run([self.aws, "--debug", "s3", "cp", "--only-show-errors", path, f"s3://{bucket}/{key}"],
                  self.env).stderr
        self.upload_headers = "\n".join(line for line in err.splitlines()
                                        if "Sending http request" in line and "method=PUT" in line)

    def list(self, bucket, prefix, delimiter):
        assert delimiter == "/"
        # `aws s3 ls s3://bucket/docs/`: "PRE sub/" lines and "date time size name" lines
        keys, prefixes = [], []
        for line in self("s3", "ls", f"s3://{bucket}/{prefix}").splitlines():
            parts = line.split(None, 3)
            if parts and parts[0] == "PRE":
                prefixes.append(prefix + line.strip()[4:])
            elif len(parts) == 4:
                keys.append(prefix + parts[3])
        return keys, prefixes

    def download(self, bucket, key, dest):
        self("s3", "cp", "--only-show-errors", f"s3://{bucket}/{key}", dest)

    def copy(self, bucket, src, dst):
        self("s3", "cp", "--only-show-errors", f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}")

    def presign_get(self, bucket, key):
        return self("s3", "presign", f"s3://{bucket}/{key}", "--expires-in", "600").strip()

    def delete(self, bucket, key):
        self("s3", "rm", "--only-show-errors", f"s3://{bucket}/{key}")

    def delete_many(self, bucket, keys):
        # a batch through the API, then whatever is left with `aws s3 rm --recursive`
        first, rest = keys[: len(keys) // 2], keys[len(keys) // 2:]
        doc = {"Objects": [{"Key": k} for k in first], "Quiet": False}
        out = json.loads(self("s3api", "delete-objects", "--bucket", bucket, "--delete", json.dumps(doc),
                              "--output", "json"))
        assert not out.get("Errors"), out
        assert sorted(d["Key"] for d in out["Deleted"]) == sorted(first)
        assert rest
        self("s3", "rm", "--only-show-errors", "--recursive", f"s3://{bucket}/")

    def remove_bucket(self, bucket):
        self("s3", "rb", f"s3://{bucket}")

    # -- aws s3 sync, both ways ---------------------------------------------------------------
    def sync_both_ways(self, bucket, rgw, tmp_path: Path, payloads):
        src = tmp_path / "sync-src"
        (src / "nested").mkdir(parents=True)
        (src / "one.txt").write_bytes(b"one\n")
        (src / "nested" / "two words.txt").write_bytes(b"two\n")
        (src / "large.bin").symlink_to(payloads.large)  # followed by default: a multipart upload
        self("s3", "sync", "--only-show-errors", src, f"s3://{bucket}/synced/")
        assert rgw_keys(rgw, bucket, "synced/") == ["synced/large.bin", "synced/nested/two words.txt",
                                                     "synced/one.txt"]
        assert rgw_bytes(rgw, bucket, "synced/nested/two words.txt") == b"two\n"
        # nothing changed: nothing is uploaded again
        assert self("s3", "sync", src, f"s3://{bucket}/synced/").strip() == ""
        # a change and a deletion, mirrored with --delete
        (src / "one.txt").write_bytes(b"one, changed\n")
        (src / "nested" / "two words.txt").unlink()
        self("s3", "sync", "--only-show-errors", "--delete", src, f"s3://{bucket}/synced/")
        assert rgw_keys(rgw, bucket, "synced/") == ["synced/large.bin", "synced/one.txt"]
        assert rgw_bytes(rgw, bucket, "synced/one.txt") == b"one, changed\n"
        # and back down
        dst = tmp_path / "sync-dst"
        self("s3", "sync", "--only-show-errors", f"s3://{bucket}/synced/", dst)
        assert (dst / "one.txt").read_bytes() == b"one, changed\n"
        assert sha256_file(dst / "large.bin") == payloads.large_sha256
        assert sorted(p.name for p in dst.iterdir()) == ["large.bin", "one.txt"]


@pytest.mark.rgw
def test_awscli_everyday(gateway, rgw_s3, payloads, tmp_path, home):
    driver = AwsCliDriver(gateway, home)
    bucket = new_bucket("awscli")
    try:
        log = everyday(driver, rgw=rgw_s3, gateway=gateway, payloads=payloads, tmp_path=tmp_path,
                       bucket=bucket, ca_bundle=gateway.ca_bundle,
                       extras=lambda b: driver.sync_both_ways(b, rgw_s3, tmp_path, payloads))
    finally:
        cleanup(rgw_s3, bucket)
    ops = {e["operation"] for e in log}
    assert {"UploadPartCopy", "DeleteObjects", "ListObjectsV2"} <= ops, sorted(ops)
    # the small upload went aws-chunked (Transfer-Encoding: chunked) with a CRC32 trailer
    assert "'X-Amz-Content-SHA256': b'STREAMING-UNSIGNED-PAYLOAD-TRAILER'" in driver.upload_headers
    assert "'X-Amz-Trailer': b'x-amz-checksum-crc32'" in driver.upload_headers


@pytest.mark.rgw
def test_awscli_sse_c_copies_and_checksums(gateway, rgw_s3, tmp_path, home):
    """`aws s3 cp` with SSE-C on both sides (9 MiB: aws-cli's multipart copy, UploadPartCopy from an
    SSE-C source, which RGW cannot do: the gateway copies), then the checksum aws-cli's upload sent
    (CRC32, trailer) read back with `s3api head-object --checksum-mode ENABLED`."""
    import base64
    import os

    from botocore.exceptions import ClientError

    from tests.gateway_process import remember_secret

    driver = AwsCliDriver(gateway, home)
    bucket = new_bucket("awscli-ssec")
    k1, k2 = os.urandom(32), os.urandom(32)
    for k in (k1, k2):
        remember_secret(base64.b64encode(k).decode())
    (tmp_path / "k1").write_bytes(k1)
    (tmp_path / "k2").write_bytes(k2)
    data = os.urandom(9 * 1024 * 1024 + 7)
    (tmp_path / "big.bin").write_bytes(data)
    small = b"a small object, checksummed\n"
    (tmp_path / "small.txt").write_bytes(small)
    try:
        driver.make_bucket(bucket)
        driver("s3", "cp", "--only-show-errors", "--sse-c", "AES256", "--sse-c-key", f"fileb://{tmp_path / 'k1'}",
               tmp_path / "big.bin", f"s3://{bucket}/big.bin")
        driver("s3", "cp", "--only-show-errors", "--sse-c-copy-source", "AES256",
               "--sse-c-copy-source-key", f"fileb://{tmp_path / 'k1'}", "--sse-c", "AES256",
               "--sse-c-key", f"fileb://{tmp_path / 'k2'}", f"s3://{bucket}/big.bin", f"s3://{bucket}/copy.bin")
        sse2 = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": k2}
        assert rgw_s3.get_object(Bucket=bucket, Key="copy.bin", **sse2)["Body"].read() == data
        with pytest.raises(ClientError):
            rgw_s3.get_object(Bucket=bucket, Key="copy.bin")     # stored encrypted, under the new key
        driver("s3", "cp", "--only-show-errors", tmp_path / "small.txt", f"s3://{bucket}/small.txt")
        head = json.loads(driver("s3api", "head-object", "--bucket", bucket, "--key", "small.txt",
                                 "--checksum-mode", "ENABLED", "--output", "json"))
        assert head["ChecksumCRC32"] == base64.b64encode(__import__("zlib").crc32(small).to_bytes(4, "big")).decode()
        assert head["ChecksumType"] == "FULL_OBJECT"
    finally:
        cleanup(rgw_s3, bucket)
