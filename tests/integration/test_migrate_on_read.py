"""Migration on read (R2's Sippy on any store, gateway/stores/on_read.py) and ``list: merged``
between two real stores, checked on both stores directly: the first GET copies (user and system
metadata with it), the next is served by the destination, HEAD copies nothing, a Range GET and a
client that hangs up leave nothing partial (the copy completes in the background, or not at all
without a queue), concurrent first GETs from three gateway processes write the object once."""
from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time

import pytest
import yaml
from botocore.exceptions import ClientError

from tests import s3raw
from tests.gateway_process import GatewayProcess

from .stores_fixture import counter, empty, stores, unique  # noqa: F401  (stores: the fixture)

pytestmark = pytest.mark.rgw

META = {"ContentType": "image/x-test", "CacheControl": "max-age=60", "ContentDisposition": "inline; name=a",
        "ContentEncoding": "identity", "ContentLanguage": "de", "Expires": "Wed, 21 Oct 2037 07:28:00 GMT",
        "Metadata": {"origin": "old-store", "n": "42"}}


def wait_for(fn, timeout: float = 15.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def present(client, bucket: str, key: str):
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


@pytest.fixture(params=["moto->rgw", "rgw->moto"])
def mig(request, stores, rgw_s3, moto_s3):
    """(gateway client, bucket, source client, destination client, destination store name)."""
    c = stores.gw.client()
    if request.param == "moto->rgw":
        bucket, source, dest, dest_name = unique("sippy"), moto_s3, rgw_s3, "default"
    else:
        bucket, source, dest, dest_name = unique("tomoto"), rgw_s3, moto_s3, "moto"
    c.create_bucket(Bucket=bucket)          # on the destination (its rule's store)
    source.create_bucket(Bucket=bucket)     # the source: same name on the other store
    yield c, bucket, source, dest, dest_name
    empty(dest, bucket)
    empty(source, bucket)


def test_first_get_copies_with_metadata_then_the_destination_serves(stores, mig):
    c, bucket, source, dest, _ = mig
    data = os.urandom(3 * 1024 * 1024 + 17)
    source.put_object(Bucket=bucket, Key="photos/ü 1.jpg", Body=data, **META)
    assert present(dest, bucket, "photos/ü 1.jpg") is None
    got = c.get_object(Bucket=bucket, Key="photos/ü 1.jpg")
    assert got["Body"].read() == data
    for name, value in META.items():
        assert got[name if name != "Expires" else "ExpiresString"] == value, name
    copied = wait_for(lambda: present(dest, bucket, "photos/ü 1.jpg"))
    assert copied, "not copied into the destination"
    for name, value in META.items():
        assert copied[name if name != "Expires" else "ExpiresString"] == value, name
    assert dest.get_object(Bucket=bucket, Key="photos/ü 1.jpg")["Body"].read() == data
    assert wait_for(lambda: counter(stores.gw, "r2gw_migrated_objects_total", bucket=bucket, result="copied") == 1)
    assert counter(stores.gw, "r2gw_migrated_bytes_total", bucket=bucket, result="copied") == len(data)
    # the source's copy is gone: the destination serves it now
    source.delete_object(Bucket=bucket, Key="photos/ü 1.jpg")
    assert c.get_object(Bucket=bucket, Key="photos/ü 1.jpg")["Body"].read() == data
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=bucket, Key="nowhere")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    assert c.get_object(Bucket=bucket, Key="photos/ü 1.jpg")["ContentType"] == META["ContentType"]
    assert counter(stores.gw, "r2gw_migrated_objects_total", bucket=bucket) == 1


def test_head_falls_through_to_the_source_and_copies_nothing(stores, mig):
    c, bucket, source, dest, _ = mig
    source.put_object(Bucket=bucket, Key="k", Body=b"x" * 1000, **META)
    head = c.head_object(Bucket=bucket, Key="k")
    assert head["ContentLength"] == 1000 and head["Metadata"] == META["Metadata"]
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=bucket, Key="nowhere")
    assert e.value.response["Error"]["Code"] == "404"
    time.sleep(1.0)
    assert present(dest, bucket, "k") is None
    assert counter(stores.gw, "r2gw_migrated_objects_total", bucket=bucket) == 0


def test_put_and_delete_act_on_the_destination(stores, mig):
    c, bucket, source, dest, _ = mig
    source.put_object(Bucket=bucket, Key="k", Body=b"old")
    c.put_object(Bucket=bucket, Key="k", Body=b"new")
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"new"
    assert source.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"
    c.delete_object(Bucket=bucket, Key="k")
    assert present(dest, bucket, "k") is None and present(source, bucket, "k")
    # still on the source: the next read brings it back (delete there too to delete it for good)
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"


