"""R2's newer rules on keys, as the profile says: keys Unicode-normalised to NFC on the way in (the r2
profile; r2-2022 keeps keys as sent), and the optional per-key write limit (429 TooManyRequests, off
unless ``limits.key_write_limit`` is on). Through boto3, on Ceph RGW and the embedded upstream, with
RGW's own keys checked directly."""
from __future__ import annotations

import time
import unicodedata
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.gateway_process import GatewayProcess

NFC = "caf\u00e9/r\u00e9sum\u00e9.txt"        # é as one code point
NFD = unicodedata.normalize("NFD", NFC)       # e + U+0301
assert NFC != NFD


def _bucket(client):
    name = "kr-" + uuid.uuid4().hex[:12]
    client.create_bucket(Bucket=name)
    return name


def _drop(client, name):
    for o in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=o["Key"])
    for u in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def b(c):
    name = _bucket(c)
    yield name
    _drop(c, name)


def keys(client, bucket, **kw):
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket, **kw).get("Contents", [])]


def test_two_spellings_name_one_object(c, b):
    c.put_object(Bucket=b, Key=NFD, Body=b"one")
    assert c.get_object(Bucket=b, Key=NFC)["Body"].read() == b"one"
    c.put_object(Bucket=b, Key=NFC, Body=b"two")          # the same object, overwritten
    assert c.get_object(Bucket=b, Key=NFD)["Body"].read() == b"two"
    assert c.head_object(Bucket=b, Key=NFD)["ContentLength"] == 3
    assert keys(c, b) == [NFC]                             # stored in NFC


def test_upstream_holds_the_nfc_key(gateway, rgw_s3):
    s3 = gateway.client()
    name = _bucket(s3)
    try:
        s3.put_object(Bucket=name, Key=NFD, Body=b"x")
        assert keys(rgw_s3, name) == [NFC]
        # RGW itself keeps both spellings apart: the gateway is what makes them one
        rgw_s3.put_object(Bucket=name, Key=NFD, Body=b"raw")
        assert sorted(keys(rgw_s3, name)) == sorted([NFC, NFD])
        rgw_s3.delete_object(Bucket=name, Key=NFD)
    finally:
        _drop(s3, name)


def test_copy_source_delete_objects_and_multipart(c, b):
    c.put_object(Bucket=b, Key=NFC, Body=b"src")
    c.copy_object(Bucket=b, Key="copy-" + NFD, CopySource={"Bucket": b, "Key": NFD})
    assert c.get_object(Bucket=b, Key="copy-" + NFC)["Body"].read() == b"src"
    up = c.create_multipart_upload(Bucket=b, Key="mp-" + NFD)["UploadId"]
    etag = c.upload_part(Bucket=b, Key="mp-" + NFC, UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    c.complete_multipart_upload(Bucket=b, Key="mp-" + NFD, UploadId=up,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert c.get_object(Bucket=b, Key="mp-" + NFC)["Body"].read() == b"part"
    assert sorted(keys(c, b)) == sorted([NFC, "copy-" + NFC, "mp-" + NFC])
    out = c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": NFD}, {"Key": "copy-" + NFD}]})
    assert not out.get("Errors")
    assert keys(c, b) == ["mp-" + NFC]


def test_listing_prefix_and_start_after(c, b):
    for k in (NFC, NFC + "2", "z"):
        c.put_object(Bucket=b, Key=k, Body=b"x")
    prefix_nfd = unicodedata.normalize("NFD", "caf\u00e9/")
    assert keys(c, b, Prefix=prefix_nfd) == [NFC, NFC + "2"]
    assert keys(c, b, StartAfter=NFD) == [NFC + "2", "z"]
    assert [o["Key"] for o in c.list_objects(Bucket=b, Prefix=prefix_nfd, Marker=NFD)["Contents"]] == [NFC + "2"]
    # presigned URLs normalise too (the query is re-signed upstream)
    url = c.generate_presigned_url("list_objects_v2", Params={"Bucket": b, "Prefix": prefix_nfd})
    import urllib.request
    with urllib.request.urlopen(url) as r:
        body = r.read()
    assert body.count(b"<Key>") == 2


def test_ascii_keys_are_untouched(c, b):
    odd = "a+b c%2F~!*'()/..//x"
    c.put_object(Bucket=b, Key=odd, Body=b"x")
    assert keys(c, b) == [odd] and c.get_object(Bucket=b, Key=odd)["Body"].read() == b"x"


# -- profiles that say otherwise, and the write limit --------------------------------------------

@pytest.fixture(scope="module")
def gw_2022(rgw, tmp_path_factory):
    """r2-2022 (no NFC, no write limit) with the write limit switched on: nothing to enforce."""
    g = GatewayProcess(tmp_path_factory.mktemp("gw-2022"), upstream=rgw, tls=False, name="gateway-2022",
                       env={"R2GW_PROFILE": "r2-2022", "R2GW_LIMITS_KEY_WRITE_LIMIT": "true"})
    g.start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def gw_limited(rgw, tmp_path_factory):
    g = GatewayProcess(tmp_path_factory.mktemp("gw-limit"), upstream=rgw, tls=False, name="gateway-limit",
                       env={"R2GW_LIMITS_KEY_WRITE_LIMIT": "true"})
    g.start()
    yield g
    g.stop()


def test_r2_2022_keeps_keys_as_sent_and_has_no_write_limit(gw_2022, rgw_s3):
    s3 = gw_2022.client(request_checksum_calculation="when_required")  # no checksums in 2022
    name = _bucket(s3)
    try:
        s3.put_object(Bucket=name, Key=NFD, Body=b"d")
        s3.put_object(Bucket=name, Key=NFC, Body=b"c")
        assert sorted(keys(rgw_s3, name)) == sorted([NFC, NFD])
        for i in range(3):                       # no limit in this profile, whatever the setting
            s3.put_object(Bucket=name, Key="hot", Body=str(i).encode())
    finally:
        _drop(rgw_s3, name)


def test_write_limit_is_off_by_default(c, b):
    for i in range(3):
        c.put_object(Bucket=b, Key="hot", Body=str(i).encode())


def test_second_write_within_a_second_is_too_many_requests(gw_limited, rgw_s3):
    s3 = gw_limited.client()
    name = _bucket(s3)
    try:
        s3.put_object(Bucket=name, Key="hot", Body=b"first")
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=name, Key="hot", Body=b"second")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert e.value.response["Error"]["Code"] == "TooManyRequests"
        assert rgw_s3.get_object(Bucket=name, Key="hot")["Body"].read() == b"first"   # never sent upstream
        # the other spelling is the same key; other keys and reads are not limited
        with pytest.raises(ClientError):
            s3.copy_object(Bucket=name, Key="hot", CopySource={"Bucket": name, "Key": "hot"},
                           MetadataDirective="REPLACE")
        s3.put_object(Bucket=name, Key=NFD, Body=b"x")
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=name, Key=NFC, Body=b"y")
        assert e.value.response["Error"]["Code"] == "TooManyRequests"
        s3.put_object(Bucket=name, Key="cold", Body=b"c")
        assert s3.get_object(Bucket=name, Key="hot")["Body"].read() == b"first"
        time.sleep(1.1)
        s3.put_object(Bucket=name, Key="hot", Body=b"later")
        assert rgw_s3.get_object(Bucket=name, Key="hot")["Body"].read() == b"later"
    finally:
        _drop(rgw_s3, name)
