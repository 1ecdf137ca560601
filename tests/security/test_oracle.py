"""The operations-log oracle: what RGW executed is exactly what the gateway authorized.

A generated stream of hostile requests (tests/security/hostile.py: a few thousand, pipelined, from
three keys: object-read-write on alpha, object-read-only on beta, admin) goes through the gateway
in front of an RGW whose operations log is on. Then, for every operation RGW executed (its ops log:
operation, bucket, uri, trans_id), there must be one request the gateway authorized and logged (its
access line, joined on ``upstream_request_id`` = RGW's ``trans_id``) with

- the same class of operation (RGW's ``copy_obj`` is the gateway's CopyObject, never a PutObject),
- the same bucket and key (the key read back from RGW's uri),
- a key allowed to touch that bucket, and to write if the operation writes,

and RGW touched the internal bucket only through the gateway's own record operations: reads of the
records of the buckets the request names, writes only for a request that writes. A copy may also
have RGW read its source (the access line's ``copy_source``). Afterwards, on RGW directly:
no object outside beta holds beta's secret, and the internal records are the ones the gateway wrote.

``SECURITY_ORACLE_REQUESTS`` / ``SECURITY_ORACLE_SEED`` change the size and the seed of the stream.
"""
from __future__ import annotations

import os
import re
import time
from urllib.parse import parse_qs

import pytest

from tests.upstreams.opslog import uri_key, uri_target

from . import rawhttp
from .conftest import INTERNAL, PERMISSIONS, World
from .hostile import VAULT, HostileStream

pytestmark = pytest.mark.rgw

N_REQUESTS = int(os.environ.get("SECURITY_ORACLE_REQUESTS", "3000"))
SEED = int(os.environ.get("SECURITY_ORACLE_SEED", "20261204"))
SECRET = b"beta's vault: never anywhere else"

# RGW operation → the gateway operations that may have made it upstream
RGW_OPS: dict[str, frozenset[str]] = {
    "get_obj": frozenset({"GetObject", "HeadObject"}),
    "put_obj": frozenset({"PutObject", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload"}),
    "copy_obj": frozenset({"CopyObject"}),
    "delete_obj": frozenset({"DeleteObject"}),
    "multi_object_delete": frozenset({"DeleteObjects"}),
    "init_multipart": frozenset({"CreateMultipartUpload"}),
    "complete_multipart": frozenset({"CompleteMultipartUpload"}),
    "abort_multipart": frozenset({"AbortMultipartUpload"}),
    "list_multipart": frozenset({"ListParts"}),
    "list_bucket_multiparts": frozenset({"ListMultipartUploads"}),
    "list_bucket": frozenset({"ListObjects", "ListObjectsV2"}),
    "list_buckets": frozenset({"ListBuckets"}),
    "stat_bucket": frozenset({"HeadBucket"}),
    "get_acls": frozenset({"GetObjectAcl", "GetBucketAcl"}),
    "put_acls": frozenset({"PutObjectAcl", "PutBucketAcl"}),
    "get_obj_tags": frozenset({"GetObjectTagging"}),
    "create_bucket": frozenset({"CreateBucket", "CompleteMultipartUpload"}),
    "delete_bucket": frozenset({"DeleteBucket"}),
}
WRITES = frozenset({"put_obj", "copy_obj", "delete_obj", "multi_object_delete", "init_multipart",
                    "complete_multipart", "abort_multipart", "put_acls", "create_bucket", "delete_bucket"})
# the gateway's own requests on the internal bucket (gateway/upstream/records.py): any request may
# have RGW read records there, only a request that writes may have it write (or create the bucket);
# and only records of the buckets the request names (itself, and a copy's source)
INTERNAL_READS = frozenset({"get_obj", "list_bucket"})
INTERNAL_WRITES = frozenset({"put_obj", "delete_obj", "multi_object_delete", "create_bucket"})
GATEWAY_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
                            "CompleteMultipartUpload", "AbortMultipartUpload", "DeleteObject", "DeleteObjects"})
