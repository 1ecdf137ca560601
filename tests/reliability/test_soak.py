"""CI's short soak (the benchmark-style command is ``python -m tests.reliability.soak --seconds 600``):
200 concurrent connections of mixed small GET/PUT/LIST for 60 s — zero errors, flat RSS and file
descriptors, and an upstream pool that does not grow (and that the metric reports truthfully)."""
from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from tests.conftest import _empty_and_delete
from tests.gateway_process import GatewayProcess

from .helpers import UpstreamRef, metric_sum, sockets_to_port
from .soak import run_load

pytestmark = [pytest.mark.rgw, pytest.mark.slow]
SECONDS = float(os.environ.get("R2GW_SOAK_SECONDS", "60"))


def test_soak(rgw, rgw_s3, tmp_path, capsys):
    bucket = "soak-" + uuid.uuid4().hex[:8]
    rgw_s3.create_bucket(Bucket=bucket)
    up = UpstreamRef(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    gw = GatewayProcess(tmp_path, upstream=up, tls=False, name="gateway-soak").start()
    try:
        report = asyncio.run(run_load(gw.endpoint, gw.access_key, gw.secret_key, bucket, gw.pid, SECONDS,
                                      connections=200, warmup=min(15.0, SECONDS / 4)))
        # the pool metric counts what is really open (busy and idle) to the upstream
        assert metric_sum(gw.endpoint, "r2gw_upstream_connections") == sockets_to_port(gw.pid, rgw.port)
    finally:
        gw.stop()
        _empty_and_delete(rgw_s3, bucket)
    summary = {k: v for k, v in report.__dict__.items() if k != "samples"}
    with capsys.disabled():
        print("\n  soak:", json.dumps(summary))
    assert report.requests > 1000
    assert report.ok, report.failures
