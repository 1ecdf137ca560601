"""Shared fixtures: the real upstreams (tests/upstreams) and the real gateway in front of them."""
from __future__ import annotations

import uuid

import pytest

from .gateway_process import GatewayProcess

pytest_plugins = ["tests.upstreams.fixtures"]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``runs_last`` run after every other test of the run, in their collected order
    (the check of every gateway log for secrets must see the logs of all the others)."""
    last = [item for item in items if item.get_closest_marker("runs_last") is not None]
    if last:
        items[:] = [item for item in items if item.get_closest_marker("runs_last") is None] + last


@pytest.fixture(scope="session")
def gateway(rgw, tmp_path_factory):
    """The gateway in front of Ceph RGW (HTTP and HTTPS listeners)."""
    gw = GatewayProcess(tmp_path_factory.mktemp("gateway"), upstream=rgw)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def embedded_gateway(tmp_path_factory):
    """The gateway with no upstream configured: it starts its embedded in-memory one."""
    gw = GatewayProcess(tmp_path_factory.mktemp("embedded"), tls=False)
    gw.start(timeout=60)
    yield gw
    gw.stop()


@pytest.fixture
def s3(gateway):
    """boto3 through the gateway over HTTP."""
    return gateway.client()


@pytest.fixture
def bucket(s3, rgw_s3):
    """A fresh bucket, emptied and removed afterwards (directly on RGW)."""
    name = "t-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    yield name
    _empty_and_delete(rgw_s3, name)


def _empty_and_delete(client, name: str) -> None:
    try:
        for up in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=obj["Key"])
        client.delete_bucket(Bucket=name)
    except Exception:
        pass
