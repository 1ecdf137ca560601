"""Many stores behind one endpoint (gateway/stores): per-bucket routing, ListBuckets merged over
the stores with R2's and AWS's pagination, CopyObject and UploadPartCopy between stores — each
checked on the stores directly (RGW, a second RGW user, moto)."""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests import s3raw

from .stores_fixture import counter, empty, owned, stores, unique  # noqa: F401  (stores: the fixture)

pytestmark = pytest.mark.rgw
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture
def direct(stores, rgw_s3, moto_s3):
    return {"default": rgw_s3, "moto": moto_s3, "second": stores.second_s3}


# -- routing -----------------------------------------------------------------------------------------

def test_each_bucket_lives_on_the_store_its_rule_names(stores, direct):
    c = stores.gw.client()
    names = {"default": unique("plain"), "moto": unique("onmoto"), "second": unique("onsecond")}
    try:
        for store, name in names.items():
            c.create_bucket(Bucket=name)
            c.put_object(Bucket=name, Key="dir/k", Body=name.encode(), ContentType="text/x-" + store)
            up = c.create_multipart_upload(Bucket=name, Key="mp")
            part = c.upload_part(Bucket=name, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 100)
            c.complete_multipart_upload(Bucket=name, Key="mp", UploadId=up["UploadId"], MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
            c.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "dir/k"})
        for store, name in names.items():
            for other, client in direct.items():
                assert (name in owned(client)) == (other == store), (name, other)
            got = direct[store].get_object(Bucket=name, Key="dir/k")
            assert got["Body"].read() == name.encode() and got["ContentType"] == "text/x-" + store
            assert direct[store].get_object(Bucket=name, Key="mp")["Body"].read() == b"p" * 100
            assert direct[store].get_object(Bucket=name, Key="copy")["Body"].read() == name.encode()
            assert [o["Key"] for o in c.list_objects_v2(Bucket=name)["Contents"]] == ["copy", "dir/k", "mp"]
            c.delete_object(Bucket=name, Key="copy")
            assert "Contents" not in direct[store].list_objects_v2(Bucket=name, Prefix="copy")
        assert counter(stores.gw, "r2gw_upstream_duration_seconds_count", upstream="moto", operation="PutObject") >= 1
        assert counter(stores.gw, "r2gw_upstream_duration_seconds_count", upstream="second", operation="PutObject") >= 1
    finally:
        for store, name in names.items():
            empty(direct[store], name)


def test_readyz_checks_every_store_and_metrics_carry_the_store(stores):
    with urllib.request.urlopen(stores.gw.endpoint + "/readyz") as r:
        assert r.status == 200
    text = urllib.request.urlopen(stores.gw.endpoint + "/metrics").read().decode()
    for store in ("default", "moto", "second"):
        assert f'r2gw_upstream_connections{{upstream="{store}"}}' in text