# per bucket: storage classes of objects (c/) and uploads (u/), part sizes (parts/), checksums
# known after a write (checksums/); an upload's checksums are under a hash of its bucket and upload
# id, which the access line does not carry
RECORD_PREFIXES = ("c/{}/", "u/{}/", "parts/{}/", "checksums/{}/")
UPLOAD_RECORD = re.compile(r"uploads/[0-9a-f]{64}/")
COPIES = frozenset({"CopyObject", "UploadPartCopy"})


def _record_name(rec: dict, op: str) -> str | None:
    """The record an internal-bucket operation names: its key, or a listing's prefix."""
    if op == "list_bucket":
        _, _, query = uri_target(rec)
        return parse_qs(query.split("?")[0]).get("prefix", [""])[0]
    return uri_key(rec)


def _internal_violation(rec: dict, op: str, line: dict) -> str | None:
    if op in INTERNAL_WRITES and line["operation"] not in GATEWAY_WRITES:
        return "internal bucket written by a request that writes nothing"
    if op not in INTERNAL_READS | INTERNAL_WRITES:
        return "internal bucket touched"
    name = _record_name(rec, op)
    if name is None:     # create_bucket, a multi-object delete (its names are in its body)
        return None
    buckets = {line["bucket"]} | ({line["copy_source"].split("/", 1)[0]} if line.get("copy_source") else set())
    if UPLOAD_RECORD.match(name) or any(name.startswith(p.format(b)) for p in RECORD_PREFIXES for b in buckets):
        return None
    return f"internal record {name!r} of another bucket"


def _send_stream(world: World, stream: HostileStream, n: int) -> dict[str, int]:
    address = ("127.0.0.1", world.gw.port)
    counts = {"requests": 0, "answered": 0, "malformed": 0, "internal_errors": 0}
    while counts["requests"] < n:
        if stream.rng.random() < 0.03:
            rawhttp.send_bytes(address, stream.malformed(), timeout=3)
            counts["malformed"] += 1
            counts["requests"] += 1
            continue
        batch = [stream.request() for _ in range(stream.rng.choice((1, 1, 2, 3, 5)))]
        answers = rawhttp.exchange(address, batch, timeout=15)
        counts["requests"] += len(batch)
        counts["answered"] += sum(a is not None for a in answers)
        counts["internal_errors"] += sum(a is not None and a.status == 500 for a in answers)
    return counts


def _violations(world: World, records: list[dict], lines: list[dict]) -> list[str]:
    by_upstream_id: dict[str, dict] = {}
    for line in lines:
        for rid in (line.get("upstream_request_id") or "").split(","):
            if rid:
                by_upstream_id[rid] = line
    bad = []
    for rec in records:
        method, path, _ = uri_target(rec)
        op, bucket, key = rec.get("operation"), rec.get("bucket") or None, uri_key(rec)
        where = f"RGW {op} {rec.get('uri')} -> {rec.get('http_status')}"
        line = by_upstream_id.get(rec.get("trans_id", ""))
        if line is None:
            if (method, path) == ("HEAD", "/") or bucket == "r2gw-readiness-probe":
                continue   # the gateway's own probes (dialect, readiness)
            bad.append(f"{where}: no authorized gateway request")
            continue
        gw_op, ak = line["operation"], line["access_key_id"]
        where += f" <- gateway {gw_op} {line['bucket']}/{line['key']} by {ak} ({line['status']})"
        if op not in RGW_OPS:
            bad.append(f"{where}: RGW operation the oracle does not know")
            continue
        if bucket == INTERNAL:
            problem = _internal_violation(rec, op, line)
            if problem:
                bad.append(f"{where}: {problem}")
            continue
        if gw_op in COPIES and op == "get_obj" and line.get("copy_source") == f"{bucket}/{key}":
            pass       # the copy's source, read (its metadata, its class) as the copy was authorized
        else:
            if gw_op not in RGW_OPS[op]:
                bad.append(f"{where}: another operation than the one authorized")
            if bucket != line["bucket"] or (key is not None and key != line["key"]):
                bad.append(f"{where}: another bucket or key than the one authorized")
        perm, _ = PERMISSIONS.get(ak, ("admin-read-write", None))
        allowed = world.allowed_buckets(ak) if ak in PERMISSIONS else None
        if allowed is not None and bucket is not None and bucket not in allowed:
            bad.append(f"{where}: a bucket the key may not touch")
        if op in WRITES and not perm.endswith("read-write"):
            bad.append(f"{where}: a write by a read-only key")
    return bad


