"""Fixtures of the security suite: a Ceph RGW of its own with the operations log on (the record of
what the upstream executed), two buckets, and a gateway with scoped keys in front of it.

Keys (R2's permission model):
- ``rw-alpha``: object-read-write on bucket alpha only;
- ``ro-beta``: object-read-only on bucket beta only;
- ``admin``: admin-read-write (every bucket, every operation).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import s3raw
from tests.conftest import _empty_and_delete
from tests.gateway_process import GatewayProcess
from tests.upstreams.fixtures import s3_client
from tests.upstreams.rgw import CephRGW, CephRGWError, ceph_binaries_missing

VHOST_DOMAIN = "s3.gw.test"
INTERNAL = "r2gw-internal"
PERMISSIONS = {"rw-alpha": ("object-read-write", "alpha"), "ro-beta": ("object-read-only", "beta"),
               "admin": ("admin-read-write", None)}


def secret_of(ak: str) -> str:
    return f"{ak}-secret-0123456789abcdef"


@dataclass
class World:
    rgw: CephRGW
    gw: GatewayProcess
    alpha: str
    beta: str

    def bucket(self, letter: str) -> str:
        return {"alpha": self.alpha, "beta": self.beta}[letter]

    def allowed_buckets(self, ak: str) -> set[str] | None:
        scope = PERMISSIONS[ak][1]
        return None if scope is None else {self.bucket(scope)}

    def direct(self):
        """boto3 straight at RGW (the upstream's own view, not the gateway's)."""
        return s3_client(self.rgw.endpoint, self.rgw.access_key, self.rgw.secret_key, self.rgw.region)

    def client(self, ak: str):
        return self.gw.client(access_key=ak, secret_key=secret_of(ak))

    def signed(self, ak: str, method: str, path: str, headers: dict[str, str] | None = None,
               payload_hash: str = "UNSIGNED-PAYLOAD") -> dict[str, str]:
        return s3raw.sign(method, self.gw.endpoint + path, dict(headers or {}), payload_hash, ak, secret_of(ak))

    def send(self, ak: str, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
             unsigned: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """A request signed by ``ak``; ``unsigned`` headers are added after signing."""
        h = self.signed(ak, method, path, headers)
        h.update(unsigned or {})
        return s3raw.send(self.gw.endpoint, method, path, h, body)

    def access_lines(self) -> list[dict]:
        """The gateway's access log so far (its JSON lines with ``event: request``)."""
        time.sleep(0.25)   # the access log is written in batches (0.1 s)
        out = []
        for line in Path(self.gw.log_path).read_text(errors="replace").splitlines():
            if '"event":"request"' in line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


@pytest.fixture(scope="session")
def ops_rgw(tmp_path_factory):
    """A Ceph RGW of this suite's own, with the operations log streaming to a unix socket."""
    missing = ceph_binaries_missing()
    if missing:
        pytest.fail("Ceph RGW upstream unavailable: missing " + ", ".join(missing), pytrace=False)
    rgw = CephRGW(tmp_path_factory.mktemp("rgw-ops"), ops_log=True, memstore_bytes=1 << 30)
    try:
        rgw.start()
    except CephRGWError as e:
        pytest.fail(f"Ceph RGW upstream failed to start:\n{e}", pytrace=False)
    yield rgw
    rgw.stop()


@pytest.fixture(scope="session")
def ops_log(ops_rgw):
    reader = ops_rgw.ops_log()
    yield reader
    reader.stop()


@pytest.fixture(scope="session")
def world(ops_rgw, ops_log, tmp_path_factory):
    suffix = uuid.uuid4().hex[:8]
    alpha, beta = f"alpha-{suffix}", f"beta-{suffix}"
    direct = s3_client(ops_rgw.endpoint, ops_rgw.access_key, ops_rgw.secret_key, ops_rgw.region)
    for name in (alpha, beta):
        direct.create_bucket(Bucket=name)
    direct.put_object(Bucket=beta, Key="secret.txt", Body=b"beta's secret")
    direct.put_object(Bucket=alpha, Key="key", Body=b"alpha's object named key")
    direct.put_object(Bucket=alpha, Key="mine.txt", Body=b"0123456789")
    names = {"alpha": alpha, "beta": beta}
    lines = [f"virtual_host_domains: [{VHOST_DOMAIN}]", "keys:"]
    for ak, (perm, scope) in PERMISSIONS.items():
        lines += [f"  - access_key_id: {ak}", f"    secret_access_key: {secret_of(ak)}", f"    permission: {perm}"]
        if scope is not None:
            lines.append(f"    buckets: [{names[scope]}]")
    workdir = tmp_path_factory.mktemp("gw-security")
    config = workdir / "gateway.yaml"
    config.write_text("\n".join(lines) + "\n")
    gw = GatewayProcess(workdir, upstream=ops_rgw, tls=False, config_path=config, name="gateway-security")
    gw.start()
    yield World(ops_rgw, gw, alpha, beta)
    gw.stop()
    for name in (alpha, beta):
        _empty_and_delete(direct, name)


def exists(client, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except Exception:
        return False
