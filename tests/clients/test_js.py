"""The JavaScript clients on Node (>= 20), as the programs in tests/clients/js use them. Each test
drives one long-lived Node process, a step per JSON line (js/steps.mjs).

- ``@aws-sdk/client-s3`` v3 with ``@aws-sdk/lib-storage`` (multipart, 5 MiB parts) and
  ``@aws-sdk/s3-request-presigner``, over HTTPS, configured by the environment only
  (``AWS_ENDPOINT_URL_S3``, ``AWS_REGION=auto``, keys, ``NODE_EXTRA_CA_CERTS``). Its defaults send
  a small file stream aws-chunked with a CRC32 trailer, and parts with signed payload hashes.
  Path-style, as the SDK does for an IP-address endpoint.
- ``minio`` (MinIO's JS SDK) over plain HTTP, region ``auto``; its default part size is 64 MiB, so
  the application sets ``partSize`` (5 MiB) to have a 21 MiB file uploaded in parts.
"""
from __future__ import annotations

import json
import re
import select
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import JS, client_env, require
from .workflow import cleanup, everyday, new_bucket


def _check_installed() -> str:
    node = require("node")
    if not (JS / "node_modules" / "@aws-sdk" / "client-s3").is_dir() or not (JS / "node_modules" / "minio").is_dir():
        pytest.fail("the JS clients are not installed: run `bash tests/clients/install-clients.sh`",
                    pytrace=False)
    return node


class NodeDriver:
    """One Node process per test, fed one JSON step per line (js/steps.mjs), each with a timeout."""

    def __init__(self, script: str, env: dict[str, str]) -> None:
        self.node = _check_installed()
        self.script = JS / script
        self.env = env
        self.hosts: set[str] = set()  # where the requests went, as the SDK reports it
        self.uploads: set[tuple[str, str]] = set()  # (x-amz-content-sha256, x-amz-trailer) of uploads
        self.proc: subprocess.Popen | None = None
        self.stderr = Path(env["HOME"]) / f"{script}.stderr"

    def _start(self) -> subprocess.Popen:
        if self.proc is None:
            self.proc = subprocess.Popen([self.node, str(self.script)], env=self.env, cwd=JS, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=open(self.stderr, "w"), bufsize=1)
        return self.proc

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __call__(self, op: str, timeout: float = 120, **args) -> dict:
        proc = self._start()
        args = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}
        proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            pytest.fail(f"{self.script.name} {op}: no answer in {timeout}s (exit {proc.poll()})\n"
                        f"{self.stderr.read_text()[-3000:]}", pytrace=False)
        answer = json.loads(line)
        if not answer["ok"]:
            pytest.fail(f"{self.script.name} {op} {json.dumps(args)[:300]}\n→ {answer['error']}", pytrace=False)
        result = answer["result"]
        self.hosts.update(result.pop("_hosts", []))
        self.uploads.update(tuple(u) for u in result.pop("_uploads", []))
        return result

    def make_bucket(self, bucket):
        self("mb", bucket=bucket)

    def list_buckets(self):
        return self("lsb")["buckets"]

    def upload(self, bucket, key, path, *, large):
        self("upload" if large else "put", bucket=bucket, key=key, file=path)

    def list(self, bucket, prefix, delimiter):
        out = self("ls", bucket=bucket, prefix=prefix, delimiter=delimiter)
        return out["keys"], out["prefixes"]

    def download(self, bucket, key, dest):
        self("get", bucket=bucket, key=key, file=dest)

    def copy(self, bucket, src, dst):
        self("cp", bucket=bucket, src=src, dst=dst)

    def presign_get(self, bucket, key):
        return self("presign", bucket=bucket, key=key)["url"]

    def delete(self, bucket, key):
        self("rm", bucket=bucket, key=key)

    def delete_many(self, bucket, keys):
        out = self("rmmany", bucket=bucket, keys=keys)
        assert not out.get("errors"), out

    def remove_bucket(self, bucket):
        self("rb", bucket=bucket)


