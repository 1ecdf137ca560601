"""Compatibility profiles end to end: the real gateway, a counting proxy, Ceph RGW.

client ─▶ gateway (one per profile and mode) ─▶ CountingProxy ─▶ RGW

The cases are generated from the data, not listed by hand: every operation a profile marks
unimplemented (its request built from the classifier's own table), every ❌ header / query
parameter of every implemented operation (a non-default value is refused, the harmless defaults
pass), every implemented operation (the rules let it through). A refused request must leave the
upstream untouched: the counting proxy proves it saw no request.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import requests
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import S3Error
from gateway.operations import OBJECT, OPERATION_INFO, SERVICE, TABLE, classify
from gateway.rules import load_profile
from tests import s3raw
from tests.conftest import _empty_and_delete
from tests.gateway_process import ROOT, GatewayProcess
from tests.upstreams.fixtures import s3_client

from .counting_proxy import CountingProxy

PROFILES = ("r2", "r2-2022", "provider-b")
AK, SK = "rules-test-key", "rules-test-secret-0123456789abcdef"
BOGUS = "bogus-value"
SECRET_HEADERS = frozenset({"x-amz-security-token", "x-amz-server-side-encryption-customer-key",
                            "x-amz-copy-source-server-side-encryption-customer-key"})
# provider-b's storage classes → the classes configured on RGW for this module. DEEP_ARCHIVE is
# overridden by the gateway config (storage_class_map) onto a class of RGW's own naming.
RGW_CLASSES = ("STANDARD_IA", "GLACIER", "COLD")
PROVIDER_B_CONFIG_MAP = {"DEEP_ARCHIVE": "COLD"}

# What turns a bare subresource request into a given operation (the classifier's _Pick tests):
SWITCH_QUERY = {"id": "cfg1", "annotationName": "a1", "partNumber": "1", "uploadId": "upload1",
                "select-type": "2", "list-type": "2"}
SWITCH_HEADERS = {"x-amz-copy-source": "{bucket}/source-key", "x-amz-request-route": "route1",
                  "content-type": "multipart/form-data; boundary=rules-test-boundary"}
# a real header name for a ❌ family ("x-amz-object-lock-*")
FAMILY_EXAMPLES = ("x-amz-object-lock-mode", "x-amz-server-side-encryption",
                   "x-amz-copy-source-server-side-encryption-customer-algorithm")


# ---- requests generated from the classifier's table ---------------------------------------------

@dataclass(frozen=True)
class Shape:
    """The smallest request the classifier names ``op``: method, level, query, headers."""
    op: str
    method: str
    level: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]


def _shape(op: str) -> Shape:
    switches = [("q", k) for k in SWITCH_QUERY] + [("h", k) for k in SWITCH_HEADERS]
    for method, level in OPERATION_INFO[op]:
        bucket = None if level == SERVICE else "b"
        key = "k" if level == OBJECT else None
        for sub in [None, *(s for s, _ in TABLE[(method, level)] if s)]:
            for n in range(3):
                for combo in itertools.combinations(switches, n):
                    query = {sub: ""} if sub else {}
                    query.update({k: SWITCH_QUERY[k] for t, k in combo if t == "q"})
                    headers = {k: SWITCH_HEADERS[k] for t, k in combo if t == "h"}
                    try:
                        if classify(method, bucket, key, query, headers) == op:
                            return Shape(op, method, level, tuple(query.items()), tuple(headers.items()))
                    except S3Error:
                        pass
    raise AssertionError(f"no request the classifier names {op}")


SHAPES = {op: _shape(op) for op in sorted(OPERATION_INFO)}
LOADED = {name: load_profile(name) for name in PROFILES}


def _family_example(prefix: str) -> str:
    return next((h for h in FAMILY_EXAMPLES if h.startswith(prefix)), prefix + "x")


@dataclass(frozen=True)
class Case:
    profile: str
    op: str
    kind: str                # "header" | "query"
    name: str
    value: str
    expect: str              # "refused" | "passes"
    error: tuple[int, str, str] | None = None  # status, code, message

    @property
    def id(self) -> str:
        return f"{self.profile}-{self.op}-{self.name}={self.value}"


def _still(shape: Shape, extra_headers: dict, extra_query: dict) -> bool:
    """True if the request with the extra header/query is still ``shape.op`` (x-amz-copy-source
    would make a PutObject a CopyObject: such a case is not generated)."""
    bucket = None if shape.level == SERVICE else "b"
    key = "k" if shape.level == OBJECT else None
    try:
        return classify(shape.method, bucket, key, {**dict(shape.query), **extra_query},
                        {**dict(shape.headers), **extra_headers}) == shape.op
    except S3Error:
        return False


def _header_cases(name: str) -> list[Case]:
    p = LOADED[name]
    harmless_h = {k.lower(): v for k, v in p.spec.harmless_header_values.items()}
    harmless_q = p.spec.harmless_query_values
    out: list[Case] = []
    for op, rules in sorted(p.op_rules.items()):
        if not rules.implemented:
            continue
        shape = SHAPES[op]
        items = [("header", h, harmless_h.get(h, ())) for h, _ in rules.refuse_headers]
        items += [("header", _family_example(pre), harmless_h.get(pre + "*", ())) for pre, _ in rules.refuse_prefixes]
        items += [("query", q, harmless_q.get(q, ())) for q, _ in rules.refuse_query]
        for kind, hname, harmless in items:
            extra_h, extra_q = ({hname: BOGUS}, {}) if kind == "header" else ({}, {hname: BOGUS})
            if not _still(shape, extra_h, extra_q):
                continue
            shown = "***" if hname in SECRET_HEADERS else BOGUS
            message = (f"Header '{hname}' with value '{shown}' not implemented" if kind == "header"
                       else f"Query parameter '{hname}' with value '{shown}' not implemented")
            out.append(Case(name, op, kind, hname, BOGUS, "refused", (501, "NotImplemented", message)))
            for value in harmless:
                out.append(Case(name, op, kind, hname, value, "passes"))
        if rules.storage_class:
            if p.storage_class_error == "NotImplemented":
                err = (501, "NotImplemented", f"Header 'x-amz-storage-class' with value '{BOGUS}' not implemented")
            else:
                err = (400, p.storage_class_error, None)
            out.append(Case(name, op, "header", "x-amz-storage-class", BOGUS, "refused", err))
            for cls in p.spec.storage_classes:
                out.append(Case(name, op, "header", "x-amz-storage-class", cls, "passes"))
    return out


UNIMPLEMENTED = [(n, op) for n in PROFILES for op in sorted(LOADED[n].op_rules)
                 if not LOADED[n].op_rules[op].implemented]
IMPLEMENTED = [(n, op) for n in PROFILES for op in sorted(LOADED[n].op_rules)
               if LOADED[n].op_rules[op].implemented]
HEADER_CASES = [c for n in PROFILES for c in _header_cases(n)]


def generated_counts() -> dict[str, dict[str, int]]:
    """How many cases each profile generates (printed by test_generated_case_counts)."""
    out = {}
    for n in PROFILES:
        out[n] = {"unimplemented": sum(1 for p, _ in UNIMPLEMENTED if p == n),
                  "implemented": sum(1 for p, _ in IMPLEMENTED if p == n),
                  "refused": sum(1 for c in HEADER_CASES if c.profile == n and c.expect == "refused"),
                  "harmless": sum(1 for c in HEADER_CASES if c.profile == n and c.expect == "passes")}
    return out


# ---- gateways ------------------------------------------------------------------------------------

@dataclass
class Stack:
    gw: GatewayProcess
    proxy: CountingProxy
    ghost: str                       # a bucket no case relies on (created/deleted by some cases)
    bucket: str                      # a real bucket for the cases that need one

    @property
    def endpoint(self) -> str:
        return self.gw.endpoint


def _configure_rgw_storage_classes(rgw) -> None:
    """Storage classes beyond STANDARD on RGW's default placement (it refuses unknown classes with
    400 InvalidArgument). Idempotent; radosgw is restarted (data kept) only if something was added."""
    zg = rgw.admin_json("zonegroup", "get")
    have = set()
    for target in zg.get("placement_targets", []):
        if target.get("name") == "default-placement":
            have = set(target.get("storage_classes", []))
    missing = [c for c in RGW_CLASSES if c not in have]
    for cls in missing:
        rgw.admin("zonegroup", "placement", "add", "--rgw-zonegroup", "default",
                  "--placement-id", "default-placement", "--storage-class", cls)
        rgw.admin("zone", "placement", "add", "--rgw-zone", "default", "--placement-id", "default-placement",
                  "--storage-class", cls, "--data-pool", "default.rgw.buckets.data")
    if missing:
        rgw.restart_rgw()


@pytest.fixture(scope="module")
def direct(rgw):
    """boto3 straight at RGW (no gateway)."""
    if not rgw.is_running():
        rgw.start_rgw()
    return s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)


STACKS = [(p, "enforce") for p in PROFILES] + [("r2", "audit"), ("r2", "off")]


@pytest.fixture(scope="module")
def stacks(rgw, direct, tmp_path_factory):
    """One gateway per (profile, mode), each behind its own counting proxy, started together."""
    _configure_rgw_storage_classes(rgw)
    started: dict[tuple[str, str], Stack] = {}
    for profile, mode in STACKS:
        proxy = CountingProxy(rgw.endpoint).start()
        upstream = SimpleNamespace(endpoint=proxy.endpoint, access_key=rgw.access_key,
                                   secret_key=rgw.secret_key, region=rgw.region)
        # the placement has the classes now (configured above): the store keeps them itself
        env = {"R2GW_PROFILE": profile, "R2GW_MODE": mode, "R2GW_LOG_LEVEL": "info",
               "R2GW_UPSTREAM_STORAGE_CLASSES": ",".join(("STANDARD", *RGW_CLASSES))}
        if profile == "provider-b":
            env["R2GW_STORAGE_CLASS_MAP"] = json.dumps(PROVIDER_B_CONFIG_MAP)
        gw = GatewayProcess(tmp_path_factory.mktemp(f"gw-{profile}-{mode}"), upstream=upstream, env=env,
                            tls=False, access_key=AK, secret_key=SK, name=f"gateway-{profile}-{mode}")
        tag = uuid.uuid4().hex[:8]
        direct.create_bucket(Bucket=f"rules-{tag}")
        started[(profile, mode)] = Stack(gw, proxy, f"ghost-{tag}", f"rules-{tag}")
    with ThreadPoolExecutor(len(started)) as pool:
        list(pool.map(lambda st: st.gw.start(), started.values()))

    yield lambda profile, mode="enforce": started[(profile, mode)]
    with ThreadPoolExecutor(len(started)) as pool:
        list(pool.map(lambda st: st.gw.stop(), started.values()))
    for stack in started.values():
        stack.proxy.stop()
        for bucket in (stack.ghost, stack.bucket):
            _purge_versions(direct, bucket)
            _empty_and_delete(direct, bucket)


def _purge_versions(client, bucket: str) -> None:
    """Every object version and delete marker (the strip test versions two buckets)."""
    try:
        listing = client.list_object_versions(Bucket=bucket)
    except ClientError:
        return
    for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


# ---- raw signed requests -------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    upstream: list          # what the upstream was asked while this request was served

    @property
    def code(self) -> str | None:
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else None

    @property
    def message(self) -> str | None:
        m = re.search(rb"<Message>([^<]*)</Message>", self.body)
        return m.group(1).decode().replace("&apos;", "'").replace("&quot;", '"').replace("&amp;", "&") if m else None


def send(stack: Stack, shape: Shape, bucket: str, *, headers: dict | None = None, query: dict | None = None,
         body: bytes = b"", key: str = "rules-key") -> Answer:
    path = "/" if shape.level == SERVICE else f"/{bucket}" + (f"/{quote(key)}" if shape.level == OBJECT else "")
    q = {**dict(shape.query), **(query or {})}
    raw_query = "&".join(quote(k, safe="-_.~") + ("=" + quote(v, safe="-_.~") if v != "" else "") for k, v in q.items())
    target = path + ("?" + raw_query if raw_query else "")
    h = {k: v.format(bucket=bucket) for k, v in shape.headers}
    h.update(headers or {})
    payload = hashlib.sha256(body).hexdigest()
    signed = s3raw.sign(shape.method, stack.endpoint + target, h, payload, AK, SK)
    mark = stack.proxy.count
    status, rh, rb = s3raw.send(stack.endpoint, shape.method, target, signed, body)
    return Answer(status, rh, rb, stack.proxy.since(mark))


def refused_by_rules(a: Answer, op: str) -> bool:
    return a.status == 501 and a.message == f"{op} not implemented"


# ---- 1-2. generated: unimplemented operations, ❌ headers, implemented operations -----------------

def test_generated_case_counts():
    counts = generated_counts()
    print("\ngenerated cases per profile:", json.dumps(counts))
    for n in PROFILES:
        assert counts[n]["unimplemented"] + counts[n]["implemented"] == len(OPERATION_INFO)
        assert counts[n]["refused"] > 0


@pytest.mark.parametrize("profile,op", UNIMPLEMENTED, ids=[f"{n}-{op}" for n, op in UNIMPLEMENTED])
def test_unimplemented_operation_is_refused_before_the_upstream(stacks, profile, op):
    stack = stacks(profile)
    a = send(stack, SHAPES[op], stack.ghost)
    assert (a.status, a.code, a.message) == (501, "NotImplemented", f"{op} not implemented"), a.body[:300]
    assert a.upstream == [], f"{op}: the upstream was asked {a.upstream}"


@pytest.mark.parametrize("case", HEADER_CASES, ids=[c.id for c in HEADER_CASES])
def test_refused_header_and_harmless_default(stacks, case: Case):
    stack = stacks(case.profile)
    extra = {"headers": {case.name: case.value}} if case.kind == "header" else {"query": {case.name: case.value}}
    a = send(stack, SHAPES[case.op], stack.ghost, **extra)
    if case.expect == "refused":
        status, code, message = case.error
        if SHAPES[case.op].method == "HEAD":  # no body: the status says it
            code = message = None
        assert (a.status, a.code) == (status, code), a.body[:300]
        if message is not None:
            assert a.message == message
        assert a.upstream == [], f"the upstream was asked {a.upstream}"
    else:  # the rules let it through: the upstream was asked (whatever it answers)
        assert a.upstream, f"{case.id}: the upstream saw nothing ({a.status} {a.body[:200]})"


# PostObject is exercised with real forms below
_PASS_THROUGH = [(n, op) for n, op in IMPLEMENTED if op != "PostObject"]


@pytest.mark.parametrize("profile,op", _PASS_THROUGH, ids=[f"{n}-{op}" for n, op in _PASS_THROUGH])
def test_implemented_operation_reaches_the_upstream(stacks, profile, op):
    stack = stacks(profile)
    a = send(stack, SHAPES[op], stack.ghost)
    assert not refused_by_rules(a, op)
    assert a.upstream, f"{op}: not refused, but the upstream saw nothing ({a.status} {a.body[:200]})"


def _outcome(stack: Stack, op: str, **kw) -> str:
    a = send(stack, SHAPES[op], stack.bucket, **kw)
    if a.status == 501 and not a.upstream:
        return "501"
    if a.status == 400 and not a.upstream:
        return a.code
    return "upstream" if a.upstream else f"{a.status} {a.code}"


def test_profile_differences(stacks):
    """The same requests through the three profiles (the table in docs/compat-r2.md vs the others)."""
    r2, old, b = stacks("r2"), stacks("r2-2022"), stacks("provider-b")
    table = {
        # operation                      r2          r2-2022     provider-b
        ("ListObjects", ()):             ("upstream", "501", "upstream"),
        ("GetBucketLocation", ()):       ("upstream", "501", "upstream"),
        ("ListMultipartUploads", ()):    ("upstream", "501", "501"),
        ("ListParts", ()):               ("upstream", "501", "upstream"),
        ("PutBucketCors", ()):           ("upstream", "501", "501"),
        ("GetObjectTagging", ()):        ("501", "501", "501"),
        ("RestoreObject", ()):           ("501", "501", "upstream"),
        ("HeadObject", (("x-amz-server-side-encryption-customer-algorithm", "AES256"),)):
                                         ("upstream", "501", "501"),
        ("PutObject", (("x-amz-storage-class", "STANDARD_IA"),)):
                                         ("upstream", "501", "InvalidStorageClass"),
        ("PutObject", (("x-amz-storage-class", "IA"),)):
                                         ("501", "501", "upstream"),
        ("PutObject", (("x-amz-acl", "public-read"),)):
                                         ("501", "501", "upstream"),
        # R2 verifies session tokens (a bogus one is refused); provider-b has none: the header is ❌
        ("PutObject", (("x-amz-security-token", "t"),)):
                                         ("403 AccessDenied", "403 AccessDenied", "501"),
        ("ListObjectsV2", (("?encoding-type", "bogus"),)):
                                         ("upstream", "upstream", "501"),
    }
    got = {}
    for (op, extra), want in table.items():
        headers = {k: v for k, v in extra if not k.startswith("?")}
        query = {k[1:]: v for k, v in extra if k.startswith("?")}
        body = b"<RestoreRequest><Days>2</Days></RestoreRequest>" if op == "RestoreObject" else b""
        got[(op, extra)] = tuple(_outcome(s, op, headers=headers, query=query, body=body) for s in (r2, old, b))
    wrong = {k: (got[k], v) for k, v in table.items() if got[k] != v}
    assert not wrong, "\n".join(f"{k}: got {g}, want {w}" for k, (g, w) in wrong.items())


# ---- 3. audit and off ----------------------------------------------------------------------------

def _rejected(stack: Stack) -> dict[tuple[str, str, str], float]:
    """r2gw_rejected_features_total samples scraped from the gateway's /metrics (unsigned GET)."""
    text = requests.get(stack.endpoint + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == "r2gw_rejected_features":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = sample.labels
                    out[(labels["operation"], labels["feature"], labels["mode"])] = sample.value
    return out


def _log_events(stack: Stack, event: str, request_id: str | None = None, wait: float = 3.0) -> list[dict]:
    deadline = time.monotonic() + wait
    while True:
        found = []
        for line in stack.gw.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if rec.get("event") == event and (request_id is None or rec.get("request_id") == request_id):
                found.append(rec)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


PUT = SHAPES["PutObject"]
TAGGING = SHAPES["GetObjectTagging"]


def test_enforce_audit_off(stacks, direct):
    """The same two requests (x-amz-acl: public-read on PutObject; GetObjectTagging) per mode."""
    results = {}
    for mode in ("enforce", "audit", "off"):
        stack = stacks("r2", mode)
        key = f"acl-{mode}"
        put = send(stack, PUT, stack.bucket, key=key, headers={"x-amz-acl": "public-read"}, body=b"hello")
        tags = send(stack, TAGGING, stack.bucket, key=key)
        results[mode] = (put, tags, _rejected(stack))

    put, tags, metric = results["enforce"]
    assert (put.status, put.message) == (501, "Header 'x-amz-acl' with value 'public-read' not implemented")
    assert (tags.status, tags.message) == (501, "GetObjectTagging not implemented")
    assert put.upstream == [] and tags.upstream == []
    assert metric[("PutObject", "x-amz-acl", "enforce")] >= 1
    assert metric[("GetObjectTagging", "GetObjectTagging", "enforce")] >= 1

    put, tags, metric = results["audit"]
    assert put.status == 200 and [m for m, _ in put.upstream] == ["PUT"]
    assert direct.get_object(Bucket=stacks("r2", "audit").bucket, Key="acl-audit")["Body"].read() == b"hello"
    assert tags.status == 200 and [m for m, _ in tags.upstream] == ["GET"]  # RGW's own answer
    assert b"<TagSet" in tags.body
    assert metric == {("PutObject", "x-amz-acl", "audit"): 1.0, ("GetObjectTagging", "GetObjectTagging", "audit"): 1.0}
    request_id = put.headers["x-amz-request-id"]
    (line,) = _log_events(stacks("r2", "audit"), "r2_unsupported_feature", request_id)
    assert line["operation"] == "PutObject" and line["features"] == ["x-amz-acl=public-read"]
    assert line["profile"] == "r2" and line["level"] == "warning"
    (line,) = _log_events(stacks("r2", "audit"), "r2_unsupported_feature", tags.headers["x-amz-request-id"])
    assert line["features"] == ["GetObjectTagging"]

    put, tags, metric = results["off"]
    assert put.status == 200 and [m for m, _ in put.upstream] == ["PUT"]
    assert tags.status == 200 and tags.upstream
    assert metric == {}
    assert _log_events(stacks("r2", "off"), "r2_unsupported_feature", wait=0.2) == []


# ---- 4. r2-gateway compat ------------------------------------------------------------------------

def _cli(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    r = subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_compat_cli_markdown_is_the_committed_doc_and_json_parses():
    assert _cli("compat", "--profile", "r2", "--format", "markdown") == (ROOT / "docs" / "compat-r2.md").read_text()
    assert _cli("compat", "--format", "markdown") == (ROOT / "docs" / "compat-r2.md").read_text()  # r2: the default
    for name in PROFILES:
        data = json.loads(_cli("compat", "--profile", name, "--format", "json"))
        text = json.dumps(data)
        for op in OPERATION_INFO:
            assert op in text, f"{name}: {op} missing from the JSON table"


# ---- 5. provider-b: storage classes, PostObject, RestoreObject, response headers -----------------

def _boto(stack: Stack):
    return stack.gw.client(access_key=AK, secret_key=SK)


def test_provider_b_storage_classes_map_both_ways(stacks, direct):
    stack = stacks("provider-b")
    s3, b = _boto(stack), stack.bucket
    upstream_of = {"STANDARD": "STANDARD", "IA": "STANDARD_IA", "ARCHIVE": "GLACIER", "DEEP_ARCHIVE": "COLD"}
    for cls, up in upstream_of.items():
        s3.put_object(Bucket=b, Key=f"sc/{cls}", Body=cls.encode(), StorageClass=cls)
        assert s3.head_object(Bucket=b, Key=f"sc/{cls}").get("StorageClass", "STANDARD") == cls
        got = s3.get_object(Bucket=b, Key=f"sc/{cls}")
        assert got.get("StorageClass", "STANDARD") == cls and got["Body"].read() == cls.encode()
        assert direct.head_object(Bucket=b, Key=f"sc/{cls}").get("StorageClass", "STANDARD") == up
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=b, Prefix="sc/")["Contents"]}
    assert listed == {f"sc/{c}": c for c in upstream_of}
    listed_v1 = {o["Key"]: o["StorageClass"] for o in s3.list_objects(Bucket=b, Prefix="sc/")["Contents"]}
    assert listed_v1 == listed
    raw = {o["Key"]: o["StorageClass"] for o in direct.list_objects_v2(Bucket=b, Prefix="sc/")["Contents"]}
    assert raw == {f"sc/{c}": u for c, u in upstream_of.items()}
    # CopyObject and multipart uploads take the client's names too
    s3.copy_object(Bucket=b, Key="sc/copied", CopySource={"Bucket": b, "Key": "sc/STANDARD"}, StorageClass="ARCHIVE")
    assert direct.head_object(Bucket=b, Key="sc/copied")["StorageClass"] == "GLACIER"
    assert s3.head_object(Bucket=b, Key="sc/copied")["StorageClass"] == "ARCHIVE"
    up = s3.create_multipart_upload(Bucket=b, Key="sc/mpu", StorageClass="IA")["UploadId"]
    etag = s3.upload_part(Bucket=b, Key="sc/mpu", UploadId=up, PartNumber=1, Body=b"x" * 10)["ETag"]
    # ListParts: RGW 16 reports STANDARD whatever the upload's class; the gateway answers the class
    # the upload was made in (its record), under the client's name
    assert direct.list_parts(Bucket=b, Key="sc/mpu", UploadId=up)["StorageClass"] == "STANDARD"
    assert s3.list_parts(Bucket=b, Key="sc/mpu", UploadId=up)["StorageClass"] == "IA"
    s3.complete_multipart_upload(Bucket=b, Key="sc/mpu", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert direct.head_object(Bucket=b, Key="sc/mpu")["StorageClass"] == "STANDARD_IA"
    assert s3.head_object(Bucket=b, Key="sc/mpu")["StorageClass"] == "IA"
    # not one of provider-b's classes: refused as AWS does, before the upstream
    mark = stack.proxy.count
    for bad in ("GLACIER", "STANDARD_IA", ""):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=b, Key="sc/bad", Body=b"x", StorageClass=bad)
        assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
    assert stack.proxy.since(mark) == []


