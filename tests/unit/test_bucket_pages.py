"""ListBuckets paging (gateway/extensions/bucket_pages.py): pure functions, both dialects."""
from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.extensions import bucket_pages as bp

BUCKETS = [(f"b{i:03d}", f"2026-01-01T00:00:{i % 60:02d}.000Z") for i in range(25)]


def page_of(query=None, headers=None, buckets=BUCKETS, region="auto", aliases=("", "us-east-1")):
    req = bp.parse(query or {}, headers or {})
    page = bp.paginate(buckets, req, region, aliases)
    body, hdrs = bp.render(page, req, "<Owner/>", region)
    return req, page, "".join(body), hdrs


def walk(first_query, next_query):
    """Follow a listing to its end, as a client of that dialect would."""
    names, query = [], dict(first_query)
    for _ in range(100):
        req, page, xml, hdrs = page_of(query)
        names += [b.name for b in page.buckets]
        token = next_query(xml, hdrs)
        if token is None:
            return names
        query = {**first_query, "continuation-token": token}
    raise AssertionError("no end")


def element(xml, name):
    start = xml.find(f"<{name}>")
    return None if start < 0 else xml[start + len(name) + 2: xml.index(f"</{name}>", start)]


def test_aws_form_pages_with_continuation_token():
    names = walk({"max-buckets": "10"}, lambda xml, h: element(xml, "ContinuationToken"))
    assert names == [n for n, _ in BUCKETS]
    req, page, xml, _ = page_of({"max-buckets": "10"})
    assert req.aws and len(page.buckets) == 10 and element(xml, "ContinuationToken").startswith("~")
    assert "<BucketRegion>auto</BucketRegion>" in xml


def test_aws_token_alone_continues_in_aws_form():
    """boto3's paginator without a page size sends only continuation-token after the first page."""
    _, _, xml, _ = page_of({"max-buckets": "10"})
    token = element(xml, "ContinuationToken")
    req, page, xml2, _ = page_of({"continuation-token": token})
    assert req.aws and req.r2_token is None and page.buckets[0].name == "b010"
    assert element(xml2, "ContinuationToken") is None          # the rest fits in 1000: no next token


def test_r2_form_echoes_the_token_and_pages_with_next():
    names = walk({"max-keys": "7"}, lambda xml, h: h.get("cf-next-continuation-token"))
    assert names == [n for n, _ in BUCKETS]
    _, _, xml, hdrs = page_of({"max-keys": "7"})
    token = hdrs["cf-next-continuation-token"]
    assert element(xml, "NextContinuationToken") == token and not token.startswith("~")
    req, _, xml2, _ = page_of({"max-keys": "7", "continuation-token": token})
    assert not req.aws and element(xml2, "ContinuationToken") == token    # R2: the token supplied
    assert element(xml2, "KeyCount") == "7" and element(xml2, "MaxKeys") == "7"


def test_headers_win_and_cf_form_works_with_headers_only():
    req, page, _, hdrs = page_of({"max-keys": "3"}, {"cf-max-keys": "5", "cf-prefix": "b01"})
    assert req.limit == 5 and [b.name for b in page.buckets] == ["b010", "b011", "b012", "b013", "b014"]
    assert hdrs["cf-is-truncated"] == "true"


def test_bare_request_serves_both_dialects():
    buckets = [(f"n{i:04d}", "d") for i in range(1500)]
    req = bp.parse({}, {})
    page = bp.paginate(buckets, req)
    body = "".join(bp.render(page, req, "", None)[0])
    assert len(page.buckets) == 1000
    aws, r2 = element(body, "ContinuationToken"), element(body, "NextContinuationToken")
    assert aws.startswith("~") and bp.decode_token(aws) == bp.decode_token(r2) == "n0999"


def test_prefix_start_after_and_region():
    _, page, xml, _ = page_of({"prefix": "b01", "start-after": "b013"})
    assert [b.name for b in page.buckets] == ["b014", "b015", "b016", "b017", "b018", "b019"]
    assert "<StartAfter>b013</StartAfter>" in xml and "<Prefix>b01</Prefix>" in xml
    assert len(page_of({"max-buckets": "100", "bucket-region": "us-east-1"})[1].buckets) == 25
    assert page_of({"max-buckets": "100", "bucket-region": "eu-west-1"})[1].buckets == []


@pytest.mark.parametrize("query", [{"max-buckets": "0"}, {"max-buckets": "10001"}, {"max-buckets": "x"},
                                   {"max-keys": "-1"}, {"max-keys": "ten"}, {"continuation-token": "%%%"}])
def test_bad_parameters(query):
    with pytest.raises(S3Error) as e:
        bp.parse(query, {})
    assert e.value.code == "InvalidArgument"


def test_tokens_round_trip_any_name():
    for name in ("a", "bucket-name-63-" + "x" * 48, "ünï"):
        assert bp.decode_token(bp.encode_token(name)) == name
        assert bp.decode_token(bp.encode_token(name, aws=True)) == name
