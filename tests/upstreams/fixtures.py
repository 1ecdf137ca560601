"""pytest plugin: the test upstreams.

Enable with ``pytest_plugins = ["tests.upstreams.fixtures"]`` in tests/conftest.py (or
``-p tests.upstreams.fixtures``).

Fixtures:
- ``rgw`` (session): a started :class:`~tests.upstreams.rgw.CephRGW`. Fails (never skips)
  when the Ceph binaries are missing; install them with tests/upstreams/install-system-deps.sh.
- ``rgw_s3`` (function): a boto3 S3 client pointed directly at RGW (path style, SigV4).
- ``moto_upstream`` (session): a started :class:`~tests.upstreams.moto_server.MotoServer`.
- ``moto_s3`` (function): a boto3 S3 client pointed directly at the moto server.

Environment: ``RGW_MEMSTORE_GIB`` caps the OSD's memory (default 4).
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from .moto_server import MotoServer
from .rgw import CephRGW, CephRGWError, ceph_binaries_missing


def s3_client(endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1", **config):
    """A boto3 S3 client with path-style addressing and SigV4, no retries hiding failures."""
    import boto3
    from botocore.config import Config

    cfg = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        **config,
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=cfg,
    )


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephRGW]:
    missing = ceph_binaries_missing()
    if missing:
        pytest.fail(
            "Ceph RGW upstream unavailable: missing " + ", ".join(missing)
            + ". Install with: sudo bash tests/upstreams/install-system-deps.sh",
            pytrace=False,
        )
    instance = CephRGW(tmp_path_factory.mktemp("ceph-rgw"))
    try:
        instance.start()
    except CephRGWError as e:
        pytest.fail(f"Ceph RGW upstream failed to start:\n{e}", pytrace=False)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def rgw_s3(rgw: CephRGW):
    if not rgw.is_running():
        # a previous test stopped radosgw (reliability tests) and did not bring it back
        rgw.start_rgw()
    return s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)


@pytest.fixture(scope="session")
def moto_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log = None
    if os.environ.get("MOTO_SERVER_LOG"):
        log = tmp_path_factory.mktemp("moto") / "moto-server.log"
    server = MotoServer(log_path=log)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto_s3(moto_upstream: MotoServer):
    return s3_client(moto_upstream.endpoint, moto_upstream.access_key, moto_upstream.secret_key,
                     moto_upstream.region)
