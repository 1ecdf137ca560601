"""Each defect of the security review, end to end through the gateway, checked on RGW directly:
nothing stored, nothing read across buckets, the internal records intact.

1. header names with ``_`` (``x_amz_copy_source``, ``x_amz_acl``, ``x_amz_meta_*``) that RGW reads
   as ``x-amz-*``: refused with 400 before anything goes upstream; only signed, known headers go;
2. a decoded ``/`` (``%2F``) or another character outside S3 naming in a bucket, and every spelling
   of the internal bucket (path, virtual host, encodings, copy sources): refused;
7. a ``Range`` S3 ignores: ignored (200, the whole object, no Content-Range).
"""
from __future__ import annotations

import json
import re
from urllib.parse import quote, urlsplit

import pytest

from tests import s3raw

from .conftest import INTERNAL, VHOST_DOMAIN, exists

pytestmark = pytest.mark.rgw


def code(body: bytes) -> str | None:
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


# -- 1. header names an S3 server reads as another -------------------------------------------------

def test_underscore_copy_source_does_not_copy_across_buckets(world):
    direct = world.direct()
    path = f"/{world.alpha}/stolen.txt"
    for spelling in ("x_amz_copy_source", "X_Amz_Copy_Source", "x-amz_copy-source"):
        status, _, body = world.send("rw-alpha", "PUT", path, {"Content-Length": "0"},
                                     unsigned={spelling: f"/{world.beta}/secret.txt"})
        assert (status, code(body)) == (400, "InvalidArgument"), (spelling, body)
        assert not exists(direct, world.alpha, "stolen.txt"), spelling


def test_underscore_copy_source_into_a_part_is_refused(world):
    direct = world.direct()
    up = direct.create_multipart_upload(Bucket=world.alpha, Key="parted.bin")["UploadId"]
    try:
        path = f"/{world.alpha}/parted.bin?partNumber=1&uploadId={quote(up, safe='')}"
        status, _, body = world.send("rw-alpha", "PUT", path, {"Content-Length": "0"},
                                     unsigned={"x_amz_copy_source": f"/{world.beta}/secret.txt"})
        assert (status, code(body)) == (400, "InvalidArgument"), body
        parts = direct.list_parts(Bucket=world.alpha, Key="parted.bin", UploadId=up).get("Parts", [])
        assert parts == []
    finally:
        direct.abort_multipart_upload(Bucket=world.alpha, Key="parted.bin", UploadId=up)


def test_underscore_acl_does_not_make_an_object_public(world):
    direct = world.direct()
    path = f"/{world.alpha}/public.txt"
    status, _, body = world.send("rw-alpha", "PUT", path, {"Content-Length": "2"}, b"hi",
                                 unsigned={"x_amz_acl": "public-read"})
    assert (status, code(body)) == (400, "InvalidArgument"), body
    if exists(direct, world.alpha, "public.txt"):   # never stored; if it were, it must stay private
        grants = direct.get_object_acl(Bucket=world.alpha, Key="public.txt")["Grants"]
        assert not any("AllUsers" in json.dumps(g) for g in grants)
    assert not exists(direct, world.alpha, "public.txt")


def test_underscore_metadata_cannot_pass_the_metadata_limit(world):
    direct = world.direct()
    path = f"/{world.alpha}/meta.txt"
    unsigned = {f"x_amz_meta_m{i}": "v" * 900 for i in range(10)}   # ~9,000 bytes, unsigned
    status, _, body = world.send("rw-alpha", "PUT", path, {"Content-Length": "2"}, b"hi", unsigned=unsigned)
    assert (status, code(body)) == (400, "InvalidArgument"), body
    assert not exists(direct, world.alpha, "meta.txt")


def test_signed_underscore_metadata_names_are_metadata(world):
    # an underscore after x-amz-meta- is part of a metadata name (AWS keeps it): signed, counted, stored
    path = f"/{world.alpha}/meta-ok.txt"
    status, _, body = world.send("rw-alpha", "PUT", path, {"Content-Length": "2", "x-amz-meta-my_key": "1"}, b"hi")
    assert status == 200, body
    meta = world.direct().head_object(Bucket=world.alpha, Key="meta-ok.txt")["Metadata"]
    assert list(meta.values()) == ["1"]


def test_a_captured_presigned_url_cannot_be_widened_with_lookalike_headers(world):
    c = world.client("rw-alpha")
    url = c.generate_presigned_url("put_object", Params={"Bucket": world.alpha, "Key": "presigned.txt"},
                                   ExpiresIn=600)
    u = urlsplit(url)
    target = f"{u.path}?{u.query}"
    direct = world.direct()
    for extra in ({"x_amz_copy_source": f"/{world.beta}/secret.txt"}, {"x_amz_acl": "public-read"},
                  {"x_amz_meta_a": "1"}):
        status, _, body = s3raw.send(world.gw.endpoint, "PUT", target, {"Content-Length": "2", **extra}, b"hi")
        assert (status, code(body)) == (400, "InvalidArgument"), (extra, body)
        assert not exists(direct, world.alpha, "presigned.txt")
    # an unsigned x-amz-* header is refused as S3 refuses it; an unknown one is dropped
    status, _, body = s3raw.send(world.gw.endpoint, "PUT", target, {"Content-Length": "2", "x-amz-acl": "private"}, b"hi")
    assert (status, code(body)) == (403, "AccessDenied")
    status, _, body = s3raw.send(world.gw.endpoint, "PUT", target, {"Content-Length": "2", "x-unknown": "1"}, b"hi")
    assert status == 200, body
    assert direct.get_object(Bucket=world.alpha, Key="presigned.txt")["Body"].read() == b"hi"