def test_range_get_serves_the_range_and_copies_the_whole_object_in_the_background(stores, mig):
    c, bucket, source, dest, _ = mig
    data = os.urandom(2 * 1024 * 1024)
    source.put_object(Bucket=bucket, Key="r", Body=data, ContentType="a/b")
    got = c.get_object(Bucket=bucket, Key="r", Range="bytes=100-199")
    assert got["Body"].read() == data[100:200] and got["ContentRange"].endswith(f"/{len(data)}")
    copied = wait_for(lambda: present(dest, bucket, "r"))
    assert copied and copied["ContentLength"] == len(data) and copied["ContentType"] == "a/b"
    assert dest.get_object(Bucket=bucket, Key="r")["Body"].read() == data


def _hang_up_after(gw, bucket: str, key: str, read: int) -> None:
    path = f"/{bucket}/{key}"
    headers = s3raw.sign("GET", gw.endpoint + path, {}, s3raw.EMPTY, gw.access_key, gw.secret_key)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200
    resp.read(read)
    conn.sock.close()     # unread data: the kernel resets the connection
    conn.close()


def test_a_client_hanging_up_leaves_nothing_partial_and_the_copy_completes(stores, mig):
    c, bucket, source, dest, _ = mig
    data = os.urandom(40 * 1024 * 1024)
    source.put_object(Bucket=bucket, Key="big", Body=data)
    _hang_up_after(stores.gw, bucket, "big", 1024 * 1024)
    sizes = set()

    def whole():
        head = present(dest, bucket, "big")
        if head is not None:
            sizes.add(head["ContentLength"])
        return head is not None

    assert wait_for(whole, timeout=60), "the background copy did not complete"
    assert sizes == {len(data)}, f"a partial object was visible: {sizes}"
    assert hashlib.md5(dest.get_object(Bucket=bucket, Key="big")["Body"].read()).digest() == hashlib.md5(data).digest()


def test_without_a_queue_a_hung_up_read_stores_nothing(stores, rgw, moto_upstream, moto_s3, rgw_s3, tmp_path):
    cfg = yaml.safe_load(stores.config_path.read_text())
    cfg["migrate_on_read"] = {"queue": 0}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    bucket = unique("sippy")
    data = os.urandom(24 * 1024 * 1024)
    with GatewayProcess(tmp_path, config_path=tmp_path / "c.yaml", tls=False) as gw:
        try:
            gw.client().create_bucket(Bucket=bucket)
            moto_s3.create_bucket(Bucket=bucket)
            moto_s3.put_object(Bucket=bucket, Key="big", Body=data)
            _hang_up_after(gw, bucket, "big", 256 * 1024)
            time.sleep(3)
            assert present(rgw_s3, bucket, "big") is None
            assert not rgw_s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
            # a read to the end copies it
            assert gw.client().get_object(Bucket=bucket, Key="big")["Body"].read() == data
            assert wait_for(lambda: present(rgw_s3, bucket, "big"))["ContentLength"] == len(data)
        finally:
            empty(rgw_s3, bucket)
            empty(moto_s3, bucket)


def test_a_destination_that_falls_behind_gets_the_copy_in_the_background(stores, rgw, moto_s3, rgw_s3, tmp_path):
    """The reader never waits: a destination slower than the buffer allows is cut off, and the
    object is copied again in the background (one accepted write, whole)."""
    from .recording_proxy import RecordingProxy
    slow = RecordingProxy(rgw.endpoint, upload_bytes_per_s=4 * 1024 * 1024).start()
    cfg = yaml.safe_load(stores.config_path.read_text())
    cfg["upstream"]["endpoint"] = slow.endpoint
    cfg["migrate_on_read"] = {"inline_buffer_bytes": 1024 * 1024}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    bucket = unique("sippy")
    data = os.urandom(16 * 1024 * 1024)
    try:
        with GatewayProcess(tmp_path, config_path=tmp_path / "c.yaml", tls=False) as gw:
            try:
                gw.client().create_bucket(Bucket=bucket)
                moto_s3.create_bucket(Bucket=bucket)
                moto_s3.put_object(Bucket=bucket, Key="big", Body=data)
                t0 = time.monotonic()
                assert gw.client().get_object(Bucket=bucket, Key="big")["Body"].read() == data
                assert time.monotonic() - t0 < 3, "the reader waited for the slow destination"
                assert counter(gw, "r2gw_migration_handoffs_total", reason="destination_behind") == 1
                assert wait_for(lambda: present(rgw_s3, bucket, "big"), timeout=60)["ContentLength"] == len(data)
                assert rgw_s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data
                assert [x[3] for x in slow.answered("PUT", f"/{bucket}/big")] == [200]
                assert wait_for(lambda: counter(gw, "r2gw_migrated_objects_total", bucket=bucket, result="copied") == 1)
            finally:
                empty(rgw_s3, bucket)
                empty(moto_s3, bucket)
    finally:
        slow.stop()


