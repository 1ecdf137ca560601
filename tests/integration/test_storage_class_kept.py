"""STANDARD_IA kept visible where the store has no such class (Ceph RGW's default placement answers
400 to it): stored in the store's STANDARD, answered in the class the client chose by HeadObject,
GetObject, ListObjects v1/v2, ListParts, ListMultipartUploads and CopyObject's result, by any
gateway replica. On the embedded upstream (moto keeps the class itself, but lists every upload as
STANDARD) the same answers. RGW's own state is checked directly."""
from __future__ import annotations

import base64
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.gateway_process import GatewayProcess, remember_secret

from .conftest import empty_bucket

IA = "STANDARD_IA"
MiB = 1024 * 1024


def cls(obj) -> str:
    return obj.get("StorageClass") or "STANDARD"      # S3 omits the header for STANDARD


def listed(c, b, **kw):
    v2 = {o["Key"]: o["StorageClass"] for o in c.list_objects_v2(Bucket=b, **kw).get("Contents", [])}
    v1 = {o["Key"]: o["StorageClass"] for o in c.list_objects(Bucket=b, **kw).get("Contents", [])}
    assert v1 == v2
    return v2


def _placement_classes(rgw) -> set[str]:
    for target in rgw.admin_json("zonegroup", "get").get("placement_targets", []):
        if target.get("name") == "default-placement":
            return set(target.get("storage_classes", []))
    return set()


def test_rgw_refuses_the_class_itself(rgw, rgw_s3, gateway):
    """What the gateway makes up for: RGW's default placement has no STANDARD_IA."""
    if IA in _placement_classes(rgw):
        pytest.skip("this RGW's placement was given STANDARD_IA (tests/integration/test_rules.py ran first)")
    s3 = gateway.client()
    name = "sc-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    try:
        with pytest.raises(ClientError) as e:
            rgw_s3.put_object(Bucket=name, Key="k", Body=b"x", StorageClass=IA)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        s3.put_object(Bucket=name, Key="k", Body=b"x", StorageClass=IA)      # through the gateway: kept
        assert cls(s3.head_object(Bucket=name, Key="k")) == IA
    finally:
        empty_bucket(rgw_s3, name)


def test_put_head_get_and_listings(c, b, gw, request):
    c.put_object(Bucket=b, Key="ia", Body=b"infrequent", StorageClass=IA)
    c.put_object(Bucket=b, Key="std", Body=b"standard")
    c.put_object(Bucket=b, Key="explicit", Body=b"standard", StorageClass="STANDARD")
    assert cls(c.head_object(Bucket=b, Key="ia")) == IA
    got = c.get_object(Bucket=b, Key="ia")
    assert cls(got) == IA and got["Body"].read() == b"infrequent"
    assert "r2gw-class" not in got["Metadata"] and "r2gw-class" not in c.head_object(Bucket=b, Key="ia")["Metadata"]
    assert cls(c.head_object(Bucket=b, Key="std")) == "STANDARD"
    assert listed(c, b) == {"ia": IA, "std": "STANDARD", "explicit": "STANDARD"}
    assert listed(c, b, Prefix="i") == {"ia": IA}
    assert c.list_objects_v2(Bucket=b, StartAfter="explicit", MaxKeys=1)["Contents"][0]["StorageClass"] == IA


def test_upstream_state_on_rgw(gateway, rgw_s3):
    s3 = gateway.client()
    name = "sc-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    try:
        s3.put_object(Bucket=name, Key="ia", Body=b"x", StorageClass=IA)
        direct = rgw_s3.head_object(Bucket=name, Key="ia")
        # the class is the gateway's record (beside it: the checksum the SDK sent, kept as R2 does)
        assert cls(direct) == "STANDARD" and direct["Metadata"]["r2gw-class"] == IA
        assert set(direct["Metadata"]) <= {"r2gw-class", "r2gw-checksum"}, direct["Metadata"]
        assert rgw_s3.list_objects_v2(Bucket=name)["Contents"][0]["StorageClass"] == "STANDARD"
        # the gateway's records are the internal bucket's, out of every client's reach
        internal = [o["Key"] for o in rgw_s3.list_objects_v2(Bucket="r2gw-internal", Prefix=f"c/{name}/")["Contents"]]
        assert internal == [f"c/{name}/ia"]
        with pytest.raises(ClientError) as e:
            s3.list_objects_v2(Bucket="r2gw-internal")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert "r2gw-internal" not in [x["Name"] for x in s3.list_buckets()["Buckets"]]
        # a client cannot set the gateway's metadata, nor read it back
        s3.put_object(Bucket=name, Key="forged", Body=b"x", Metadata={"r2gw-class": IA})
        assert "r2gw-class" not in rgw_s3.head_object(Bucket=name, Key="forged")["Metadata"]
        assert cls(s3.head_object(Bucket=name, Key="forged")) == "STANDARD"
    finally:
        empty_bucket(rgw_s3, name)