class AwsSdkV3Driver(NodeDriver):
    name = "aws-sdk-js-v3"

    def __init__(self, gateway, home: Path, endpoint: str | None = None, **env: str) -> None:
        super().__init__("aws-sdk-v3.mjs", client_env(
            home, AWS_ACCESS_KEY_ID=gateway.access_key, AWS_SECRET_ACCESS_KEY=gateway.secret_key,
            AWS_REGION="auto", AWS_ENDPOINT_URL_S3=endpoint or gateway.https_endpoint,
            NODE_EXTRA_CA_CERTS=gateway.ca_bundle or "", **env))


class MinioJsDriver(NodeDriver):
    name = "minio-js"

    def __init__(self, gateway, home: Path) -> None:
        netloc = urlsplit(gateway.endpoint)
        super().__init__("minio.mjs", client_env(
            home, S3_HOST=netloc.hostname, S3_PORT=str(netloc.port), S3_USE_SSL="0",
            S3_ACCESS_KEY=gateway.access_key, S3_SECRET_KEY=gateway.secret_key, S3_REGION="auto",
            S3_PART_SIZE=str(5 * 1024 * 1024)))


@pytest.mark.rgw
def test_aws_sdk_js_v3_everyday(gateway, rgw_s3, payloads, tmp_path, home):
    driver = AwsSdkV3Driver(gateway, home)
    bucket = new_bucket("awsjs")
    try:
        log = everyday(driver, rgw=rgw_s3, gateway=gateway, payloads=payloads,
                       tmp_path=tmp_path, bucket=bucket, ca_bundle=gateway.ca_bundle)
    finally:
        driver.close()
        cleanup(rgw_s3, bucket)
    assert "DeleteObjects" in {e["operation"] for e in log}
    assert driver.hosts == {f"127.0.0.1:{urlsplit(gateway.https_endpoint).port}"}, driver.hosts  # path-style
    # what the SDK's defaults sent: the small file stream aws-chunked with a CRC32 trailer, and
    # lib-storage's parts (buffers) with signed payload hashes
    assert ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32") in driver.uploads, driver.uploads
    others = driver.uploads - {("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32")}
    assert others and all(re.fullmatch(r"[0-9a-f]{64}", sha) and not trailer for sha, trailer in others), others


@pytest.mark.rgw
def test_aws_sdk_js_v3_virtual_hosted_style(vhost_gateway, localhost_subdomains, rgw_s3, payloads, tmp_path,
                                            home):
    """The SDK's default for an endpoint with a host name (``http://localhost:<port>``) is
    virtual-hosted style, ``<bucket>.localhost``; js/localhost-dns.cjs makes that name resolve, as
    a wildcard DNS record for the gateway's domain would. Plain HTTP: the test certificate does not
    cover ``*.localhost``."""
    endpoint = vhost_gateway.endpoint.replace("127.0.0.1", "localhost")
    driver = AwsSdkV3Driver(vhost_gateway, home, endpoint=endpoint,
                            NODE_OPTIONS=f"--require {JS / 'localhost-dns.cjs'}")
    bucket = new_bucket("awsjsvh")
    try:
        everyday(driver, rgw=rgw_s3, gateway=vhost_gateway, payloads=payloads, tmp_path=tmp_path,
                 bucket=bucket)
    finally:
        driver.close()
        cleanup(rgw_s3, bucket)
    # every bucket request went to the bucket's host; ListBuckets to the bare one
    assert driver.hosts == {f"{bucket}.localhost:{vhost_gateway.port}", f"localhost:{vhost_gateway.port}"}, \
        driver.hosts


@pytest.mark.rgw
def test_minio_js_everyday(gateway, rgw_s3, payloads, tmp_path, home):
    driver = MinioJsDriver(gateway, home)
    bucket = new_bucket("miniojs")
    try:
        log = everyday(driver, rgw=rgw_s3, gateway=gateway, payloads=payloads,
                       tmp_path=tmp_path, bucket=bucket)
    finally:
        driver.close()
        cleanup(rgw_s3, bucket)
    assert "DeleteObjects" in {e["operation"] for e in log}