def test_names_outside_the_token_set_are_refused_by_the_parser(world):
    import socket
    host, port = "127.0.0.1", world.gw.port
    for line in (b"x-amz-copy-source : /b/k", b"x amz acl: public-read", b"x-amz-acl\t: public-read"):
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(b"PUT /" + world.alpha.encode() + b"/odd.txt HTTP/1.1\r\nHost: h\r\n" + line
                      + b"\r\nContent-Length: 0\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 400"), line
    assert not exists(world.direct(), world.alpha, "odd.txt")


# -- 2. bucket names, the internal bucket ------------------------------------------------------------

def test_encoded_slash_in_the_bucket_does_not_delete_an_object(world):
    direct = world.direct()
    assert exists(direct, world.alpha, "key")
    for path in (f"/{world.alpha}%2Fkey", f"/{world.alpha}%2fkey", f"/{world.alpha}%252Fkey"):
        status, _, body = world.send("admin", "DELETE", path)
        assert (status, code(body)) == (400, "InvalidBucketName"), (path, body)
    assert exists(direct, world.alpha, "key")
    status, _, body = world.send("admin", "GET", f"/{world.alpha}%2Fkey")
    assert (status, code(body)) == (400, "InvalidBucketName")


def _complete_upload(world, key: str) -> None:
    c = world.client("admin")
    up = c.create_multipart_upload(Bucket=world.alpha, Key=key)["UploadId"]
    p1 = c.upload_part(Bucket=world.alpha, Key=key, UploadId=up, PartNumber=1, Body=b"a" * (5 << 20))
    p2 = c.upload_part(Bucket=world.alpha, Key=key, UploadId=up, PartNumber=2, Body=b"b" * 10)
    c.complete_multipart_upload(Bucket=world.alpha, Key=key, UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})


INTERNAL_SPELLINGS = [
    f"/{INTERNAL}%2Fparts", f"/{INTERNAL}%2fparts", "/%72" + INTERNAL[1:] + "%2Fparts", f"/{INTERNAL}/parts",
    "/%72%32%67%77-internal/parts", "/R2GW-INTERNAL/parts", "/R2gw-Internal/parts", f"/{INTERNAL}%00/parts",
]


def test_internal_records_stay_unreachable_and_intact(world):
    _complete_upload(world, "recorded.bin")
    direct = world.direct()
    record_key = f"parts/{world.alpha}/recorded.bin"
    before = direct.get_object(Bucket=INTERNAL, Key=record_key)["Body"].read()
    rest = f"/{world.alpha}/recorded.bin"
    for prefix in INTERNAL_SPELLINGS:
        path = prefix + quote(rest, safe="/") if not prefix.endswith("parts") else prefix + "%2F" + \
            quote(world.alpha, safe="") + "%2Frecorded.bin"
        for method, body in (("GET", b""), ("PUT", b'{"parts": 2, "size": 1, "part_size": 1}'), ("DELETE", b"")):
            status, _, answer = world.send("admin", method, path, {"Content-Length": str(len(body))}, body)
            assert code(answer) in ("AccessDenied", "InvalidBucketName"), (method, path, status, answer)
        # the same with '/' between the segments (path style, no encoding of the separator)
        plain = prefix.replace("%2F", "/").replace("%2f", "/") + "/" + world.alpha + "/recorded.bin"
        status, _, answer = world.send("admin", "PUT", plain, {"Content-Length": "2"}, b"{}")
        assert code(answer) in ("AccessDenied", "InvalidBucketName"), (plain, status, answer)
    # virtual-hosted: the internal bucket as a host name, any case
    for host in (f"{INTERNAL}.{VHOST_DOMAIN}", f"R2GW-Internal.{VHOST_DOMAIN}"):
        path = f"/{record_key}"
        h = world.signed("admin", "PUT", path, {"Host": host, "Content-Length": "2"})
        status, _, answer = s3raw.send(world.gw.endpoint, "PUT", path, {**h, "Host": host}, b"{}")
        assert (status, code(answer)) == (403, "AccessDenied"), (host, answer)
    assert direct.get_object(Bucket=INTERNAL, Key=record_key)["Body"].read() == before
    # and the records still serve ?partNumber reads correctly
    got = world.client("admin").get_object(Bucket=world.alpha, Key="recorded.bin", PartNumber=2)
    assert got["Body"].read() == b"b" * 10


