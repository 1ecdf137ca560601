"""s3cmd (Debian) with a config file as ``s3cmd --configure`` writes it: keys, ``host_base`` and
``host_bucket`` set to the gateway (path-style: ``host_bucket`` names no ``%(bucket)s``),
``bucket_location = auto``, HTTPS with the gateway's CA. Uploads above 15 MiB are multipart
(its default ``multipart_chunk_size_mb``); ``del --recursive`` is a DeleteObjects batch. ``cp``
asks for the source's ACL first (GetObjectAcl, which R2 does not implement: 501) and copies anyway.

s3cmd cannot presign with SigV4 (``signurl`` makes SigV2 URLs, which R2 and the gateway refuse),
so the workflow checks that refusal (400 InvalidRequest, as S3 answers SigV2 where it is gone)
instead of a presigned download."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import client_env, require, run
from .workflow import cleanup, everyday, fetch, new_bucket


class S3cmdDriver:
    name = "s3cmd"

    def __init__(self, gateway, home: Path) -> None:
        self.s3cmd = require("s3cmd")
        host = urlsplit(gateway.https_endpoint).netloc
        self.config = home / ".s3cfg"
        self.config.write_text(
            "[default]\n"
            f"access_key = {gateway.access_key}\n"
            f"secret_key = {gateway.secret_key}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            "bucket_location = auto\n"
            "use_https = True\n"
            f"ca_certs_file = {gateway.ca_bundle}\n"
            "check_ssl_certificate = True\n"
            "check_ssl_hostname = True\n"
            "signature_v2 = False\n"
            "signurl_use_https = True\n")
        self.env = client_env(home)
        self.ca_bundle = gateway.ca_bundle
        self.signurl_refused = None

    def __call__(self, *args, timeout: float = 120) -> str:
        return run([self.s3cmd, "-c", self.config, "--no-progress", *args], self.env, timeout=timeout).stdout

    def make_bucket(self, bucket):
        self("mb", f"s3://{bucket}")

    def list_buckets(self):
        # "2026-01-01 00:00  s3://bucket"
        return [line.split("s3://", 1)[1] for line in self("ls").splitlines() if "s3://" in line]

    def upload(self, bucket, key, path, *, large):
        self("put", path, f"s3://{bucket}/{key}")

    def list(self, bucket, prefix, delimiter):
        assert delimiter == "/"
        # "                          DIR  s3://b/docs/sub/"  and  "date time size s3://b/docs/x"
        keys, prefixes = [], []
        base = f"s3://{bucket}/"
        for line in self("ls", f"s3://{bucket}/{prefix}").splitlines():
            if base not in line:
                continue
            head, name = line.split(base, 1)
            (prefixes if head.split() == ["DIR"] else keys).append(name)
        return keys, prefixes

    def download(self, bucket, key, dest):
        self("get", "--force", f"s3://{bucket}/{key}", dest)

    def copy(self, bucket, src, dst):
        self("cp", f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}")

    def presign_get(self, bucket, key):
        url = self("signurl", f"s3://{bucket}/{key}", "+600").strip()
        assert "Signature=" in url and "X-Amz-Algorithm" not in url, url  # SigV2
        status, body = fetch(url, self.ca_bundle)
        # refused as an unsupported authorization mechanism, never served
        assert status == 400 and b"<Code>InvalidRequest</Code>" in body, (status, body[:300])
        assert b"AWS4-HMAC-SHA256" in body, body[:300]
        self.signurl_refused = True
        return None

    def delete(self, bucket, key):
        self("del", f"s3://{bucket}/{key}")

    def delete_many(self, bucket, keys):
        self("del", "--recursive", "--force", f"s3://{bucket}/")

    def remove_bucket(self, bucket):
        self("rb", f"s3://{bucket}")


@pytest.mark.rgw
def test_s3cmd_everyday(gateway, rgw_s3, payloads, tmp_path, home):
    driver = S3cmdDriver(gateway, home)
    bucket = new_bucket("s3cmd")
    try:
        log = everyday(driver, rgw=rgw_s3, gateway=gateway, payloads=payloads, tmp_path=tmp_path,
                       bucket=bucket, ca_bundle=gateway.ca_bundle,
                       # `s3cmd cp` reads the source's ACL first and carries on without it
                       tolerated_501=frozenset({"GetObjectAcl"}))
    finally:
        cleanup(rgw_s3, bucket)
    assert driver.signurl_refused
    assert "DeleteObjects" in {e["operation"] for e in log}
