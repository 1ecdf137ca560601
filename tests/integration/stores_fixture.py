"""Two real stores at once behind the gateway: Ceph RGW (the default store, through a recording
proxy that sees what RGW executed), a second RGW user (store ``second``) and the moto server (store
``moto``); three gateway processes on the same configuration. Bucket rules, by name suffix:

  *-onmoto   → moto                 *-onsecond → second
  *-sippy    → default, migrating from moto (same name)
  *-merged   → default, migrating from moto, ``list: merged``
  *-tomoto   → moto, migrating from default (RGW), same name

Import the ``stores`` fixture into a test module to use it.
"""
from __future__ import annotations

import re
import urllib.request
import uuid
from types import SimpleNamespace

import pytest
import yaml

from tests.gateway_process import GatewayProcess, remember_secret
from tests.upstreams.fixtures import s3_client

from .recording_proxy import RecordingProxy


def config(rgw_endpoint: str, rgw, moto, second: tuple[str, str], **extra) -> dict:
    return {
        "upstream": {"endpoint": rgw_endpoint, "region": rgw.region, "access_key_id": rgw.access_key,
                     "secret_access_key": rgw.secret_key, "dialect": "ceph"},
        "upstreams": {
            "moto": {"endpoint": moto.endpoint, "region": moto.region, "access_key_id": moto.access_key,
                     "secret_access_key": moto.secret_key, "dialect": "moto"},
            "second": {"endpoint": rgw.endpoint, "region": rgw.region, "access_key_id": second[0],
                       "secret_access_key": second[1], "dialect": "ceph",
                       # another user of the same RGW: bucket names are shared, the records' too
                       "internal_bucket": "r2gw-internal-second"},
        },
        "buckets": [
            {"match": "*-onmoto", "upstream": "moto"},
            {"match": "*-onsecond", "upstream": "second"},
            {"match": "*-sippy", "migrate_from": {"upstream": "moto"}},
            {"match": "*-merged", "migrate_from": {"upstream": "moto", "list": "merged"}},
            {"match": "*-tomoto", "upstream": "moto", "migrate_from": {"upstream": "default"}},
        ],
        "access_log_flush_seconds": 0,
        **extra,
    }


@pytest.fixture(scope="session")
def stores(rgw, moto_upstream, tmp_path_factory):
    proxy = RecordingProxy(rgw.endpoint).start()
    second = rgw.create_user("second-" + uuid.uuid4().hex[:8], max_buckets=500)
    remember_secret(second[1])
    remember_secret(rgw.secret_key)
    workdir = tmp_path_factory.mktemp("stores")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config(proxy.endpoint, rgw, moto_upstream, second)))
    gateways = []
    try:
        for i in range(3):
            gateways.append(GatewayProcess(workdir / f"gw{i}", config_path=path, tls=False,
                                           name=f"gateway-{i}").start())
        yield SimpleNamespace(gw=gateways[0], gateways=gateways, proxy=proxy, config_path=path,
                              second_s3=s3_client(rgw.endpoint, *second, rgw.region), second=second)
    finally:
        for gw in gateways:
            gw.stop()
        proxy.stop()


def unique(suffix: str) -> str:
    return f"s{uuid.uuid4().hex[:10]}-{suffix}"


def metrics(gw) -> str:
    with urllib.request.urlopen(gw.endpoint + "/metrics", timeout=5) as r:
        return r.read().decode()


def counter(gw, name: str, **labels: str) -> float:
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} ([0-9.eE+-]+)$", metrics(gw), re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def empty(client, bucket: str) -> None:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=o["Key"])
        for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        client.delete_bucket(Bucket=bucket)
    except Exception:
        pass


def owned(client) -> set[str]:
    return {b["Name"] for b in client.list_buckets()["Buckets"]}


__all__ = ["counter", "empty", "metrics", "owned", "stores", "unique"]
