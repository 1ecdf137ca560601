"""The everyday workflow every real client runs through the gateway, and its checks.

A *driver* (one per client, in that client's test module) does each step the way a user of that
client would; ``everyday`` runs the steps in order and checks each one on Ceph RGW directly (the
``rgw_s3`` client), never through the gateway, so a step the gateway only pretends to do fails.
At the end the gateway's access log for the test's bucket is checked too: the client must really
have used a multipart upload, and the gateway must have answered no request with a 5xx (clients
retry those silently).
"""
from __future__ import annotations

import hashlib
import json
import re
import ssl
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Protocol

from botocore.exceptions import ClientError

SMALL_KEY = "docs/hello world.txt"      # a space: every client must encode it its own way
LARGE_KEY = "media/large.bin"
COPY_KEY = "copies/hello world.txt"
LARGE_COPY_KEY = "copies/large.bin"
# put straight into RGW before the listing step
SEEDED = {
    "docs/notes.md": b"# notes\n",
    "docs/caf\u00e9 \u2615.txt": b"unicode key\n",
    "docs/sub/a.txt": b"a\n",
    "docs/sub/b.txt": b"b\n",
    "docsier/x.txt": b"not under docs/\n",
    "top.txt": b"top\n",
}
LIST_PREFIX, LIST_DELIMITER = "docs/", "/"
EXPECTED_LISTING = (sorted([SMALL_KEY, "docs/notes.md", "docs/caf\u00e9 \u2615.txt"]), ["docs/sub/"])

MULTIPART_ETAG = re.compile(r'^"?[0-9a-f]{32}-(\d+)"?$')


class Driver(Protocol):
    name: str

    def make_bucket(self, bucket: str) -> None: ...
    def list_buckets(self) -> list[str]: ...
    def upload(self, bucket: str, key: str, path: Path, *, large: bool) -> None: ...
    def list(self, bucket: str, prefix: str, delimiter: str) -> tuple[list[str], list[str]]: ...
    def download(self, bucket: str, key: str, dest: Path) -> None: ...
    def copy(self, bucket: str, src: str, dst: str) -> None: ...
    def presign_get(self, bucket: str, key: str) -> str | None: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def delete_many(self, bucket: str, keys: list[str]) -> None: ...
    def remove_bucket(self, bucket: str) -> None: ...


def new_bucket(client: str) -> str:
    return f"cl-{client}-{uuid.uuid4().hex[:8]}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- what RGW itself holds --------------------------------------------------------------------------

def rgw_bytes(rgw, bucket: str, key: str) -> bytes:
    return rgw.get_object(Bucket=bucket, Key=key)["Body"].read()


def rgw_sha256(rgw, bucket: str, key: str) -> str:
    h = hashlib.sha256()
    for block in rgw.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        h.update(block)
    return h.hexdigest()


def rgw_keys(rgw, bucket: str, prefix: str = "") -> list[str]:
    keys = []
    for page in rgw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def rgw_listing(rgw, bucket: str, prefix: str, delimiter: str) -> tuple[list[str], list[str]]:
    keys, prefixes = [], []
    for page in rgw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                              Delimiter=delimiter):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return sorted(keys), sorted(prefixes)


def rgw_bucket_exists(rgw, bucket: str) -> bool:
    try:
        rgw.head_bucket(Bucket=bucket)
        return True
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


def cleanup(rgw, bucket: str) -> None:
    """Remove what a failed run left behind, directly on RGW."""
    try:
        if not rgw_bucket_exists(rgw, bucket):
            return
        for up in rgw.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            rgw.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
        for key in rgw_keys(rgw, bucket):
            rgw.delete_object(Bucket=bucket, Key=key)
        rgw.delete_bucket(Bucket=bucket)
    except Exception:
        pass


# -- what the gateway saw ------------------------------------------------------------------------

def access_log(gateway, bucket: str) -> list[dict]:
    """The gateway's access-log lines for one bucket (access lines leave in batches: wait until
    the log has stopped growing)."""
    path = Path(gateway.log_path)
    size, deadline = -1, time.monotonic() + 3
    while time.monotonic() < deadline:
        now = path.stat().st_size
        if now == size:
            break
        size = now
        time.sleep(0.3)
    out = []
    for line in Path(gateway.log_path).read_text(errors="replace").splitlines():
        if '"request"' not in line or bucket not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "request" and entry.get("bucket") == bucket:
            out.append(entry)
    return out


def fetch(url: str, ca_bundle: str | None) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=ca_bundle) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=30, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# -- the workflow ---------------------------------------------------------------------------------