def _unrecorded(records: list[dict], lines: list[dict]) -> list[str]:
    """Requests RGW answered with success that its operations log does not show: executed by
    something the oracle cannot see (RGW's admin ops API, Swift), so a violation too. RGW logs no
    ListBuckets, and no request for a bucket that does not exist."""
    seen = {r.get("trans_id") for r in records}
    bad = []
    for line in lines:
        ids = [x for x in (line.get("upstream_request_id") or "").split(",") if x]
        if ids and line["operation"] != "ListBuckets" and (line["upstream_status"] or 500) < 400 \
                and not all(x in seen for x in ids):
            bad.append(f"gateway {line['operation']} {line['method']} {line['bucket']}/{line['key']} -> "
                       f"upstream {line['upstream_status']}: not in RGW's operations log")
    return bad


def test_rgw_executes_only_what_the_gateway_authorized(world, ops_log):
    direct = world.direct()
    direct.put_object(Bucket=world.beta, Key=VAULT, Body=SECRET)
    uploads = {b: direct.create_multipart_upload(Bucket=b, Key="upload.bin")["UploadId"]
               for b in (world.alpha, world.beta)}
    try:   # RGW logs no operation on a bucket that does not exist: the records' bucket is there
        direct.create_bucket(Bucket=INTERNAL)
    except direct.exceptions.BucketAlreadyOwnedByYou:
        pass
    internal_before = _internal_objects(direct)
    time.sleep(0.5)
    earlier = len(world.access_lines())
    ops_log.clear()
    t0 = time.monotonic()
    counts = _send_stream(world, HostileStream(world, SEED, uploads), N_REQUESTS)
    records = ops_log.wait_quiet()
    lines = world.access_lines()[earlier:]
    elapsed = time.monotonic() - t0
    assert not ops_log.errors, ops_log.errors[:3]
    assert counts["internal_errors"] == 0, counts     # refusals are S3 errors, never a 500
    assert len(records) > N_REQUESTS // 10, (len(records), counts)   # the stream did reach RGW
    bad = _violations(world, records, lines) + _unrecorded(records, lines)
    assert not bad, f"{len(bad)} of {len(records)} RGW operations not authorized as executed:\n" + "\n".join(bad[:40])
    # on RGW directly: beta's secret was copied nowhere; the internal records are the gateway's
    for bucket in (world.alpha, "nonexistent-" + world.alpha[-8:], INTERNAL):
        for obj in _objects(direct, bucket):
            body = direct.get_object(Bucket=bucket, Key=obj)["Body"].read()
            assert SECRET not in body, (bucket, obj)
    assert direct.get_object(Bucket=world.beta, Key=VAULT)["Body"].read() == SECRET
    assert _internal_objects(direct) == internal_before
    print(f"oracle: {counts} -> {len(records)} RGW operations checked in {elapsed:.1f}s")


def _objects(client, bucket: str) -> list[str]:
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
    except Exception:
        return []


def _internal_objects(client) -> dict[str, bytes]:
    return {k: client.get_object(Bucket=INTERNAL, Key=k)["Body"].read() for k in _objects(client, INTERNAL)}
