"""Fixtures the integration tests share: ``gw`` (each test runs once per gateway: in front of Ceph
RGW, and on the embedded in-memory upstream), ``c`` (a boto3 client of it) and ``b`` (a fresh
bucket, emptied and removed afterwards with :func:`empty_bucket`). A module that needs other ones
defines its own under the same name."""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture(params=["rgw", "embedded"])
def gw(request):
    return request.getfixturevalue("gateway" if request.param == "rgw" else "embedded_gateway")


@pytest.fixture
def c(gw):
    return gw.client()


def empty_bucket(client, name: str) -> None:
    """Abort the bucket's uploads, delete its objects, delete it."""
    for up in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=o["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def b(c):
    name = "t-" + uuid.uuid4().hex[:12]
    c.create_bucket(Bucket=name)
    yield name
    empty_bucket(c, name)