def _form(stack: Stack, key: str, *, fields=None, conditions=None, expires=300):
    return _boto(stack).generate_presigned_post(stack.bucket, key, Fields=fields, Conditions=conditions,
                                                ExpiresIn=expires)


def _post(post: dict, data: bytes, filename: str = "file.txt", extra: dict | None = None) -> requests.Response:
    fields = dict(post["fields"])
    fields.update(extra or {})
    return requests.post(post["url"], data=fields, files={"file": (filename, data, "application/octet-stream")},
                         timeout=60, allow_redirects=False)


def _error(resp: requests.Response) -> tuple[int, str, str]:
    root = ElementTree.fromstring(resp.content)
    return resp.status_code, root.findtext("Code"), root.findtext("Message")


def test_post_object_uploads_with_a_signed_policy(stacks, direct):
    stack = stacks("provider-b")
    b = stack.bucket
    post = _form(stack, "forms/${filename}",
                 fields={"Content-Type": "text/plain", "x-amz-meta-note": "from a form", "x-amz-storage-class": "IA"},
                 conditions=[{"Content-Type": "text/plain"}, ["starts-with", "$x-amz-meta-note", ""],
                             {"x-amz-storage-class": "IA"}, ["content-length-range", 1, 1000]])
    mark = stack.proxy.count
    r = _post(post, b"hello form", filename="hello.txt")
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(b"hello form").hexdigest()
    assert r.headers["Location"].endswith(f"/{b}/forms/hello.txt")
    assert [m for m, _ in stack.proxy.since(mark)] == ["PUT"]
    obj = direct.get_object(Bucket=b, Key="forms/hello.txt")
    assert obj["Body"].read() == b"hello form"
    assert obj["ContentType"] == "text/plain" and obj["Metadata"] == {"note": "from a form"}
    assert obj["StorageClass"] == "STANDARD_IA"  # IA, mapped to the upstream's class
    # success_action_status 201: S3's PostResponse document
    post = _form(stack, "forms/created.bin", fields={"success_action_status": "201"},
                 conditions=[{"success_action_status": "201"}])
    r = _post(post, b"\x00\x01" * 100)
    assert r.status_code == 201, r.text
    root = ElementTree.fromstring(r.content)
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    assert root.findtext("s3:Key", namespaces=ns) == "forms/created.bin"
    assert root.findtext("s3:Bucket", namespaces=ns) == b
    assert direct.get_object(Bucket=b, Key="forms/created.bin")["Body"].read() == b"\x00\x01" * 100
    # an empty file is a valid upload
    r = _post(_form(stack, "forms/empty"), b"")
    assert r.status_code == 204, r.text
    assert direct.head_object(Bucket=b, Key="forms/empty")["ContentLength"] == 0


