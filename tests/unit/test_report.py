"""The readiness report's pieces without a server: the bounded rows, the state round trip, the
observers, what R2 says for every finding the r2 profile can produce, the page, the access-log
reader, and the billing classes."""
from __future__ import annotations

import json
import unicodedata
from types import SimpleNamespace

import pytest

from gateway.billing import Billing, load_classes
from gateway.operations import OPERATIONS
from gateway.report.catalog import describe, hint_for, load_hints
from gateway.report.detect import Observers, auth_findings
from gateway.report.findings import OTHER, Findings
from gateway.report.offline import from_lines
from gateway.report.render import document, html
from gateway.rules import check, load_profile

R2 = load_profile("r2")
BOTO = ("Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 "
        "md/pyimpl#CPython m/Z,b,D cfg/retry-mode#standard Botocore/1.40.0")


def test_rows_are_keyed_by_finding_operation_key_agent_bucket_and_count():
    f = Findings()
    for t in (10.0, 11.0, 12.5):
        row = f.add("x-amz-acl", "PutObject", "AK", BOTO, "b", t)
    assert len(f) == 1 and (row.count, row.first, row.last) == (3, 10.0, 12.5)
    # botocore's per-call feature list does not split an application in two
    f.add("x-amz-acl", "PutObject", "AK", BOTO.replace("m/Z,b,D", "m/E,U"), "b", 13.0)
    assert len(f) == 1 and "m/" not in row.user_agent
    f.add("x-amz-acl", "PutObject", "AK", BOTO, "other-bucket", 14.0)
    assert len(f) == 2 and f.since == 10.0


def test_memory_is_bounded_and_nothing_is_lost_from_the_counts():
    f = Findings(max_rows=10)
    for i in range(5000):
        f.add(f"h-{i % 400}", "PutObject", f"key-{i}", "ua", "b", float(i))
    assert len(f) <= 10 + 256 + 1
    assert sum(r.count for r in f.rows.values()) == 5000 and f.folded == 5000 - 10
    assert any(r.access_key_id == OTHER for r in f.rows.values())


def test_state_round_trip_and_merge_keep_counts_times_and_the_first_example():
    a = Findings()
    row = a.add("GetBucketVersioning", "GetBucketVersioning", "AK", "s3fs", "b", 20.0)
    row.example = {"request": "GET /b?versioning"}
    b = Findings.from_state(json.loads(json.dumps(a.to_state())))
    later = Findings()
    row2 = later.add("GetBucketVersioning", "GetBucketVersioning", "AK", "s3fs", "b", 30.0, first=5.0)
    row2.example = {"request": "GET /b?versioning&earlier"}
    b.merge(later)
    (only,) = b.rows.values()
    assert (only.count, only.first, only.last) == (2, 5.0, 30.0)
    assert only.example == {"request": "GET /b?versioning&earlier"}
    with pytest.raises(ValueError):
        Findings.from_state({"version": 2, "rows": []})
    with pytest.raises(ValueError):
        Findings.from_state({"version": 1, "rows": [{"finding": "x"}]})


def _ex(op="PutObject", bucket="b", key="k", payload="UNSIGNED-PAYLOAD"):
    return SimpleNamespace(op=op, bucket=bucket, key=key, features=[],
                           auth=SimpleNamespace(payload_hash=payload))