def test_a_later_write_outdates_the_record(c, b):
    c.put_object(Bucket=b, Key="k", Body=b"same", StorageClass=IA)
    assert listed(c, b) == {"k": IA}
    c.put_object(Bucket=b, Key="k", Body=b"same")               # same bytes, now STANDARD
    assert cls(c.head_object(Bucket=b, Key="k")) == "STANDARD"
    assert listed(c, b) == {"k": "STANDARD"}
    c.delete_object(Bucket=b, Key="k")
    c.put_object(Bucket=b, Key="k", Body=b"new")
    assert listed(c, b) == {"k": "STANDARD"}
    c.put_object(Bucket=b, Key="k", Body=b"again", StorageClass=IA)
    assert listed(c, b) == {"k": IA}


def test_multipart_upload_in_ia(c, b):
    up = c.create_multipart_upload(Bucket=b, Key="mp", StorageClass=IA)["UploadId"]
    other = c.create_multipart_upload(Bucket=b, Key="mp2")["UploadId"]
    assert c.list_parts(Bucket=b, Key="mp", UploadId=up)["StorageClass"] == IA
    assert c.list_parts(Bucket=b, Key="mp2", UploadId=other)["StorageClass"] == "STANDARD"
    uploads = {u["UploadId"]: u["StorageClass"] for u in c.list_multipart_uploads(Bucket=b)["Uploads"]}
    assert uploads == {up: IA, other: "STANDARD"}
    assert {u["UploadId"] for u in c.list_multipart_uploads(Bucket=b, Prefix="mp2")["Uploads"]} == {other}
    parts = [{"PartNumber": n, "ETag": c.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=n,
                                                     Body=body)["ETag"]}
             for n, body in ((1, b"a" * 5 * MiB), (2, b"b"))]
    c.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
    c.abort_multipart_upload(Bucket=b, Key="mp2", UploadId=other)
    assert cls(c.head_object(Bucket=b, Key="mp")) == IA
    assert cls(c.get_object(Bucket=b, Key="mp", PartNumber=2)) == IA
    assert listed(c, b) == {"mp": IA}


