"""Running it in production: R2's token permissions, metrics, health, config validation, drain."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests import s3raw
from tests.gateway_process import ROOT, GatewayProcess, free_port

KEYS = {
    "adm-rw": "admin-read-write",
    "adm-ro": "admin-read-only",
    "obj-rw-a": "object-read-write",
    "obj-ro-a": "object-read-only",
    "obj-rw": "object-read-write",
}


@pytest.fixture(scope="module")
def scoped(rgw, tmp_path_factory):
    """A gateway with one key per permission level; the scoped ones limited to bucket A.
    Secrets come from files, as a Kubernetes Secret mount would give them."""
    d = tmp_path_factory.mktemp("scoped")
    bucket_a, bucket_b = "perm-a-" + uuid.uuid4().hex[:8], "perm-b-" + uuid.uuid4().hex[:8]
    lines = ["keys:"]
    for kid, perm in KEYS.items():
        (d / kid).write_text(f"secret-of-{kid}-0123456789\n")
        lines += [f"  - access_key_id: {kid}", f"    secret_access_key_file: {d / kid}", f"    permission: {perm}"]
        if kid.endswith("-a"):
            lines.append(f"    buckets: [{bucket_a}]")
    cfg = d / "gateway.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    gw = GatewayProcess(d, upstream=rgw, config_path=cfg, tls=False, access_key="")
    gw.start()
    admin = gw.client(access_key="adm-rw", secret_key="secret-of-adm-rw-0123456789")
    for name in (bucket_a, bucket_b):
        admin.create_bucket(Bucket=name)
        admin.put_object(Bucket=name, Key="seed", Body=b"seed")
    gw.buckets = (bucket_a, bucket_b)
    gw.as_key = lambda kid: gw.client(access_key=kid, secret_key=f"secret-of-{kid}-0123456789")
    yield gw
    gw.stop()


def denied(fn, *a, **kw) -> None:
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def upstream_keys(rgw_s3, bucket):
    return sorted(o["Key"] for o in rgw_s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_admin_read_write(scoped):
    c = scoped.as_key("adm-rw")
    name = "perm-new-" + uuid.uuid4().hex[:8]
    c.create_bucket(Bucket=name)
    c.delete_bucket(Bucket=name)
    a, _ = scoped.buckets
    c.put_object(Bucket=a, Key="by-admin", Body=b"1")
    assert c.get_object(Bucket=a, Key="by-admin")["Body"].read() == b"1"


def test_admin_read_only(scoped, rgw_s3):
    c = scoped.as_key("adm-ro")
    a, b = scoped.buckets
    assert {a, b} <= {x["Name"] for x in c.list_buckets()["Buckets"]}
    assert c.get_object(Bucket=b, Key="seed")["Body"].read() == b"seed"
    denied(c.put_object, Bucket=a, Key="ro-write", Body=b"x")
    denied(c.delete_object, Bucket=a, Key="seed")
    denied(c.create_bucket, Bucket="perm-never-" + uuid.uuid4().hex[:6])
    assert "ro-write" not in upstream_keys(rgw_s3, a)


def test_object_read_write_scoped(scoped, rgw_s3):
    c = scoped.as_key("obj-rw-a")
    a, b = scoped.buckets
    c.put_object(Bucket=a, Key="mine", Body=b"ok")
    assert c.get_object(Bucket=a, Key="mine")["Body"].read() == b"ok"
    assert [x["Name"] for x in c.list_buckets()["Buckets"]] == [a]       # sees only its bucket
    assert "mine" in [o["Key"] for o in c.list_objects_v2(Bucket=a)["Contents"]]
    denied(c.put_object, Bucket=b, Key="not-mine", Body=b"x")
    denied(c.get_object, Bucket=b, Key="seed")
    denied(c.list_objects_v2, Bucket=b)
    denied(c.create_bucket, Bucket="perm-nope-" + uuid.uuid4().hex[:6])
    denied(c.delete_bucket, Bucket=a)
    c.copy_object(Bucket=a, Key="copied", CopySource={"Bucket": a, "Key": "seed"})
    denied(c.copy_object, Bucket=a, Key="stolen", CopySource={"Bucket": b, "Key": "seed"})  # source unreadable
    assert "stolen" not in upstream_keys(rgw_s3, a) and "not-mine" not in upstream_keys(rgw_s3, b)


def test_object_read_write_cannot_create_bucket_implicitly(scoped, rgw_s3):
    c = scoped.as_key("obj-rw")
    new = "perm-implicit-" + uuid.uuid4().hex[:6]

    def add(request, **_):
        request.headers["cf-create-bucket-if-missing"] = "true"
    c.meta.events.register("before-sign.s3.PutObject", add)
    denied(c.put_object, Bucket=new, Key="k", Body=b"x")
    assert new not in [x["Name"] for x in rgw_s3.list_buckets()["Buckets"]]


def test_object_read_only_scoped(scoped, rgw_s3):
    c = scoped.as_key("obj-ro-a")
    a, b = scoped.buckets
    assert c.get_object(Bucket=a, Key="seed")["Body"].read() == b"seed"
    assert c.head_object(Bucket=a, Key="seed")["ContentLength"] == 4
    denied(c.put_object, Bucket=a, Key="ro", Body=b"x")
    denied(c.get_object, Bucket=b, Key="seed")
    denied(c.copy_object, Bucket=a, Key="cp", CopySource={"Bucket": a, "Key": "seed"})
    assert "ro" not in upstream_keys(rgw_s3, a) and "cp" not in upstream_keys(rgw_s3, a)


def test_upload_part_copy_source_is_authorised(scoped):
    c = scoped.as_key("obj-rw-a")
    a, b = scoped.buckets
    uid = c.create_multipart_upload(Bucket=a, Key="mp")["UploadId"]
    try:
        denied(c.upload_part_copy, Bucket=a, Key="mp", UploadId=uid, PartNumber=1,
               CopySource={"Bucket": b, "Key": "seed"})
    finally:
        c.abort_multipart_upload(Bucket=a, Key="mp", UploadId=uid)


# -- metrics --------------------------------------------------------------------------------------

def scrape(gw) -> dict[str, float]:
    with urllib.request.urlopen(gw.endpoint + "/metrics") as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def delta(before, after, name):
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_metrics_move_by_the_right_amounts(rgw, tmp_path):
    with GatewayProcess(tmp_path, upstream=rgw, tls=False) as gw:
        c = gw.client()
        bucket = "metrics-" + uuid.uuid4().hex[:8]
        c.create_bucket(Bucket=bucket)
        before = scrape(gw)
        for i in range(3):
            c.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x" * 1000)
        for i in range(2):
            c.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read()
        with pytest.raises(ClientError):
            c.get_object(Bucket=bucket, Key="missing")
        with pytest.raises(ClientError):
            gw.client(secret_key="wrong").list_objects_v2(Bucket=bucket)
        after = scrape(gw)
        assert delta(before, after, 'r2gw_requests_total{operation="PutObject",status="200"}') == 3
        assert delta(before, after, 'r2gw_requests_total{operation="GetObject",status="200"}') == 2
        assert delta(before, after, 'r2gw_requests_total{operation="GetObject",status="404"}') == 1
        assert delta(before, after, 'r2gw_auth_failures_total{reason="SignatureDoesNotMatch"}') == 1
        assert delta(before, after, "r2gw_received_bytes_total") == 3000
        assert delta(before, after, "r2gw_sent_bytes_total") >= 2000
        assert delta(before, after, 'r2gw_request_duration_seconds_count{operation="PutObject"}') == 3
        assert delta(before, after, 'r2gw_upstream_duration_seconds_count{operation="GetObject",upstream="default"}') == 3
        assert after["r2gw_requests_in_flight"] == 0
        assert after['r2gw_upstream_connections{upstream="default"}'] >= 1
        for i in range(3):
            c.delete_object(Bucket=bucket, Key=f"k{i}")
        c.delete_bucket(Bucket=bucket)


def test_metrics_on_a_separate_port(rgw, tmp_path):
    from tests.gateway_process import free_port
    port = free_port()
    with GatewayProcess(tmp_path, upstream=rgw, tls=False, env={"R2GW_METRICS_LISTEN": f"127.0.0.1:{port}"}) as gw:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
            assert b"r2gw_requests_total" in r.read()
        status, _, _ = s3raw.send(gw.endpoint, "GET", "/metrics", {})
        assert status == 403  # not on the S3 port: an unsigned S3 request


# -- health ---------------------------------------------------------------------------------------

def test_health_and_readiness(gateway):
    with urllib.request.urlopen(gateway.endpoint + "/healthz") as r:
        assert r.status == 200
    with urllib.request.urlopen(gateway.endpoint + "/readyz") as r:
        assert r.status == 200


def test_readiness_fails_without_upstream(tmp_path):
    from tests.gateway_process import free_port

    class Dead:
        endpoint, access_key, secret_key = f"http://127.0.0.1:{free_port()}", "a", "b"
    with GatewayProcess(tmp_path, upstream=Dead, tls=False) as gw:
        with urllib.request.urlopen(gw.endpoint + "/healthz") as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(gw.endpoint + "/readyz")
        assert e.value.code == 503


def test_bucket_named_like_a_health_path_still_works(gateway, s3, rgw_s3):
    for name in ("healthz", "readyz", "metrics"):
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
        s3.put_object(Bucket=name, Key="k", Body=b"v")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["k"]
        s3.delete_object(Bucket=name, Key="k")
        s3.delete_bucket(Bucket=name)


# -- configuration --------------------------------------------------------------------------------

def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=60)


def test_check_config_accepts_the_example():
    r = run_cli("check-config", "config/gateway.example.yaml")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok:")


@pytest.mark.parametrize("text,named", [
    ("listen: 127.0.0.1:8080\nupstream:\n  endpont: http://x:1\n", "upstream.endpont"),
    ("mode: strict\n", "mode"),
    ("limits:\n  max_xml_body_bytes: -1\n", "limits.max_xml_body_bytes"),
    ("keys:\n  - access_key_id: a\n    secret_access_key: b\n    permission: admin-read-write\n    buckets: [x]\n",
     "keys.0"),
    ("listen: nowhere\n", "listen"),
])
def test_check_config_names_the_bad_key(tmp_path, text, named):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    r = run_cli("check-config", str(p))
    assert r.returncode != 0
    assert named in r.stderr, r.stderr


def test_check_config_env_overrides_and_unknown_variable(tmp_path):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    r = run_cli("check-config", "config/gateway.example.yaml", env={**env, "R2GW_LISTN": "1.2.3.4:5"})
    assert r.returncode != 0 and "R2GW_LISTN" in r.stderr
    r = run_cli("check-config", "config/gateway.example.yaml", env={**env, "R2GW_MODE": "audit"})
    assert r.returncode == 0 and "mode audit" in r.stdout
    secret = tmp_path / "s"
    secret.write_text("from-a-file\n")
    r = run_cli("check-config", env={**env, "R2GW_ACCESS_KEY_ID": "k", "R2GW_SECRET_ACCESS_KEY_FILE": str(secret)})
    assert r.returncode == 0 and "1 client key" in r.stdout


def test_without_moto_and_without_upstream_serve_refuses_clearly():
    """A production install (``pip install .``: no moto) with no upstream configured: exit 2 with what
    to do, no traceback, no embedded upstream started. moto is made unimportable in the child."""
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    env["R2GW_LISTEN"] = f"127.0.0.1:{free_port()}"
    code = "import sys; sys.modules['moto'] = None; from gateway.cli import main; sys.exit(main(['serve']))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "pip install 'r2-gateway[embedded]'" in r.stderr and "R2GW_UPSTREAM_ENDPOINT" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "embedded_upstream" not in r.stdout + r.stderr   # the "NOTHING IS PERSISTED" warning: not started


# -- lifecycle: SIGTERM drain ---------------------------------------------------------------------

def slow_put(endpoint, bucket, key, size, seconds, ak, sk, result, idx):
    """PutObject whose body trickles in over ``seconds``."""
    path = f"/{bucket}/{key}"
    headers = s3raw.sign("PUT", endpoint + path, {"Content-Length": str(size)}, "UNSIGNED-PAYLOAD", ak, sk)
    host, port = endpoint.split("//")[1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=60) as s:
            head = f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host") + "\r\n"
            s.sendall(head.encode())
            steps = 10
            piece = size // steps
            for i in range(steps):
                s.sendall(bytes([65 + idx % 26]) * (piece if i < steps - 1 else size - piece * (steps - 1)))
                time.sleep(seconds / steps)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            result[idx] = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else None
    except OSError:
        result[idx] = None


def test_sigterm_drains_in_flight_uploads(rgw, rgw_s3, tmp_path):
    gw = GatewayProcess(tmp_path, upstream=rgw, tls=False, env={"R2GW_DRAIN_TIMEOUT": "3"})
    gw.start()
    bucket = "drain-" + uuid.uuid4().hex[:8]
    gw.client().create_bucket(Bucket=bucket)
    n, size = 20, 200_000
    result: dict[int, int | None] = {}
    # half finish well inside the drain timeout, half would need longer than it allows
    threads = [threading.Thread(target=slow_put, args=(gw.endpoint, bucket, f"u{i}", size,
                                                       1.5 if i % 2 == 0 else 8.0, gw.access_key,
                                                       gw.secret_key, result, i)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    gw.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    code = gw.proc.wait(30)
    gw.stop()
    print("results", result)
    assert code == 0, gw.log_tail()
    stored = {o["Key"]: o["Size"] for o in rgw_s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    for i in range(n):
        if result.get(i) == 200:
            assert stored.get(f"u{i}") == size            # completed: whole object upstream
        else:
            assert f"u{i}" not in stored                  # failed: nothing partial upstream
    assert sum(1 for i in range(0, n, 2) if result.get(i) == 200) == n // 2  # the quick ones finished
    assert all(stored[k] == size for k in stored)
    for k in stored:
        rgw_s3.delete_object(Bucket=bucket, Key=k)
    rgw_s3.delete_bucket(Bucket=bucket)


def test_workers_share_one_port(rgw, tmp_path):
    gw = GatewayProcess(tmp_path, upstream=rgw, tls=False, workers=2)
    gw.start()
    try:
        children = subprocess.run(["pgrep", "-P", str(gw.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2
        c = gw.client()
        for _ in range(20):
            c.list_buckets()
    finally:
        code = gw.stop()
    assert code == 0


def test_slow_body_is_cut_off(rgw, rgw_s3, tmp_path):
    with GatewayProcess(tmp_path, upstream=rgw, tls=False, env={"R2GW_LIMITS_CLIENT_READ_TIMEOUT": "1"}) as gw:
        bucket = "slow-" + uuid.uuid4().hex[:8]
        gw.client().create_bucket(Bucket=bucket)
        path = f"/{bucket}/stalled"
        headers = s3raw.sign("PUT", gw.endpoint + path, {"Content-Length": "1000"}, "UNSIGNED-PAYLOAD",
                             gw.access_key, gw.secret_key)
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall((f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                       + "\r\n").encode() + b"x" * 10)
            t0 = time.monotonic()
            reply = s.recv(4096)
            assert time.monotonic() - t0 < 5
        assert b" 400 " in reply.split(b"\r\n")[0] and b"RequestTimeout" in reply
        assert rgw_s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        gw.client().delete_bucket(Bucket=bucket)


def test_key_ids_and_secrets_from_files(tmp_path):
    """Kubernetes Secret mounts: both the id and the secret of a key may be files."""
    (tmp_path / "id").write_text("AKIDFROMFILE\n")
    (tmp_path / "sk").write_text("secret-from-file\n")
    (tmp_path / "c.yaml").write_text(f"keys:\n  - access_key_id_file: {tmp_path / 'id'}\n"
                                     f"    secret_access_key_file: {tmp_path / 'sk'}\n")
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    r = run_cli("check-config", str(tmp_path / "c.yaml"), env=env)
    assert r.returncode == 0 and "1 client key" in r.stdout, r.stderr
    from gateway import config
    s = config.load(tmp_path / "c.yaml", {"R2GW_UPSTREAM_ENDPOINT": "http://127.0.0.1:1",
                                          "R2GW_UPSTREAM_ACCESS_KEY_ID_FILE": str(tmp_path / "id"),
                                          "R2GW_UPSTREAM_SECRET_ACCESS_KEY_FILE": str(tmp_path / "sk")})
    assert s.keys[0].access_key_id == "AKIDFROMFILE" and s.upstream.access_key_id == "AKIDFROMFILE"
    assert s.upstream.secret_access_key.get_secret_value() == "secret-from-file"
    with pytest.raises(config.ConfigError) as e:
        config.load(None, {"R2GW_PROFILE_FILE": str(tmp_path / "id")})
    assert "R2GW_PROFILE_FILE" in str(e.value)


def test_workers_stopped_while_starting_exit_cleanly(rgw, tmp_path):
    """SIGTERM right after the start, before the workers have their own handlers: the parent sent
    it, so a worker it stopped that way is a clean stop (exit 0), not a crash."""
    gw = GatewayProcess(tmp_path, upstream=rgw, tls=False, workers=2)
    gw.proc = subprocess.Popen(gw.args, cwd=ROOT, env=gw.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while len(subprocess.run(["pgrep", "-P", str(gw.proc.pid)], capture_output=True,
                                 text=True).stdout.split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(30) == 0
    finally:
        gw.proc.kill()