def test_observers_see_write_rate_nfc_collisions_and_aws_chunked():
    obs = Observers.for_profile(R2)
    first, second, other_key = _ex(), _ex(), _ex(key="k2")
    for ex in (first, second, other_key):
        obs.observe(ex)
    assert first.features == [] and second.features == ["write-rate"] and other_key.features == []
    reads = [_ex(op="GetObject"), _ex(op="GetObject")]
    for ex in reads:
        obs.observe(ex)
    assert [ex.features for ex in reads] == [[], []]                   # reads are not writes
    nfc, nfd, nfc_again = (_ex(op="HeadObject", key=unicodedata.normalize(f, "é.txt")) for f in ("NFC", "NFD", "NFC"))
    for ex in (nfc, nfd, nfc_again):
        obs.observe(ex)
    assert (nfc.features, nfd.features, nfc_again.features) == ([], ["nfc-collision"], [])
    chunked = _ex(op="UploadPart", key="big", payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    obs.observe(chunked)
    assert chunked.features == ["aws-chunked=STREAMING-UNSIGNED-PAYLOAD-TRAILER"]
    # a profile without these limits observes nothing
    assert Observers.for_profile(load_profile("provider-b")) is None


def test_the_write_memory_stays_bounded():
    obs = Observers(1.0, False, False)
    for i in range(50_000):
        obs.observe(_ex(key=f"k{i}"))
    assert len(obs._writes) <= 8192 + 1


def test_auth_findings_name_sigv2_and_long_presigned_urls_with_the_key_they_claim():
    assert auth_findings({"authorization": "AWS AKIDEXAMPLE:c2lnbmF0dXJl"}, "") == (["sigv2"], "AKIDEXAMPLE")
    assert auth_findings({}, "AWSAccessKeyId=AK2&Expires=1&Signature=x") == (["sigv2"], "AK2")
    q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK3%2F20260101%2Fauto%2Fs3%2Faws4_request&X-Amz-Expires="
    assert auth_findings({}, q + "691200&X-Amz-Signature=s") == (["presign-expiry=691200"], "AK3")
    assert auth_findings({}, q + "604800&X-Amz-Signature=s") == ([], None)
    assert auth_findings({"authorization": "AWS4-HMAC-SHA256 Credential=AK/..."}, "") == ([], None)


def _r2_findings() -> set[tuple[str, str]]:
    """Every (finding, operation) the r2 profile's rules produce for a refused operation or header."""
    out = set()
    for op, rules in R2.op_rules.items():
        if not rules.implemented:
            out.add((op, op))
            continue
        for name, _ in rules.refuse_headers:
            out.add((name, op))
        for prefix, _ in rules.refuse_prefixes:
            out.add((prefix + "x", op))
        for name, _ in rules.refuse_query:
            out.add(("?" + name, op))
    return out


def test_every_finding_the_r2_profile_can_produce_says_what_r2_says():
    findings = _r2_findings() | {(f, "PutObject") for f in (
        "key-length", "metadata-size", "object-size", "x-amz-storage-class", "x-amz-checksum-sha512",
        "write-rate", "nfc-collision", "aws-chunked", "sigv2", "presign-expiry")} | {
        ("part-sizes", "CompleteMultipartUpload"), ("part-number", "UploadPart"), ("bucket-name", "CreateBucket")}
    assert len(findings) > 100
    for finding, op in findings:
        d = describe(R2, finding, op)
        assert d["r2_says"] and d["r2_says"]["text"] and d["r2_says"]["anchor"], (finding, op)
        assert d["kind"] in ("refused", "gateway-only", "differs") and d["title"]
    acl = describe(R2, "x-amz-acl", "PutObject")
    assert acl["r2_says"]["where"] == "config/profiles/r2.yaml: operations.PutObject.ACL"
    assert "passing values: private" in acl["r2_says"]["text"]
    assert describe(R2, "GetBucketVersioning", "GetBucketVersioning")["r2_says"]["text"] == \
        "GetBucketVersioning: not implemented"
    assert describe(R2, "aws-chunked", "PutObject")["kind"] == "gateway-only"
    assert describe(R2, "write-rate", "PutObject")["r2_says"]["text"].startswith("Writes to one key: about one per 1 s")


def test_hints_are_valid_data_and_match_by_prefix():
    hints = load_hints()
    assert hint_for(hints, "x-amz-object-lock-mode") is hints.findings["x-amz-object-lock-*"]
    assert hint_for(hints, "x-amz-server-side-encryption-aws-kms-key-id").fixes
    assert hint_for(hints, "no-such-finding").fixes == ()
    for key in hints.findings:
        name = key.rstrip("*")
        assert name in OPERATIONS or name.startswith(("x-amz-", "?")) or name in {
            "aws-chunked", "key-length", "metadata-size", "object-size", "part-sizes", "bucket-name",
            "write-rate", "nfc-collision", "sigv2", "presign-expiry"}, key


def test_the_rules_and_the_report_agree_on_names():
    (v,) = check(R2, "PutObject", {"x-amz-acl": "public-read"}, {}, "b", "k")
    f = Findings()
    f.add(v.name, "PutObject", "AK", "ua", "b", 1.0)
    doc = document(f, R2, mode="audit", source="live", now=2.0)
    (entry,) = doc["findings"]
    assert entry["finding"] == "x-amz-acl" and entry["first_seen"] == "1970-01-01T00:00:01Z"
    assert doc["summary"]["breaking_applications"] == 1 and "1 application" in doc["verdict"]


def test_the_page_escapes_what_clients_sent_and_has_no_script():
    f = Findings()
    row = f.add("x-amz-acl", "PutObject", "<b>AK</b>", '"><script>alert(1)</script>', "b", 1.0)
    row.example = {"request": "PUT /b/<img src=x onerror=alert(1)>", "status": 501}
    page = html(document(f, R2, mode="enforce", source="live")).decode()
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert 'href="#r2-operations.PutObject.ACL"' in page and 'id="r2-operations.PutObject.ACL"' in page
    assert 'href="#fix-x-amz-acl"' in page and 'id="fix-x-amz-acl"' in page
    empty = html(document(Findings(), R2, mode="audit", source="live")).decode()
    assert "No finding" in empty


def test_the_access_log_reader_skips_what_is_not_an_access_record():
    lines = [
        b"r2-gateway is serving",
        b'{"event": "started", "level": "info"}',
        b'{"event":"request","request_id":"R1","access_key_id":"AK","operation":"PutObject","bucket":"b",'
        b'"status":501,"error_code":"NotImplemented","features":["x-amz-acl=public-read"],"user_agent":"ua",'
        b'"timestamp":"2026-01-01T00:00:01.500000Z","request":"PUT /b/k"}',
        b'{"event":"request","operation":"GetObject","features":null,"timestamp":"2026-01-01T00:00:02Z"}',
        b'{"event":"request","operation":"GetBucketTagging","features":null,"bucket":"b",'
        b'"timestamp":"2026-01-01T00:00:03Z"}',
        b'{"event":"request", "operation": "PutObj',                            # a line cut short
    ]
    f, records = from_lines(lines, R2)
    assert records == 3
    rows = {r.finding: r for r in f.rows.values()}
    assert set(rows) == {"x-amz-acl", "GetBucketTagging"}   # an unimplemented operation, from rules-off logs too
    assert rows["x-amz-acl"].example["request"] == "PUT /b/k" and rows["x-amz-acl"].first == 1767225601.5


def test_billing_classes_are_data_about_real_operations(tmp_path):
    classes = load_classes()
    assert classes["PutObject"] == "A" and classes["GetObject"] == "B" and "DeleteObject" not in classes
    b = Billing(classes, max_buckets=2)
    for bucket in ("a", "a", "b", "c", "d"):
        b.count("GetObject", bucket)
    b.count("DeleteObject", "a")
    b.count("GetObjectTagging", "a")
    assert b.counts == {("a", "B"): 2, ("b", "B"): 1, ("(other)", "B"): 2}
    bad = tmp_path / "p.yaml"
    bad.write_text("class_a: [PutObjekt]\n")
    with pytest.raises(ValueError, match="PutObjekt"):
        load_classes(bad)