def test_concurrent_first_gets_from_three_gateways_write_each_object_once(stores, rgw_s3, moto_s3):
    bucket = unique("sippy")
    stores.gw.client().create_bucket(Bucket=bucket)
    moto_s3.create_bucket(Bucket=bucket)
    keys = [f"k{i}" for i in range(4)]
    blobs = {k: os.urandom(3 * 1024 * 1024) for k in keys}
    try:
        for k in keys:
            moto_s3.put_object(Bucket=bucket, Key=k, Body=blobs[k])
        clients = [gw.client() for gw in stores.gateways]
        errors = []

        def read(client, key, barrier):
            try:
                barrier.wait()
                assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == blobs[key]
            except Exception as e:   # noqa: BLE001 - reported below
                errors.append(e)

        for k in keys:
            barrier = threading.Barrier(len(clients))
            threads = [threading.Thread(target=read, args=(cl, k, barrier)) for cl in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not errors, errors
        for k in keys:
            assert wait_for(lambda: present(rgw_s3, bucket, k))
            assert rgw_s3.get_object(Bucket=bucket, Key=k)["Body"].read() == blobs[k]
        # what RGW executed: one accepted write per key, the others refused by If-None-Match
        for k in keys:
            writes = stores.proxy.answered("PUT", f"/{bucket}/{k}")
            assert [w[3] for w in writes].count(200) == 1, [w[3] for w in writes]
            assert all(w[2].get("if-none-match") == "*" for w in writes)
            assert all(w[3] in (200, 412) for w in writes)
        copied = sum(counter(gw, "r2gw_migrated_objects_total", bucket=bucket, result="copied") for gw in stores.gateways)
        assert copied == len(keys)
    finally:
        empty(rgw_s3, bucket)
        empty(moto_s3, bucket)


# -- list: merged --------------------------------------------------------------------------------------

@pytest.fixture
def merged(stores, rgw_s3, moto_s3):
    c = stores.gw.client()
    bucket = unique("merged")
    c.create_bucket(Bucket=bucket)
    moto_s3.create_bucket(Bucket=bucket)
    for k in ("a", "b", "c/1", "c/2", "d", "z/9"):
        moto_s3.put_object(Bucket=bucket, Key=k, Body=b"source " + k.encode())
    for k in ("b", "c/3", "e"):
        rgw_s3.put_object(Bucket=bucket, Key=k, Body=b"destination copy of " + k.encode())
    yield c, bucket
    empty(rgw_s3, bucket)
    empty(moto_s3, bucket)


def test_list_merged_is_one_sorted_paginated_listing(merged):
    c, bucket = merged
    flat = [(o["Key"], o["Size"]) for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}) for o in page.get("Contents", [])]
    assert [k for k, _ in flat] == ["a", "b", "c/1", "c/2", "c/3", "d", "e", "z/9"]
    assert dict(flat)["b"] == len(b"destination copy of b")      # the destination's, shown once
    pages = list(c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/",
                                                             PaginationConfig={"PageSize": 2}))
    entries = [[o["Key"] for o in p.get("Contents", [])] + [x["Prefix"] for x in p.get("CommonPrefixes", [])]
               for p in pages]
    assert [sorted(e) for e in entries] == [["a", "b"], ["c/", "d"], ["e", "z/"]]
    assert all(p["KeyCount"] == 2 for p in pages)
    v1 = [o["Key"] for p in c.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
          for o in p.get("Contents", [])]
    assert v1 == [k for k, _ in flat]
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="c/", StartAfter="c/1")["Contents"]] == ["c/2", "c/3"]


def test_a_bucket_without_list_merged_lists_the_destination_only(stores, mig):
    c, bucket, source, dest, _ = mig
    source.put_object(Bucket=bucket, Key="only-on-source", Body=b"1")
    assert c.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
