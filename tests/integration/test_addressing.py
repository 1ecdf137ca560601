"""Virtual-hosted-style addressing: <bucket>.<domain> in the Host header, the key as the path."""
from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.config import Config

from tests.gateway_process import GatewayProcess

DOMAIN = "s3.gateway.test"


@pytest.fixture(scope="module")
def vgw(rgw, tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("vhost"), upstream=rgw, tls=False,
                        env={"R2GW_VIRTUAL_HOST_DOMAINS": DOMAIN})
    gw.start()
    yield gw
    gw.stop()


def virtual_client(gw):
    """boto3 in virtual-hosted style for http://<bucket>.s3.gateway.test:<port>; the connection
    goes to 127.0.0.1 (no DNS for the test domain) with the Host header boto3 signed."""
    c = boto3.client("s3", endpoint_url=f"http://{DOMAIN}:{gw.port}", region_name="auto",
                     aws_access_key_id=gw.access_key, aws_secret_access_key=gw.secret_key,
                     config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))

    def to_loopback(request, **_):
        host = request.url.split("//", 1)[1].split("/", 1)[0]
        request.headers["Host"] = host
        request.url = request.url.replace(f"//{host}", f"//127.0.0.1:{gw.port}", 1)
    c.meta.events.register("before-send.s3", to_loopback)
    return c


def test_virtual_hosted_style_roundtrip(vgw, rgw_s3):
    c = virtual_client(vgw)
    name = "vh-" + uuid.uuid4().hex[:10]
    c.create_bucket(Bucket=name)
    for key in ("plain", "a/b//c", "sp ace+plus", "ünï/..", "x" * 1024):
        c.put_object(Bucket=name, Key=key, Body=key.encode())
        assert c.get_object(Bucket=name, Key=key)["Body"].read() == key.encode()
        assert key in [o["Key"] for o in rgw_s3.list_objects_v2(Bucket=name)["Contents"]]
        c.delete_object(Bucket=name, Key=key)
    assert c.list_objects_v2(Bucket=name)["KeyCount"] == 0
    c.delete_bucket(Bucket=name)


def test_path_style_still_works_beside_it(vgw):
    c = vgw.client()
    name = "ps-" + uuid.uuid4().hex[:10]
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="k", Body=b"v")
    assert virtual_client(vgw).get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    c.delete_object(Bucket=name, Key="k")
    c.delete_bucket(Bucket=name)
