"""Fixtures of the reliability suite: a fault-injecting TCP proxy between a gateway and RGW."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import _empty_and_delete
from tests.gateway_process import GatewayProcess

from .faultproxy import FaultProxy
from .helpers import UpstreamRef


@pytest.fixture(autouse=True)
def _rgw_back_up(request):
    """Whatever a test did to radosgw (stopped it, or a regression crashed it), the next test
    finds it running again (the test itself asserts what it expects of the upstream)."""
    yield
    if "rgw" in request.fixturenames:
        rgw = request.getfixturevalue("rgw")
        if not rgw.is_running():
            rgw.start_rgw()


@pytest.fixture(scope="module")
def fault_proxy(rgw):
    proxy = FaultProxy(("127.0.0.1", rgw.port)).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def proxied_gateway(rgw, fault_proxy, tmp_path_factory):
    """The gateway with the fault proxy as its upstream; short upstream read timeout (3 s)."""
    up = UpstreamRef(fault_proxy.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    gw = GatewayProcess(tmp_path_factory.mktemp("gw-proxied"), upstream=up, tls=False,
                        env={"R2GW_UPSTREAM_TIMEOUTS_READ": "3", "R2GW_UPSTREAM_TIMEOUTS_CONNECT": "2",
                             "R2GW_DRAIN_TIMEOUT": "5"},
                        name="gateway-proxied")
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def proxy(fault_proxy):
    """The module's fault proxy with no faults armed and an empty request log."""
    fault_proxy.clear()
    fault_proxy.reset_log()
    fault_proxy.refuse = False
    yield fault_proxy
    fault_proxy.clear()
    fault_proxy.refuse = False


@pytest.fixture
def pbucket(proxied_gateway, rgw_s3):
    """A fresh bucket (created directly on RGW), emptied and removed afterwards."""
    name = "rel-" + uuid.uuid4().hex[:12]
    rgw_s3.create_bucket(Bucket=name)
    yield name
    _empty_and_delete(rgw_s3, name)