COPY_SOURCES = [
    f"{INTERNAL}/parts/X", f"/{INTERNAL}/parts/X", f"{INTERNAL}%2Fparts%2FX", f"/%72{INTERNAL[1:]}/parts/X",
    f"{INTERNAL}/parts/X?versionId=null", f"%2F{INTERNAL}%2Fparts%2FX", f"R2GW-INTERNAL/parts/X",
    f"{INTERNAL.upper()}%2Fparts/X", f"%2572{INTERNAL[1:]}/parts/X",
]


def test_internal_bucket_is_no_copy_source(world):
    _complete_upload(world, "copied.bin")
    direct = world.direct()
    record = f"parts/{world.alpha}/copied.bin"
    up = direct.create_multipart_upload(Bucket=world.alpha, Key="part-target")["UploadId"]
    try:
        for source in COPY_SOURCES:
            source = source.replace("X", quote(f"{world.alpha}/copied.bin", safe="/")) if "%2F" not in source \
                else source.replace("X", quote(f"{world.alpha}/copied.bin", safe=""))
            status, _, body = world.send("admin", "PUT", f"/{world.alpha}/leak.json",
                                         {"x-amz-copy-source": source, "Content-Length": "0"})
            assert code(body) in ("AccessDenied", "InvalidBucketName"), (source, status, body)
            path = f"/{world.alpha}/part-target?partNumber=1&uploadId={quote(up, safe='')}"
            status, _, body = world.send("admin", "PUT", path, {"x-amz-copy-source": source, "Content-Length": "0"})
            assert code(body) in ("AccessDenied", "InvalidBucketName"), (source, status, body)
        assert not exists(direct, world.alpha, "leak.json")
        assert direct.list_parts(Bucket=world.alpha, Key="part-target", UploadId=up).get("Parts", []) == []
        assert exists(direct, INTERNAL, record)
    finally:
        direct.abort_multipart_upload(Bucket=world.alpha, Key="part-target", UploadId=up)


def test_internal_bucket_hidden_from_list_buckets(world):
    _complete_upload(world, "listed.bin")
    names = {b["Name"] for b in world.direct().list_buckets()["Buckets"]}
    assert INTERNAL in names       # it is there upstream …
    for ak in ("admin", "rw-alpha"):
        seen = {b["Name"] for b in world.client(ak).list_buckets()["Buckets"]}
        assert INTERNAL not in seen, ak   # … and no client sees it


def test_bucket_names_outside_s3_naming(world):
    for path in ("/Alpha/k", "/al_pha/k", "/ab/k", "/tenant:alpha/k", "/alpha%3Fx/k", "/%2E%2E/k"):
        status, _, body = world.send("admin", "GET", path)
        assert (status, code(body)) == (400, "InvalidBucketName"), (path, body)


# -- 7. a Range S3 ignores ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["items=0-1", "bytes=garbage", "bytes=0-1,3-4", "bytes=3-1", "bytes= 0-1"])
def test_a_range_s3_ignores_is_ignored(world, value):
    status, headers, body = world.send("rw-alpha", "GET", f"/{world.alpha}/mine.txt", {"Range": value})
    assert status == 200, (value, body)
    assert "content-range" not in headers
    assert body == b"0123456789"


@pytest.mark.parametrize("value,want,content_range", [
    ("bytes=0-1", b"01", "bytes 0-1/10"), ("bytes=8-", b"89", "bytes 8-9/10"), ("bytes=-3", b"789", "bytes 7-9/10"),
    ("Bytes=2-3", b"23", "bytes 2-3/10"),
])
def test_a_valid_range_still_works(world, value, want, content_range):
    status, headers, body = world.send("rw-alpha", "GET", f"/{world.alpha}/mine.txt", {"Range": value})
    assert (status, body, headers.get("content-range")) == (206, want, content_range)


# -- the upstream's other APIs behind S3-looking paths ---------------------------------------------

def test_rgw_admin_api_is_not_reachable_through_the_gateway(world):
    """RGW serves its admin ops API (users, keys, usage) at /admin with S3 signatures: through the
    gateway, signed with the gateway's own upstream credentials, a client could read what those
    credentials may (with ``users=read``: every user's secret keys)."""
    uid = "r2gw-test"
    world.rgw.admin("caps", "add", f"--uid={uid}", "--caps=users=read;buckets=read;usage=read")
    try:
        for ak in ("admin", "rw-alpha"):
            for path in ("/admin/user?uid=r2gw-test&format=json", "/admin/bucket?format=json", "/swift/v1",
                         "/auth/1.0"):
                status, _, body = world.send(ak, "GET", path)
                assert world.rgw.secret_key.encode() not in body, (ak, path)
                assert (status, code(body)) == (400, "InvalidBucketName"), (ak, path, status, body[:300])
        h = world.signed("admin", "GET", "/user?uid=r2gw-test", {"Host": f"admin.{VHOST_DOMAIN}"})
        status, _, body = s3raw.send(world.gw.endpoint, "GET", "/user?uid=r2gw-test", h)
        assert (status, code(body)) == (400, "InvalidBucketName"), body[:300]
    finally:
        world.rgw.admin("caps", "rm", f"--uid={uid}", "--caps=users=read;buckets=read;usage=read")
