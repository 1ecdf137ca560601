"""The readiness report, end to end: a gateway in audit mode in front of Ceph RGW is sent what R2
refuses (or treats differently) by real clients — boto3 (its defaults over HTTPS, ACLs, tags,
SigV2, a presigned URL valid for 8 days, a browser form, long keys and metadata, parts of
different sizes, NFC, a key written twice a second), s3fs (the whole-bucket rm that asks
GetBucketVersioning) and rclone (versions, versioning, an ACL) — and ``/report.json`` must hold
each finding by client key, user agent, bucket and operation. The page (no script, no external
asset) is rendered in headless Chromium (the screenshot is kept under the test's tmp directory and in
``.tmp/``), ``r2-gateway report --from`` on the access log gives the same findings as the live
report (both access-log shapes), and the findings survive a restart through the state file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
import urllib.request
import uuid
from pathlib import Path

import boto3
import fsspec
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.gateway_process import GatewayProcess

from .conftest import client_env, require, run

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
pytestmark = pytest.mark.rgw


@pytest.fixture(scope="module")
def audit_gateway(rgw, tmp_path_factory):
    d = tmp_path_factory.mktemp("gw-readiness")
    gw = GatewayProcess(d, upstream=rgw, name="gateway-readiness",
                        env={"R2GW_MODE": "audit", "R2GW_REPORT_STATE_FILE": str(d / "readiness.json"),
                             "R2GW_REPORT_SAVE_SECONDS": "1"})
    gw.start()
    yield gw
    gw.stop()


def _report(gw) -> dict:
    with urllib.request.urlopen(gw.endpoint + "/report.json", timeout=10) as r:
        assert r.headers["Content-Type"] == "application/json"
        return json.loads(r.read())


def _expect_error(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except ClientError:
        pass


class Traffic:
    """What was sent: names the tests look for in the report."""
    bucket: str
    fs_bucket: str
    home: Path


@pytest.fixture(scope="module")
def driven(audit_gateway, rgw_s3_module, tmp_path_factory) -> Traffic:
    gw = audit_gateway
    t = Traffic()
    t.bucket = "ready-" + uuid.uuid4().hex[:10]
    t.fs_bucket = "ready-fs-" + uuid.uuid4().hex[:8]
    t.home = tmp_path_factory.mktemp("home")
    # -- boto3, its defaults over HTTPS: aws-chunked uploads with a CRC32 trailer
    s3 = gw.client(https=True, retries={"max_attempts": 1, "mode": "standard"})
    s3.create_bucket(Bucket=t.bucket)
    s3.put_object(Bucket=t.bucket, Key="shared.txt", Body=b"hello", ACL="public-read")
    s3.put_object(Bucket=t.bucket, Key="shared.txt", Body=b"hello again")          # a second write within 1 s
    s3.put_object(Bucket=t.bucket, Key="tagged.txt", Body=b"x", Tagging="team=data")
    s3.get_object_tagging(Bucket=t.bucket, Key="tagged.txt")
    _expect_error(s3.put_object, Bucket=t.bucket, Key="k" * 1100, Body=b"x")       # key over 1,024 bytes
    _expect_error(s3.put_object, Bucket=t.bucket, Key="meta.txt", Body=b"x",
                  Metadata={"a": "x" * 4500, "b": "y" * 4500})                     # metadata over 8 KiB
    for form in ("NFC", "NFD"):
        s3.put_object(Bucket=t.bucket, Key=unicodedata.normalize(form, "café/menu.txt"), Body=form.encode())
    upload = s3.create_multipart_upload(Bucket=t.bucket, Key="parts.bin")["UploadId"]
    parts = []
    for n, size in enumerate((5 * MiB, 6 * MiB, 1024), start=1):
        etag = s3.upload_part(Bucket=t.bucket, Key="parts.bin", UploadId=upload, PartNumber=n,
                              Body=os.urandom(size))["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(Bucket=t.bucket, Key="parts.bin", UploadId=upload,
                                 MultipartUpload={"Parts": parts})                 # audit: completes
    url = gw.client().generate_presigned_url("get_object", Params={"Bucket": t.bucket, "Key": "shared.txt"},
                                             ExpiresIn=8 * 86400)
    assert requests.get(url, timeout=10).status_code == 400                       # refused: more than 7 days
    sigv2 = gw.client(signature_version="s3")
    _expect_error(sigv2.list_objects_v2, Bucket=t.bucket)                         # refused: SigV2
    form = gw.client().generate_presigned_post(t.bucket, "form.txt")
    r = requests.post(form["url"], data=form["fields"], files={"file": ("form.txt", b"from a form")}, timeout=10)
    assert r.status_code in (200, 201, 204), r.text                               # audit: stored
    # -- s3fs: emptying a whole bucket asks GetBucketVersioning first
    fs = fsspec.filesystem("s3", key=gw.access_key, secret=gw.secret_key, endpoint_url=gw.endpoint,
                           client_kwargs={"region_name": "auto"}, skip_instance_cache=True)
    fs.mkdir(t.fs_bucket)
    fs.pipe_file(f"{t.fs_bucket}/a.txt", b"a")
    fs.rm(t.fs_bucket, recursive=True)                                            # works in audit mode
    # -- rclone configured as for any S3 store (provider Other): ACLs, versions, versioning
    rclone = require("rclone")
    conf = t.home / "rclone.conf"
    conf.write_text(f"[s3]\ntype = s3\nprovider = Other\naccess_key_id = {gw.access_key}\n"
                    f"secret_access_key = {gw.secret_key}\nendpoint = {gw.https_endpoint}\nregion = auto\n")
    env = client_env(t.home)
    src = t.home / "up.txt"
    src.write_text("from rclone\n")
    base = [rclone, "--config", conf, "--ca-cert", gw.ca_bundle, "--retries", "1", "--low-level-retries", "1"]
    run([*base, "copyto", "--s3-acl", "public-read", src, f"s3:{t.bucket}/rclone.txt"], env)
    run([*base, "lsf", "--s3-versions", f"s3:{t.bucket}"], env)
    run([*base, "backend", "versioning", f"s3:{t.bucket}"], env)
    yield t
    for bucket in (t.bucket, t.fs_bucket):
        try:
            for v in rgw_s3_module.list_object_versions(Bucket=bucket).get("Versions", []):
                rgw_s3_module.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            rgw_s3_module.delete_bucket(Bucket=bucket)
        except ClientError:
            pass


@pytest.fixture(scope="module")
def rgw_s3_module(rgw):
    from tests.upstreams.fixtures import s3_client
    return s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)


def _rows(doc: dict, finding: str, operation: str) -> list[dict]:
    return [f for f in doc["findings"] if f["finding"] == finding and f["operation"] == operation]


def test_the_report_holds_what_each_client_sent(driven, audit_gateway):
    doc = _report(audit_gateway)
    assert doc["report"] == "r2-readiness" and doc["mode"] == "audit" and doc["source"] == "live"
    key = audit_gateway.access_key
    expected = {
        ("x-amz-acl", "PutObject"), ("x-amz-tagging", "PutObject"), ("GetObjectTagging", "GetObjectTagging"),
        ("key-length", "PutObject"), ("metadata-size", "PutObject"), ("nfc-collision", "PutObject"),
        ("write-rate", "PutObject"), ("part-sizes", "CompleteMultipartUpload"), ("aws-chunked", "PutObject"),
        ("presign-expiry", "GetObject"), ("sigv2", "ListObjectsV2"), ("PostObject", "PostObject"),
        ("GetBucketVersioning", "GetBucketVersioning"), ("ListObjectVersions", "ListObjectVersions"),
    }
    found = {(f["finding"], f["operation"]) for f in doc["findings"]}
    assert expected <= found, sorted(expected - found)
    for f in doc["findings"]:
        assert f["access_key_id"] == key, f            # SigV2 and the presigned URL: the key they named
        assert f["count"] >= 1 and f["first_seen"] <= f["last_seen"] and f["example"]["request"]
        assert f["r2_says"] and f["r2_says"]["text"], f
    # keyed by user agent: boto3, s3fs (aiobotocore) and rclone each have their own rows
    (acl_boto,) = [f for f in _rows(doc, "x-amz-acl", "PutObject") if f["user_agent"].startswith("Boto3/")]
    (acl_rclone,) = [f for f in _rows(doc, "x-amz-acl", "PutObject") if f["user_agent"].startswith("rclone/")]
    assert acl_boto["bucket"] == acl_rclone["bucket"] == driven.bucket
    assert acl_boto["example"]["feature"] == "x-amz-acl=public-read" and acl_boto["kind"] == "refused"
    assert acl_boto["r2_says"]["where"] == "config/profiles/r2.yaml: operations.PutObject.ACL"
    assert any(x["client"] == "rclone" for x in acl_rclone["fixes"])
    versioning = _rows(doc, "GetBucketVersioning", "GetBucketVersioning")
    by_agent = {f["user_agent"].split("/")[0]: f for f in versioning}
    assert by_agent["aiobotocore"]["bucket"] == driven.fs_bucket and by_agent["rclone"]["bucket"] == driven.bucket
    assert any("fs.rm" in x["fix"] for x in by_agent["aiobotocore"]["fixes"])
    (write_rate,) = _rows(doc, "write-rate", "PutObject")
    assert write_rate["kind"] == "differs" and write_rate["example"]["request"] == f"PUT /{driven.bucket}/shared.txt"
    (chunked,) = [f for f in _rows(doc, "aws-chunked", "PutObject") if f["user_agent"].startswith("Boto3/")]
    assert chunked["kind"] == "gateway-only" and chunked["count"] >= 5
    assert any('request_checksum_calculation="when_required"' in x["fix"] for x in chunked["fixes"])
    (expiry,) = _rows(doc, "presign-expiry", "GetObject")
    assert expiry["example"]["status"] == 400 and expiry["example"]["error_code"] == "AuthorizationQueryParametersError"
    assert "X-Amz-Signature=<redacted>" in expiry["example"]["request"]
    (parts,) = _rows(doc, "part-sizes", "CompleteMultipartUpload")
    assert parts["example"]["status"] == 200                                     # audit: let through
    apps = {(a["access_key_id"], a["user_agent"].split("/")[0]) for a in doc["applications"]}
    assert {(key, "Boto3"), (key, "aiobotocore"), (key, "rclone")} <= apps
    assert doc["summary"]["breaking_applications"] >= 3
    # nothing secret on the page: no signature, no secret key
    text = json.dumps(doc)
    assert audit_gateway.secret_key not in text and "Signature=" not in text.replace("Signature=<redacted>", "")


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: run `bash tests/upstreams/install-system-deps.sh`", pytrace=False)
    return found


def test_the_page_renders_in_headless_chromium(driven, audit_gateway, tmp_path):
    with urllib.request.urlopen(audit_gateway.endpoint + "/report", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/html")
        page = r.read().decode()
    # no script to need, and nothing to load from elsewhere (links to R2's docs are only links)
    assert "<script" not in page.lower() and " src=" not in page and "<link" not in page and "@import" not in page
    shot = tmp_path / "readiness-report.png"
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    url = audit_gateway.endpoint + "/report"
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="findings"' in dom.stdout and "x-amz-acl" in dom.stdout and "Is my app ready for R2?" in dom.stdout
    r = subprocess.run([*flags, "--window-size=1600,2200", f"--screenshot={shot}", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1600
    assert len(png) > 50_000, "a blank page compresses to almost nothing"
    keep = ROOT / ".tmp"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / "readiness-report.png")
    print(f"\nscreenshot: {shot} (and {keep / 'readiness-report.png'})")


def _offline(log_path: Path, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    r = subprocess.run([sys.executable, "-m", "gateway", "report", "--from", str(log_path), "--format", "json",
                        *extra], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return json.loads(r.stdout)


def _comparable(doc: dict) -> dict:
    return {(f["finding"], f["operation"], f["access_key_id"], f["user_agent"], f["bucket"]):
            (f["count"], f["example"]["request"], f["example"]["feature"], f["example"]["status"],
             f["kind"], f["r2_says"]["text"]) for f in doc["findings"]}


def _close(a: str, b: str) -> bool:
    from datetime import datetime
    return abs(datetime.fromisoformat(a.rstrip("Z")) - datetime.fromisoformat(b.rstrip("Z"))).total_seconds() <= 1


def test_report_from_the_access_log_gives_the_same_findings(driven, audit_gateway):
    live = _report(audit_gateway)
    offline = _offline(audit_gateway.log_path)
    assert offline["source"] == "access-log" and offline["records"] > 30
    assert _comparable(offline) == _comparable(live)
    times = {(f["finding"], f["operation"], f["user_agent"], f["bucket"]): (f["first_seen"], f["last_seen"])
             for f in live["findings"]}
    for f in offline["findings"]:
        first, last = times[(f["finding"], f["operation"], f["user_agent"], f["bucket"])]
        assert _close(f["first_seen"], first) and _close(f["last_seen"], last)
    # the HTML form of the same report
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    page = subprocess.run([sys.executable, "-m", "gateway", "report", "--from", str(audit_gateway.log_path)],
                          cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert page.returncode == 0 and b'id="findings"' in page.stdout


def test_report_from_r2_shaped_access_logs_too(rgw, rgw_s3, tmp_path):
    gw = GatewayProcess(tmp_path, upstream=rgw, tls=False, name="gateway-r2log",
                        env={"R2GW_MODE": "audit", "R2GW_ACCESS_LOG_FORMAT": "r2"})
    gw.start()
    bucket = "ready-r2log-" + uuid.uuid4().hex[:6]
    try:
        s3 = gw.client()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="a", Body=b"a", ACL="public-read")
        s3.get_bucket_versioning(Bucket=bucket)
        live = _report(gw)
    finally:
        gw.stop()
        rgw_s3.delete_object(Bucket=bucket, Key="a")
        rgw_s3.delete_bucket(Bucket=bucket)
    records = [json.loads(x) for x in gw.log_path.read_text().splitlines() if x.startswith('{"timestamp"')]
    assert records and all(r["interface"] == "S3" and "r2gw" in r for r in records)
    put = next(r for r in records if r["action"] == "PutObject")
    assert put["actor"]["accessKeyId"] == gw.access_key and put["resource"] == {"bucket": bucket, "key": "a"}
    assert put["r2gw"]["features"] == ["x-amz-acl=public-read"] and put["status"] == 200
    offline = _offline(gw.log_path)
    assert {(f["finding"], f["operation"]) for f in offline["findings"]} == {
        ("x-amz-acl", "PutObject"), ("GetBucketVersioning", "GetBucketVersioning")}
    assert _comparable(offline) == _comparable(live)


def test_findings_survive_a_restart(driven, audit_gateway):
    before = _comparable(_report(audit_gateway))
    audit_gateway.stop()                      # SIGTERM: drained, the findings saved
    state = json.loads(Path(audit_gateway.env["R2GW_REPORT_STATE_FILE"]).read_text())
    assert state["version"] == 1 and len(state["rows"]) == len(before)
    audit_gateway.start()
    assert _comparable(_report(audit_gateway)) == before
