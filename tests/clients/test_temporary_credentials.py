"""Temporary credentials with real SDKs that take a session token: the AWS SDK for JavaScript v3
(``AWS_SESSION_TOKEN`` from the environment, its defaults: a file stream sent aws-chunked with a
CRC32 trailer, presigned URLs) and the MinIO Python SDK (``session_token``). Credentials come
from R2's documented local signing (tests/integration/test_temporary_credentials.py), for the
gateway's configured key; what they may not do is refused and absent from RGW."""
from __future__ import annotations

import json
import select
import urllib.request
from urllib.parse import urlsplit

import pytest
from minio import Minio
from minio.error import S3Error as MinioError

from tests.integration.test_temporary_credentials import r2_local_sign

from .conftest import client_env
from .test_js import NodeDriver
from .workflow import cleanup, new_bucket


def attempt(driver: NodeDriver, op: str, timeout: float = 60, **args) -> dict:
    """One step whose failure is the expected answer: {"ok": ..., "error"/"result": ...}."""
    proc = driver._start()
    proc.stdin.write(json.dumps({"op": op, "args": {k: str(v) for k, v in args.items()}}) + "\n")
    proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"{op}: no answer in {timeout}s"
    return json.loads(proc.stdout.readline())


def keys_on(rgw_s3, bucket: str) -> set[str]:
    return {o["Key"] for o in rgw_s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.mark.rgw
def test_aws_sdk_js_v3_with_a_session_token(gateway, rgw_s3, payloads, tmp_path, home):
    bucket = new_bucket("awsjs-tc")
    gateway.client().create_bucket(Bucket=bucket)
    creds = r2_local_sign(gateway.access_key, gateway.secret_key, urlsplit(gateway.https_endpoint).netloc, bucket,
                          "object-read-write", paths={"prefixPaths": ["app/"]})
    driver = NodeDriver("aws-sdk-v3.mjs", client_env(
        home, AWS_ACCESS_KEY_ID=creds["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=creds["aws_secret_access_key"],
        AWS_SESSION_TOKEN=creds["aws_session_token"], AWS_REGION="auto",
        AWS_ENDPOINT_URL_S3=gateway.https_endpoint, NODE_EXTRA_CA_CERTS=gateway.ca_bundle))
    try:
        driver("put", bucket=bucket, key="app/small.txt", file=payloads.small)
        assert ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32") in driver.uploads
        driver("get", bucket=bucket, key="app/small.txt", file=tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == payloads.small_bytes
        assert driver("ls", bucket=bucket, prefix="app/", delimiter="/")["keys"] == ["app/small.txt"]
        url = driver("presign", bucket=bucket, key="app/small.txt")["url"]
        assert "X-Amz-Security-Token=" in url
        import ssl
        with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=gateway.ca_bundle)) as r:
            assert r.read() == payloads.small_bytes
        for op, args in (("put", {"key": "elsewhere.txt", "file": payloads.small}),
                         ("get", {"key": "elsewhere.txt", "file": tmp_path / "no"}),
                         ("ls", {"prefix": "", "delimiter": "/"})):
            answer = attempt(driver, op, bucket=bucket, **args)
            assert not answer["ok"] and "AccessDenied" in answer["error"], answer
        driver("rm", bucket=bucket, key="app/small.txt")
        assert keys_on(rgw_s3, bucket) == set()
    finally:
        driver.close()
        cleanup(rgw_s3, bucket)


@pytest.mark.rgw
def test_minio_py_with_a_session_token(gateway, rgw_s3, payloads, tmp_path):
    bucket = new_bucket("miniopy-tc")
    gateway.client().create_bucket(Bucket=bucket)
    netloc = urlsplit(gateway.endpoint).netloc
    creds = r2_local_sign(gateway.access_key, gateway.secret_key, netloc, bucket, "object-read-write",
                          paths={"prefixPaths": ["app/"]})
    mc = Minio(netloc, access_key=creds["aws_access_key_id"], secret_key=creds["aws_secret_access_key"],
               session_token=creds["aws_session_token"], secure=False, region="auto")
    try:
        mc.fput_object(bucket, "app/small.txt", str(payloads.small))
        assert mc.get_object(bucket, "app/small.txt").read() == payloads.small_bytes
        assert [o.object_name for o in mc.list_objects(bucket, prefix="app/")] == ["app/small.txt"]
        with urllib.request.urlopen(mc.presigned_get_object(bucket, "app/small.txt")) as r:
            assert r.read() == payloads.small_bytes
        with pytest.raises(MinioError) as e:
            mc.fput_object(bucket, "elsewhere.txt", str(payloads.small))
        assert e.value.code == "AccessDenied"
        with pytest.raises(MinioError) as e:
            list(mc.list_objects(bucket, prefix=""))
        assert e.value.code == "AccessDenied"
        assert keys_on(rgw_s3, bucket) == {"app/small.txt"}
        mc.remove_object(bucket, "app/small.txt")
        assert keys_on(rgw_s3, bucket) == set()
    finally:
        cleanup(rgw_s3, bucket)
