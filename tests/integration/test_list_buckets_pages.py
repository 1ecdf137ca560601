"""ListBuckets in AWS's 2024 form (max-buckets, continuation-token, prefix; ContinuationToken and
Prefix in the answer) as boto3 sends and pages it, beside R2's form, on Ceph RGW and on the
embedded upstream. The upstream itself has no pagination: its bucket list is checked directly."""
from __future__ import annotations

import uuid

import pytest

from tests import s3raw


@pytest.fixture
def names(c):
    prefix = "lp" + uuid.uuid4().hex[:6] + "-"
    made = [f"{prefix}{i}" for i in range(7)]
    for n in made:
        c.create_bucket(Bucket=n)
    yield made
    for n in made:
        c.delete_bucket(Bucket=n)


def test_max_buckets_pages_with_continuation_token(c, names):
    prefix = names[0][:-1]
    first = c.list_buckets(MaxBuckets=3, Prefix=prefix)
    assert [b["Name"] for b in first["Buckets"]] == names[:3]
    assert first["Prefix"] == prefix and first["ContinuationToken"]
    assert all(b.get("BucketRegion") == "auto" for b in first["Buckets"])
    second = c.list_buckets(MaxBuckets=3, Prefix=prefix, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in second["Buckets"]] == names[3:6]
    third = c.list_buckets(MaxBuckets=3, Prefix=prefix, ContinuationToken=second["ContinuationToken"])
    assert [b["Name"] for b in third["Buckets"]] == names[6:] and "ContinuationToken" not in third


def test_boto3_paginator_pages_correctly(c, names):
    prefix = names[0][:-1]
    pages = list(c.get_paginator("list_buckets").paginate(Prefix=prefix, PaginationConfig={"PageSize": 2}))
    assert [len(p["Buckets"]) for p in pages] == [2, 2, 2, 1]
    assert [b["Name"] for p in pages for b in p["Buckets"]] == names
    # and the paginator's own limit: MaxItems across pages
    limited = c.get_paginator("list_buckets").paginate(
        Prefix=prefix, PaginationConfig={"PageSize": 2, "MaxItems": 5}).build_full_result()
    assert [b["Name"] for b in limited["Buckets"]] == names[:5]


def test_r2_form_still_pages_with_its_own_elements(gw, c, names):
    prefix = names[0][:-1]
    seen, token = [], None
    for _ in range(10):
        h = {"cf-max-keys": "3", "cf-prefix": prefix, **({"cf-continuation-token": token} if token else {})}
        status, headers, body = s3raw.send(gw.endpoint, "GET", "/", s3raw.sign(
            "GET", gw.endpoint + "/", h, s3raw.EMPTY, gw.access_key, gw.secret_key))
        assert status == 200, body
        assert b"<BucketRegion>" not in body          # R2's answer, as R2 gives it
        if token:
            assert f"<ContinuationToken>{token}</ContinuationToken>".encode() in body   # R2: echoed
        seen += [n for n in names if f"<Name>{n}</Name>".encode() in body]
        if headers["cf-is-truncated"] != "true":
            break
        token = headers["cf-next-continuation-token"]
    assert seen == names


def test_bad_max_buckets_is_invalid_argument(gw):
    for bad in ("0", "10001", "x"):
        url = f"{gw.endpoint}/?max-buckets={bad}"
        status, _, body = s3raw.send(gw.endpoint, "GET", f"/?max-buckets={bad}", s3raw.sign(
            "GET", url, {}, s3raw.EMPTY, gw.access_key, gw.secret_key))
        assert status == 400 and b"<Code>InvalidArgument</Code>" in body, (bad, body)


def test_upstream_has_no_pagination_of_its_own(rgw_s3, gateway):
    """RGW answers every bucket whatever max-buckets says: the pages above are the gateway's."""
    s3 = gateway.client()
    prefix = "lq" + uuid.uuid4().hex[:6] + "-"
    made = [f"{prefix}{i}" for i in range(3)]
    for n in made:
        s3.create_bucket(Bucket=n)
    try:
        direct = rgw_s3.list_buckets(MaxBuckets=1, Prefix=prefix)
        assert set(made) <= {b["Name"] for b in direct["Buckets"]} and "ContinuationToken" not in direct
        assert len(s3.list_buckets(MaxBuckets=1, Prefix=prefix)["Buckets"]) == 1
    finally:
        for n in made:
            s3.delete_bucket(Bucket=n)