def test_readyz_fails_when_one_store_is_down(rgw, tmp_path):
    from tests.gateway_process import GatewayProcess, free_port
    import yaml
    cfg = {"upstream": {"endpoint": rgw.endpoint, "access_key_id": rgw.access_key,
                        "secret_access_key": rgw.secret_key},
           "upstreams": {"gone": {"endpoint": f"http://127.0.0.1:{free_port()}", "access_key_id": "a",
                                  "secret_access_key": "b", "timeouts": {"connect": 0.5}}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with GatewayProcess(tmp_path, config_path=tmp_path / "c.yaml", tls=False) as gw:
        try:
            urllib.request.urlopen(gw.endpoint + "/readyz")
            raise AssertionError("ready with a store down")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and b'"gone"' in e.read()


# -- ListBuckets over every store ---------------------------------------------------------------------

def _r2_pages(gw, prefix: str, max_keys: int, headers: bool) -> tuple[list[str], list[int]]:
    names, sizes, token = [], [], None
    while True:
        params = {} if headers else {"prefix": prefix, "max-keys": str(max_keys)}
        extra = {"cf-prefix": prefix, "cf-max-keys": str(max_keys)} if headers else {}
        if token:
            (extra if headers else params)["cf-continuation-token" if headers else "continuation-token"] = token
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(params.items()))
        path = "/" + (f"?{query}" if query else "")
        status, h, body = s3raw.send(gw.endpoint, "GET", path, s3raw.sign(
            "GET", gw.endpoint + path, extra, s3raw.EMPTY, gw.access_key, gw.secret_key))
        assert status == 200, body
        root = ElementTree.fromstring(body)
        page = [b.findtext(f"{NS}Name") for b in root.iter(f"{NS}Bucket")]
        names += page
        sizes.append(len(page))
        token = root.findtext(f"{NS}NextContinuationToken")
        assert (h.get("cf-is-truncated") == "true") == (token is not None)
        if token is None:
            return names, sizes
        assert h["cf-next-continuation-token"] == token


def test_list_buckets_merges_the_stores_paginated_both_ways(stores, direct):
    c = stores.gw.client()
    p = unique("lb")[:12]
    mine = sorted([p + "a", p + "b-onmoto", p + "c-onsecond", p + "d", p + "e-onmoto", p + "f-onsecond",
                   p + "g-sippy"])
    decoys = [("moto", p + "a"), ("default", p + "h-onmoto"), ("moto", p + "g-sippy")]
    try:
        for name in mine:
            c.create_bucket(Bucket=name)
        for store, name in decoys:     # same names on stores their rule does not send them to
            direct[store].create_bucket(Bucket=name)
        for headers in (False, True):
            names, sizes = _r2_pages(stores.gw, p, 3, headers)
            assert names == mine and sizes == [3, 3, 1]
        pages = c.get_paginator("list_buckets").paginate(Prefix=p, PaginationConfig={"PageSize": 2})
        got = [[b["Name"] for b in page["Buckets"]] for page in pages]
        assert got == [mine[0:2], mine[2:4], mine[4:6], mine[6:]]
        assert [b["Name"] for b in c.list_buckets(Prefix=p, MaxBuckets=100)["Buckets"]] == mine
        path = "/?max-buckets=0"
        status, _, body = s3raw.send(stores.gw.endpoint, "GET", path, s3raw.sign(
            "GET", stores.gw.endpoint + path, {}, s3raw.EMPTY, stores.gw.access_key, stores.gw.secret_key))
        assert status == 400 and b"InvalidArgument" in body
    finally:
        for name in mine:
            empty(direct[_store_of(name)], name)
        for store, name in decoys:
            empty(direct[store], name)


def _store_of(name: str) -> str:
    return "moto" if name.endswith("-onmoto") else "second" if name.endswith("-onsecond") else "default"


# -- copies between stores ---------------------------------------------------------------------------

@pytest.fixture
def pair(stores, direct):
    """(source bucket on moto, destination bucket on RGW) made through the gateway."""
    src, dst = unique("onmoto"), unique("plain")
    c = stores.gw.client()
    c.create_bucket(Bucket=src)
    c.create_bucket(Bucket=dst)
    yield c, src, dst
    empty(direct["moto"], src)
    empty(direct["default"], dst)


def user_meta(meta: dict) -> dict:
    """An object's metadata read directly upstream, without the gateway's own records (r2gw-*)."""
    return {k: v for k, v in meta.items() if not k.startswith("r2gw-")}


META = {"ContentType": "text/x-test", "CacheControl": "max-age=7", "ContentDisposition": "attachment",
        "ContentLanguage": "fr", "Metadata": {"colour": "blue"}}


def test_copy_object_between_stores_keeps_s3_semantics(stores, direct, pair):
    c, src, dst = pair
    data = os.urandom(300_000)
    etag = c.put_object(Bucket=src, Key="ü k", Body=data, **META)["ETag"]
    out = c.copy_object(Bucket=dst, Key="copy", CopySource={"Bucket": src, "Key": "ü k"})
    got = direct["default"].get_object(Bucket=dst, Key="copy")
    assert got["Body"].read() == data and out["CopyObjectResult"]["ETag"] == etag
    for name, value in META.items():
        assert (user_meta(got[name]) if name == "Metadata" else got[name]) == value
    c.copy_object(Bucket=dst, Key="replaced", CopySource={"Bucket": src, "Key": "ü k"},
                  MetadataDirective="REPLACE", ContentType="a/b", Metadata={"n": "1"})
    head = direct["default"].head_object(Bucket=dst, Key="replaced")
    assert head["ContentType"] == "a/b" and user_meta(head["Metadata"]) == {"n": "1"} and "CacheControl" not in head
    c.copy_object(Bucket=dst, Key="merged", CopySource={"Bucket": src, "Key": "ü k"},
                  MetadataDirective="MERGE", Metadata={"shape": "round"})
    assert user_meta(direct["default"].head_object(Bucket=dst, Key="merged")["Metadata"]) == \
        {"colour": "blue", "shape": "round"}
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=dst, Key="cond", CopySource={"Bucket": src, "Key": "ü k"}, CopySourceIfMatch='"00"')
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=dst, Key="none", CopySource={"Bucket": src, "Key": "missing"})
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert "Contents" not in direct["default"].list_objects_v2(Bucket=dst, Prefix="cond")
    # and the other way, RGW to moto
    c.copy_object(Bucket=src, Key="back", CopySource={"Bucket": dst, "Key": "replaced"})
    assert direct["moto"].get_object(Bucket=src, Key="back")["Body"].read() == data
    assert counter(stores.gw, "r2gw_requests_total", operation="CopyObject", status="200") >= 4


def test_large_copy_between_stores_is_multipart_and_whole(stores, direct, pair):
    c, src, dst = pair
    data = os.urandom(70 * 1024 * 1024)   # above the 64 MiB multipart threshold
    c.put_object(Bucket=src, Key="big", Body=data)
    c.copy_object(Bucket=dst, Key="big", CopySource={"Bucket": src, "Key": "big"})
    got = direct["default"].get_object(Bucket=dst, Key="big")
    assert got["ContentLength"] == len(data) and got["ETag"].endswith('-5"')   # 16 MiB parts
    assert hashlib.md5(got["Body"].read()).digest() == hashlib.md5(data).digest()


def test_upload_part_copy_between_stores(stores, direct, pair):
    c, src, dst = pair
    data = os.urandom(12 * 1024 * 1024)
    c.put_object(Bucket=src, Key="src", Body=data)
    up = c.create_multipart_upload(Bucket=dst, Key="assembled")
    half = 6 * 1024 * 1024
    parts = []
    for n, (a, b) in enumerate(((0, half - 1), (half, len(data) - 1)), 1):
        r = c.upload_part_copy(Bucket=dst, Key="assembled", UploadId=up["UploadId"], PartNumber=n,
                               CopySource={"Bucket": src, "Key": "src"}, CopySourceRange=f"bytes={a}-{b}")
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    with pytest.raises(ClientError) as e:
        c.upload_part_copy(Bucket=dst, Key="assembled", UploadId=up["UploadId"], PartNumber=3,
                           CopySource={"Bucket": src, "Key": "src"}, CopySourceIfMatch='"00"')
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    c.complete_multipart_upload(Bucket=dst, Key="assembled", UploadId=up["UploadId"],
                                MultipartUpload={"Parts": parts})
    assert direct["default"].get_object(Bucket=dst, Key="assembled")["Body"].read() == data