def test_post_object_refusals(stacks, direct):
    stack = stacks("provider-b")
    b = stack.bucket
    mark = stack.proxy.count
    # a policy changed after signing
    post = _form(stack, "forms/tampered", conditions=[["content-length-range", 1, 10]])
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not (isinstance(c, list) and c[0] == "content-length-range")]
    post["fields"]["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    assert _error(_post(post, b"x" * 100))[:2] == (403, "SignatureDoesNotMatch")
    # expired
    assert _error(_post(_form(stack, "forms/expired", expires=-60), b"x")) == (
        403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    # conditions: the key, an extra field, the bucket, the size
    post = _form(stack, "forms/fixed-key")
    status, code, message = _error(_post(post, b"x", extra={"key": "forms/other-key"}))
    assert (status, code) == (403, "AccessDenied") and "Policy Condition failed" in message and "key" in message
    status, code, message = _error(_post(_form(stack, "forms/extra"), b"x", extra={"x-amz-meta-sneaky": "1"}))
    assert (status, code, message) == (403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky")
    other = dict(_form(stack, "forms/wrong-bucket"))
    other["url"] = other["url"].rsplit("/", 1)[0] + "/" + stacks("r2", "audit").bucket
    assert _error(_post(other, b"x"))[:2] == (403, "AccessDenied")
    post = _form(stack, "forms/too-big", conditions=[["content-length-range", 1, 10]])
    assert _error(_post(post, b"x" * 11))[:2] == (400, "EntityTooLarge")
    assert _error(_post(post, b""))[:2] == (400, "EntityTooSmall")
    # no policy at all: no anonymous access; a wrong key id
    r = requests.post(f"{stack.endpoint}/{b}", data={"key": "forms/anon"}, files={"file": ("f", b"x")}, timeout=30)
    assert _error(r)[:2] == (403, "AccessDenied")
    post = _form(stack, "forms/who")
    post["fields"]["x-amz-credential"] = "nobody" + post["fields"]["x-amz-credential"][len(AK):]
    assert _error(_post(post, b"x"))[:2] == (403, "InvalidAccessKeyId")
    # provider-b's ❌ form fields and storage classes
    post = _form(stack, "forms/tagged", fields={"tagging": "<Tagging/>"}, conditions=[{"tagging": "<Tagging/>"}])
    assert _error(_post(post, b"x")) == (501, "NotImplemented", "Form field 'tagging' with value '<Tagging/>' not implemented")
    post = _form(stack, "forms/glacier", fields={"x-amz-storage-class": "GLACIER"},
                 conditions=[{"x-amz-storage-class": "GLACIER"}])
    assert _error(_post(post, b"x"))[:2] == (400, "InvalidStorageClass")
    assert stack.proxy.since(mark) == [], "a refused form reached the upstream"
    keys = [o["Key"] for o in direct.list_objects_v2(Bucket=b, Prefix="forms/").get("Contents", [])]
    assert not [k for k in keys if k.split("/")[1] in ("tampered", "expired", "other-key", "extra", "too-big",
                                                       "anon", "who", "tagged", "glacier", "fixed-key")]


def test_post_object_under_r2_is_not_implemented(stacks):
    stack = stacks("r2")
    post = _form(stack, "forms/r2")
    mark = stack.proxy.count
    assert _error(_post(post, b"x")) == (501, "NotImplemented", "PostObject not implemented")
    assert stack.proxy.since(mark) == []


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_post_object_streams_large_files_and_never_commits_a_bad_form(stacks, direct):
    stack = stacks("provider-b")
    b = stack.bucket
    data = os.urandom(1024 * 1024) * 32  # 32 MiB
    before = _vm_hwm(stack.gw.pid)
    r = _post(_form(stack, "forms/large"), data)
    assert r.status_code == 204, r.text
    grew = _vm_hwm(stack.gw.pid) - before
    assert grew < 16 * 1024 * 1024, f"the gateway's peak memory grew by {grew >> 20} MiB for a 32 MiB form"
    got = direct.get_object(Bucket=b, Key="forms/large")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # a field after the file makes the file's length unknowable up front: refused, nothing stored
    post = _form(stack, "forms/field-after-file")
    boundary = "rules-boundary-1234"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in post["fields"].items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data[: 3 * 1024 * 1024] + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="x-ignore-late"\r\n\r\nlate\r\n'
                 f"--{boundary}--\r\n".encode())
    r = requests.post(post["url"], data=b"".join(parts), timeout=60,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert _error(r)[:2] == (400, "MalformedPOSTRequest")
    with pytest.raises(ClientError):
        direct.head_object(Bucket=b, Key="forms/field-after-file")
    # a small form that ends without the final CRLF is read whole: its length is exact
    post = _form(stack, "forms/no-final-crlf")
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in post["fields"].items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'.encode()
             + b"small" + f"\r\n--{boundary}--".encode())
    r = requests.post(post["url"], data=body, timeout=60,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 204, r.text
    assert direct.get_object(Bucket=b, Key="forms/no-final-crlf")["Body"].read() == b"small"


def test_provider_b_restore_object_limits(stacks, direct):
    stack = stacks("provider-b")
    s3, b = _boto(stack), stack.bucket
    s3.put_object(Bucket=b, Key="cold/archive", Body=b"a", StorageClass="ARCHIVE")
    s3.put_object(Bucket=b, Key="cold/deep", Body=b"d", StorageClass="DEEP_ARCHIVE")
    restore = SHAPES["RestoreObject"]

    def ask(key, xml, **kw):
        return send(stack, restore, b, key=key, body=xml.encode(), **kw)

    for days in (0, 8, -1, "x"):
        a = ask("cold/archive", f"<RestoreRequest><Days>{days}</Days></RestoreRequest>")
        assert (a.status, a.code) == (400, "InvalidArgument") and a.upstream == [], a.body
    a = ask("cold/archive", "<RestoreRequest><Days>2</Days><Tier>Bulk</Tier></RestoreRequest>")
    assert (a.status, a.message, a.upstream) == (501, "Element 'Tier' with value 'Bulk' not implemented", [])
    a = ask("cold/archive", "<RestoreRequest><Days>2</Days></RestoreRequest>", query={"versionId": "v1"})
    assert (a.status, a.message, a.upstream) == (501, "Query parameter 'versionId' with value 'v1' not implemented", [])
    expedited = "<RestoreRequest><Days>2</Days><GlacierJobParameters><Tier>Expedited</Tier></GlacierJobParameters></RestoreRequest>"
    a = ask("cold/deep", expedited)
    assert (a.status, a.code) == (400, "InvalidArgument") and [m for m, _ in a.upstream] == ["HEAD"]
    # within the limits: forwarded, and the upstream's own answer relayed as S3 XML
    for key, xml in (("cold/archive", "<RestoreRequest><Days>7</Days></RestoreRequest>"),
                     ("cold/archive", expedited),  # Expedited is refused only for DEEP_ARCHIVE objects
                     ("cold/deep", "<RestoreRequest><Days>1</Days><GlacierJobParameters><Tier>Standard"
                                   "</Tier></GlacierJobParameters></RestoreRequest>")):
        a = ask(key, xml)
        assert any(m == "POST" and "restore" in t for m, t in a.upstream), (a.status, a.body, a.upstream)
        if a.status >= 400:  # Ceph RGW: restore is for cloud-tiered objects only
            assert a.code and a.message != "RestoreObject not implemented", a.body
        else:
            assert a.status in (200, 202)


def test_provider_b_strips_the_response_headers_it_does_not_send(stacks, direct):
    pb, r2 = stacks("provider-b"), stacks("r2")
    for stack in (pb, r2):
        direct.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    seen = {}
    for name, stack in (("provider-b", pb), ("r2", r2)):
        s3 = _boto(stack)
        put = s3.put_object(Bucket=stack.bucket, Key="v", Body=b"1")["ResponseMetadata"]["HTTPHeaders"]
        get = s3.get_object(Bucket=stack.bucket, Key="v")["ResponseMetadata"]["HTTPHeaders"]
        head = s3.head_object(Bucket=stack.bucket, Key="v")["ResponseMetadata"]["HTTPHeaders"]
        delete = s3.delete_object(Bucket=stack.bucket, Key="v")["ResponseMetadata"]["HTTPHeaders"]
        seen[name] = (put, get, head, delete)
    put, get, head, delete = seen["r2"]  # r2 strips nothing: RGW's headers come through
    assert "x-amz-version-id" in put and "x-amz-version-id" in get and "x-amz-delete-marker" in delete
    put, get, head, delete = seen["provider-b"]
    for headers in (put, get, head, delete):
        assert not {"x-amz-version-id", "x-amz-delete-marker", "x-amz-id-2"} & set(headers), headers
    versions = direct.list_object_versions(Bucket=pb.bucket, Prefix="v")
    assert versions.get("Versions") and versions.get("DeleteMarkers")  # the upstream did version it