def everyday(driver: Driver, *, rgw, gateway, payloads, tmp_path: Path, bucket: str,
             ca_bundle: str | None = None, extras=None,
             tolerated_501: frozenset[str] = frozenset()) -> list[dict]:
    """Run the everyday workflow with ``driver``; returns the gateway's access log for the bucket.

    ``extras(bucket)`` (optional) runs client-specific steps after the presigned GET, while the
    bucket still holds the small and large objects and their copies. ``tolerated_501`` names the
    operations R2 does not implement that the client is known to try and to shrug off (the
    gateway answers them 501 NotImplemented, as R2 does); any other 501 fails the test.
    """
    # 1. create a bucket (and see it among the client's buckets)
    driver.make_bucket(bucket)
    assert rgw_bucket_exists(rgw, bucket), "the bucket was not created upstream"
    assert bucket in driver.list_buckets()

    # 2. upload a small object, and a large one the client splits into a multipart upload
    driver.upload(bucket, SMALL_KEY, payloads.small, large=False)
    assert rgw_bytes(rgw, bucket, SMALL_KEY) == payloads.small_bytes
    driver.upload(bucket, LARGE_KEY, payloads.large, large=True)
    head = rgw.head_object(Bucket=bucket, Key=LARGE_KEY)
    assert head["ContentLength"] == payloads.large.stat().st_size
    m = MULTIPART_ETAG.match(head["ETag"])
    assert m and int(m.group(1)) >= 2, f"not stored as a multipart upload: ETag {head['ETag']}"
    assert rgw_sha256(rgw, bucket, LARGE_KEY) == payloads.large_sha256, "large object corrupted"
    assert head.get("ContentEncoding") in (None, ""), "aws-chunked leaked into Content-Encoding"

    # 3. list with a prefix and a delimiter (against what RGW lists, and what we know it holds)
    for key, body in SEEDED.items():
        rgw.put_object(Bucket=bucket, Key=key, Body=body)
    keys, prefixes = driver.list(bucket, LIST_PREFIX, LIST_DELIMITER)
    assert (sorted(keys), sorted(prefixes)) == rgw_listing(rgw, bucket, LIST_PREFIX, LIST_DELIMITER)
    assert (sorted(keys), sorted(prefixes)) == EXPECTED_LISTING

    # 4. download both and compare bytes
    small_copy, large_copy = tmp_path / "got-small.txt", tmp_path / "got-large.bin"
    driver.download(bucket, SMALL_KEY, small_copy)
    assert small_copy.read_bytes() == payloads.small_bytes
    driver.download(bucket, LARGE_KEY, large_copy)
    assert large_copy.stat().st_size == payloads.large.stat().st_size
    assert sha256_file(large_copy) == payloads.large_sha256, "large download corrupted"
    large_copy.unlink()

    # 5. copy (server side), the small object and the large one
    driver.copy(bucket, SMALL_KEY, COPY_KEY)
    assert rgw_bytes(rgw, bucket, COPY_KEY) == payloads.small_bytes
    driver.copy(bucket, LARGE_KEY, LARGE_COPY_KEY)
    assert rgw_sha256(rgw, bucket, LARGE_COPY_KEY) == payloads.large_sha256

    # 6. a presigned GET, fetched by a plain HTTP client
    url = driver.presign_get(bucket, SMALL_KEY)
    if url is not None:
        assert "X-Amz-Signature=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url, url
        status, body = fetch(url, ca_bundle)
        assert status == 200, (status, body[:500])
        assert body == payloads.small_bytes

    if extras is not None:
        extras(bucket)

    # 7. delete one, then many
    driver.delete(bucket, COPY_KEY)
    remaining = rgw_keys(rgw, bucket)
    assert COPY_KEY not in remaining and SMALL_KEY in remaining
    driver.delete_many(bucket, remaining)
    assert rgw_keys(rgw, bucket) == [], "objects left after deleting many"

    # 8. remove the bucket
    driver.remove_bucket(bucket)
    assert not rgw_bucket_exists(rgw, bucket), "the bucket still exists upstream"

    # what the gateway saw
    log = access_log(gateway, bucket)
    ops = {e["operation"] for e in log}
    assert {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"} <= ops, sorted(ops)
    refused = {e["operation"] for e in log if e.get("status") == 501}
    assert refused <= tolerated_501, f"the gateway refused as not implemented: {sorted(refused)}"
    errors = [e for e in log if int(e.get("status") or 0) >= 500 and e.get("status") != 501]
    assert not errors, f"the gateway answered {len(errors)} request(s) with 5xx: {errors[:3]}"
    return log
