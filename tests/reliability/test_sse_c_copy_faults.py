"""A copy the gateway makes itself (SSE-C on Ceph RGW, extensions/sse_c_copy.py) interrupted: the
source's stream breaks mid-body, or stalls. The destination's PUT carries the exact Content-Length
and is aborted before its end, so RGW commits nothing: the old destination stays as it was."""
from __future__ import annotations

import base64
import os

import pytest
from botocore.exceptions import ClientError

from tests.gateway_process import remember_secret

from .faultproxy import Fault

MiB = 1024 * 1024
K1, K2 = os.urandom(32), os.urandom(32)
for _k in (K1, K2):
    remember_secret(base64.b64encode(_k).decode())
SSE1 = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": K1}
SRC1 = {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": K1}
SSE2 = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": K2}


@pytest.mark.parametrize("fault", ["reset", "stall"])
def test_interrupted_gateway_copy_commits_nothing(proxied_gateway, proxy, pbucket, rgw_s3, fault):
    c = proxied_gateway.client(retries={"total_max_attempts": 1})   # no retry hiding the first answer
    data = os.urandom(6 * MiB)
    c.put_object(Bucket=pbucket, Key="src", Body=data, **SSE1)
    c.put_object(Bucket=pbucket, Key="dst", Body=b"the old destination", **SSE2)
    c.create_multipart_upload(Bucket=pbucket, Key="part-dst", **SSE2)
    upload = c.list_multipart_uploads(Bucket=pbucket)["Uploads"][0]["UploadId"]
    kind = {"reset": {"reset_response_after": 2 * MiB}, "stall": {"stall_response_after": 2 * MiB}}[fault]

    def source_get(req) -> bool:
        return req.method == "GET" and req.target.startswith(f"/{pbucket}/src")

    proxy.add(Fault(source_get, **kind))
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=pbucket, Key="dst", CopySource={"Bucket": pbucket, "Key": "src"}, **SRC1, **SSE2)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (502, 503, 504)
    assert c.get_object(Bucket=pbucket, Key="dst", **SSE2)["Body"].read() == b"the old destination"
    assert rgw_s3.get_object(Bucket=pbucket, Key="dst", **SSE2)["Body"].read() == b"the old destination"

    proxy.add(Fault(source_get, **kind))
    with pytest.raises(ClientError):
        c.upload_part_copy(Bucket=pbucket, Key="part-dst", UploadId=upload, PartNumber=1,
                           CopySource={"Bucket": pbucket, "Key": "src"}, **SRC1, **SSE2)
    assert rgw_s3.list_parts(Bucket=pbucket, Key="part-dst", UploadId=upload).get("Parts", []) == []
    # and once the source reads whole, the same copies succeed
    c.copy_object(Bucket=pbucket, Key="dst", CopySource={"Bucket": pbucket, "Key": "src"}, **SRC1, **SSE2)
    assert c.get_object(Bucket=pbucket, Key="dst", **SSE2)["Body"].read() == data
    c.abort_multipart_upload(Bucket=pbucket, Key="part-dst", UploadId=upload)