def test_upload_records_are_removed(gateway, rgw_s3):
    s3 = gateway.client()
    name = "sc-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    try:
        done = s3.create_multipart_upload(Bucket=name, Key="done", StorageClass=IA)["UploadId"]
        gone = s3.create_multipart_upload(Bucket=name, Key="gone", StorageClass=IA)["UploadId"]
        records = lambda: [o["Key"] for o in rgw_s3.list_objects_v2(  # noqa: E731
            Bucket="r2gw-internal", Prefix=f"u/{name}/").get("Contents", [])]
        assert len(records()) == 2
        etag = s3.upload_part(Bucket=name, Key="done", UploadId=done, PartNumber=1, Body=b"x")["ETag"]
        s3.complete_multipart_upload(Bucket=name, Key="done", UploadId=done,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        s3.abort_multipart_upload(Bucket=name, Key="gone", UploadId=gone)
        assert records() == []
        assert rgw_s3.head_object(Bucket=name, Key="done")["Metadata"] == {"r2gw-class": IA}
    finally:
        empty_bucket(rgw_s3, name)


def test_copy_object_sets_the_destination_class(c, b):
    c.put_object(Bucket=b, Key="ia", Body=b"src", StorageClass=IA, Metadata={"colour": "blue"},
                 ContentType="text/plain")
    c.put_object(Bucket=b, Key="std", Body=b"src")
    c.copy_object(Bucket=b, Key="ia-copy", CopySource={"Bucket": b, "Key": "ia"})       # S3: STANDARD
    c.copy_object(Bucket=b, Key="to-ia", CopySource={"Bucket": b, "Key": "std"}, StorageClass=IA)
    c.copy_object(Bucket=b, Key="ia-to-ia", CopySource={"Bucket": b, "Key": "ia"}, StorageClass=IA)
    heads = {k: c.head_object(Bucket=b, Key=k) for k in ("ia-copy", "to-ia", "ia-to-ia")}
    assert {k: cls(h) for k, h in heads.items()} == {"ia-copy": "STANDARD", "to-ia": IA, "ia-to-ia": IA}
    for k in ("ia-copy", "ia-to-ia"):       # the source's metadata came along (COPY directive)
        assert heads[k]["Metadata"] == {"colour": "blue"} and heads[k]["ContentType"] == "text/plain"
    # REPLACE with a class
    c.copy_object(Bucket=b, Key="replaced", CopySource={"Bucket": b, "Key": "ia"}, StorageClass=IA,
                  MetadataDirective="REPLACE", Metadata={"new": "1"})
    h = c.head_object(Bucket=b, Key="replaced")
    assert cls(h) == IA and h["Metadata"] == {"new": "1"}
    assert listed(c, b) == {"ia": IA, "std": "STANDARD", "ia-copy": "STANDARD", "to-ia": IA, "ia-to-ia": IA,
                            "replaced": IA}


def test_copy_that_changes_only_the_class(c, b):
    c.put_object(Bucket=b, Key="k", Body=b"body", Metadata={"m": "v"}, ContentType="text/csv")
    c.copy_object(Bucket=b, Key="k", CopySource={"Bucket": b, "Key": "k"}, StorageClass=IA)
    h = c.head_object(Bucket=b, Key="k")
    assert cls(h) == IA and h["Metadata"] == {"m": "v"} and h["ContentType"] == "text/csv"
    assert listed(c, b) == {"k": IA}
    c.copy_object(Bucket=b, Key="k", CopySource={"Bucket": b, "Key": "k"}, StorageClass="STANDARD")
    h = c.head_object(Bucket=b, Key="k")
    assert cls(h) == "STANDARD" and h["Metadata"] == {"m": "v"}
    assert listed(c, b) == {"k": "STANDARD"}
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == b"body"


def test_sse_c_object_in_ia(c, b):
    key = os.urandom(32)
    remember_secret(base64.b64encode(key).decode())
    kw = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    c.put_object(Bucket=b, Key="sec", Body=b"classified", StorageClass=IA, **kw)
    assert cls(c.head_object(Bucket=b, Key="sec", **kw)) == IA
    assert listed(c, b) == {"sec": IA}


def test_merge_directive_keeps_the_class_asked_for(c, b):
    c.put_object(Bucket=b, Key="ia", Body=b"x", StorageClass=IA, Metadata={"a": "1"})
    c.meta.events.register("before-sign.s3.CopyObject",
                           lambda request, **_: request.headers.__setitem__("x-amz-metadata-directive", "MERGE"))
    c.copy_object(Bucket=b, Key="merged", CopySource={"Bucket": b, "Key": "ia"}, Metadata={"b": "2"})
    h = c.head_object(Bucket=b, Key="merged")
    assert h["Metadata"] == {"a": "1", "b": "2"} and cls(h) == "STANDARD"


@pytest.fixture(scope="module")
def second_replica(rgw, tmp_path_factory):
    g = GatewayProcess(tmp_path_factory.mktemp("replica"), upstream=rgw, tls=False, name="gateway-replica")
    g.start()
    yield g
    g.stop()


def test_another_replica_answers_the_same(gateway, second_replica, rgw_s3):
    s3, other = gateway.client(), second_replica.client()
    name = "sc-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    try:
        s3.put_object(Bucket=name, Key="ia", Body=b"x", StorageClass=IA)
        up = s3.create_multipart_upload(Bucket=name, Key="mp", StorageClass=IA)["UploadId"]
        assert cls(other.head_object(Bucket=name, Key="ia")) == IA
        assert listed(other, name) == {"ia": IA}
        assert other.list_parts(Bucket=name, Key="mp", UploadId=up)["StorageClass"] == IA
        assert other.list_multipart_uploads(Bucket=name)["Uploads"][0]["StorageClass"] == IA
        other.put_object(Bucket=name, Key="ia", Body=b"y")       # overwritten elsewhere, STANDARD
        assert listed(s3, name) == {"ia": "STANDARD"}
    finally:
        empty_bucket(rgw_s3, name)
