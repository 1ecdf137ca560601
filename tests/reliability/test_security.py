"""Security properties, checked end to end with a counting proxy between the gateway and RGW:

- nothing that lacks a valid signature reaches the upstream;
- signatures are compared in constant time (the code is read, and the comparison is observed);
- a signed request cannot be replayed after 15 minutes; a presigned URL cannot be widened;
- CR/LF cannot be smuggled into headers through metadata; keys with ``../`` stay in their bucket;
- the copy source is authorised like a read of its bucket;
- no client request can take radosgw 16.2.15 down (UploadPartCopy from a key with ``%``).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from gateway.auth import sigv4 as sigv4_mod
from gateway.errors import S3Error
from tests import s3raw
from tests.conftest import _empty_and_delete
from tests.gateway_process import GatewayProcess
from tests.upstreams.fixtures import s3_client

from .helpers import UpstreamRef, error_code, obj_path, request, signed_headers

pytestmark = pytest.mark.rgw


# -- fixtures: two buckets, scoped keys, a gateway with those keys behind the counting proxy -----------

@pytest.fixture(scope="module")
def buckets(rgw):
    client = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    a, b = "sec-a-" + uuid.uuid4().hex[:8], "sec-b-" + uuid.uuid4().hex[:8]
    for name in (a, b):
        client.create_bucket(Bucket=name)
    client.put_object(Bucket=b, Key="secret", Body=b"B's secret")
    client.put_object(Bucket=a, Key="mine", Body=b"A's own object")
    yield a, b
    for name in (a, b):
        _empty_and_delete(client, name)


KEYS = {
    "rw-a": ("object-read-write", "a"),
    "ro-ab": ("object-read-only", "ab"),
    "admin-ro": ("admin-read-only", None),
}


@pytest.fixture(scope="module")
def scoped_gateway(rgw, fault_proxy, buckets, tmp_path_factory):
    a, b = buckets
    lines = ["keys:"]
    for ak, (perm, scope) in KEYS.items():
        lines += [f"  - access_key_id: {ak}", f"    secret_access_key: {ak}-secret-0123456789abcdef",
                  f"    permission: {perm}"]
        if scope is not None:
            lines.append("    buckets: [" + ", ".join({"a": a, "b": b}[c] for c in scope) + "]")
    workdir = tmp_path_factory.mktemp("gw-scoped")
    config = workdir / "keys.yaml"
    config.write_text("\n".join(lines) + "\n")
    up = UpstreamRef(fault_proxy.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    gw = GatewayProcess(workdir, upstream=up, tls=False, config_path=config, name="gateway-scoped")
    gw.start()
    yield gw
    gw.stop()


def client_for(gw, ak: str):
    return gw.client(access_key=ak, secret_key=f"{ak}-secret-0123456789abcdef")


def code_of(e: ClientError) -> str:
    return e.response["Error"]["Code"]


# -- 1. no request without a valid signature reaches the upstream --------------------------------------

def _bad_requests(gw, bucket: str) -> list[tuple[str, tuple[int, dict, bytes]]]:
    path = obj_path(bucket, "obj")
    out = []
    send = lambda label, *a, **kw: out.append((label, request(gw, *a, **kw)))  # noqa: E731
    send("no auth GET", "GET", path, sign=False)
    send("no auth PUT", "PUT", path, {"Content-Length": "5"}, b"hello", sign=False)
    send("no auth DELETE", "DELETE", path, sign=False)
    send("no auth ListBuckets", "GET", "/", sign=False)
    send("no auth DeleteObjects", "POST", f"/{bucket}?delete", {}, b"<Delete><Object><Key>obj</Key></Object></Delete>",
         sign=False)
    h = s3raw.sign("GET", gw.endpoint + path, {}, s3raw.EMPTY, gw.access_key, "not-the-secret")
    out.append(("wrong secret", s3raw.send(gw.endpoint, "GET", path, h)))
    h = s3raw.sign("GET", gw.endpoint + path, {}, s3raw.EMPTY, "NOSUCHKEY", "whatever")
    out.append(("unknown key", s3raw.send(gw.endpoint, "GET", path, h)))
    h = signed_headers(gw, "GET", path, {}, s3raw.EMPTY)
    out.append(("path changed", s3raw.send(gw.endpoint, "GET", obj_path(bucket, "other"), h)))
    out.append(("method changed", s3raw.send(gw.endpoint, "DELETE", path, h)))
    out.append(("query added", s3raw.send(gw.endpoint, "GET", path + "?uploads", h)))
    h = signed_headers(gw, "PUT", path, {"x-amz-meta-a": "1", "Content-Length": "5"})
    out.append(("signed header changed", s3raw.send(gw.endpoint, "PUT", path, {**h, "x-amz-meta-a": "2"}, b"hello")))
    out.append(("unsigned x-amz header added",
                s3raw.send(gw.endpoint, "PUT", path, {**h, "x-amz-meta-b": "2"}, b"hello")))
    h = signed_headers(gw, "GET", path, {}, s3raw.EMPTY)
    sig = h["Authorization"].rsplit("Signature=", 1)[1]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    out.append(("signature flipped", s3raw.send(gw.endpoint, "GET", path,
                                                 {**h, "Authorization": h["Authorization"].replace(sig, flipped)})))
    out.append(("signature garbage", s3raw.send(gw.endpoint, "GET", path,
                                                 {**h, "Authorization": h["Authorization"].replace(sig, "é" * 64)})))
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=16)
    h = s3raw.sign("GET", gw.endpoint + path, {}, s3raw.EMPTY, gw.access_key, gw.secret_key, when=old)
    out.append(("16 minutes old", s3raw.send(gw.endpoint, "GET", path, h)))
    out.append(("SigV2", s3raw.send(gw.endpoint, "GET", path, {"Authorization": f"AWS {gw.access_key}:abc="})))
    url = gw.client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "obj"}, ExpiresIn=300)
    u = urlsplit(url)
    q = u.query.replace("X-Amz-Signature=", "X-Amz-Signature=0")[:-1]
    out.append(("presign tampered", s3raw.send(gw.endpoint, "GET", f"{u.path}?{q}", {})))
    # aws-chunked whose seed signature is wrong: refused before any upstream request
    status, headers, body = s3raw.put_chunked(gw.endpoint, bucket, "obj", b"x" * 1000, gw.access_key, "not-the-secret")
    out.append(("aws-chunked wrong key", (status, headers, body)))
    return out


def test_invalid_signatures_never_reach_upstream(proxied_gateway, proxy, pbucket):
    proxy.reset_log()
    results = _bad_requests(proxied_gateway, pbucket)
    for label, (status, _, body) in results:
        assert 400 <= status < 500, (label, status, body[:200])
    assert proxy.requests == [], [(r.method, r.target) for r in proxy.requests]
    # and the same gateway still forwards a good request (the proxy does see traffic)
    assert proxied_gateway.client().list_objects_v2(Bucket=pbucket)["KeyCount"] == 0
    # (besides the one-time question of the upstream's dialect, and the storage-class records)
    listings = [r for r in proxy.requests if r.method == "GET" and r.target.startswith(f"/{pbucket}?")]
    assert len(listings) == 1, [(r.method, r.target) for r in proxy.requests]


# -- 2. constant-time comparison -------------------------------------------------------------------
# hmac.compare_digest is replaced by a judge that records what it is asked and gives the verdict: a
# correct signature it calls unequal must be refused, a forged one it calls equal accepted. So the
# verdict of every signature form is compare_digest's and nothing else's (a == anywhere on the way
# would accept the correct signature regardless, or refuse the forged one), and it is asked about
# the very signature the client sent.

class _Judge:
    def __init__(self, monkeypatch, verdict: bool | None = None):
        self.verdict, self.asked = verdict, []
        real = hmac.compare_digest

        def compare_digest(a, b):
            self.asked.append({x.decode("utf-8", "replace") if isinstance(x, (bytes, bytearray)) else x
                               for x in (a, b)})
            return real(a, b) if self.verdict is None else self.verdict
        monkeypatch.setattr(hmac, "compare_digest", compare_digest)

    def compared(self, signature: str) -> bool:
        """Was ``signature`` compared with itself (the gateway's own computation of it)?"""
        return {signature} in self.asked


def _forged(signature: str) -> str:
    return ("1" if signature[0] == "0" else "0") + signature[1:]


def _header_signed():
    from tests.unit.test_sigv4 import lookup, sign_raw
    method, path, query, headers = sign_raw("GET", "http://gw.example/bkt/some%20key?list-type=2")
    signature = headers["authorization"].rsplit("Signature=", 1)[1]

    def verify(sig: str):
        h = dict(headers, authorization=headers["authorization"].rsplit("Signature=", 1)[0] + "Signature=" + sig)
        return sigv4_mod.authenticate(method, path, query, h, lookup)
    return signature, verify


def _presigned():
    from tests.unit.test_sigv4 import lookup, make_client
    u = urlsplit(make_client("auto").generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"}))
    signature = dict(p.split("=", 1) for p in u.query.split("&"))["X-Amz-Signature"]

    def verify(sig: str):
        return sigv4_mod.authenticate("GET", u.path, u.query.replace(signature, sig), {"host": u.netloc}, lookup)
    return signature, verify


def _post_policy():
    from gateway.auth.post_policy import authenticate_form
    from tests.unit.test_sigv4 import lookup, make_client
    fields = make_client("auto").generate_presigned_post("bkt", "k")["fields"]
    signature = fields["x-amz-signature"]
    return signature, lambda sig: authenticate_form(dict(fields, **{"x-amz-signature": sig}), lookup)[1]


@pytest.mark.parametrize("form", [_header_signed, _presigned, _post_policy], ids=["header", "presigned", "post-policy"])
def test_request_signatures_are_judged_by_compare_digest(monkeypatch, form):
    signature, verify = form()
    judge = _Judge(monkeypatch)
    assert verify(signature).access_key_id and judge.compared(signature)
    with pytest.raises(S3Error) as e:
        verify(_forged(signature))
    assert e.value.code == "SignatureDoesNotMatch"
    judge.verdict = False
    with pytest.raises(S3Error) as e:
        verify(signature)
    assert e.value.code == "SignatureDoesNotMatch"
    judge.verdict = True
    assert verify(_forged(signature)).access_key_id


def test_chunk_and_trailer_signatures_are_judged_by_compare_digest(monkeypatch):
    from gateway.auth.chunked import ChunkedDecoder
    from tests.unit.test_chunked import SIGNED_TRAILER, auth_for, crc32_b64, encode
    payload = b"x" * 3000
    trailer = {"x-amz-checksum-crc32": crc32_b64(payload)}
    auth = auth_for(SIGNED_TRAILER, trailer="x-amz-checksum-crc32", decoded=len(payload))
    body = encode(payload, 1024, auth, trailers=trailer, sign_trailer=True)
    chunk_sigs = re.findall(rb"chunk-signature=([0-9a-f]{64})", body)
    (trailer_sig,) = re.findall(rb"x-amz-trailer-signature:([0-9a-f]{64})", body)
    assert len(chunk_sigs) == 4

    def decode(data: bytes) -> bytes:
        d = ChunkedDecoder(auth, SIGNED_TRAILER, ["x-amz-checksum-crc32"], len(payload))
        out = b"".join(d.feed(data))
        d.finish()
        return out

    judge = _Judge(monkeypatch)
    assert decode(body) == payload
    assert all(judge.compared(sig.decode()) for sig in [*chunk_sigs, trailer_sig])
    for sig in (chunk_sigs[1], trailer_sig):
        forged = body.replace(sig, _forged(sig.decode()).encode())
        with pytest.raises(S3Error) as e:
            decode(forged)
        assert e.value.code == "SignatureDoesNotMatch"
        judge.verdict = True
        assert decode(forged) == payload
        judge.verdict = None
    judge.verdict = False
    with pytest.raises(S3Error) as e:
        decode(body)
    assert e.value.code == "SignatureDoesNotMatch"


# -- 3. replay after 15 minutes ---------------------------------------------------------------------

@pytest.mark.parametrize("minutes,ok", [(-16, False), (-14, True), (14, True), (16, False)])
def test_replay_window_is_15_minutes(proxied_gateway, proxy, pbucket, minutes, ok):
    gw = proxied_gateway
    gw.client().put_object(Bucket=pbucket, Key="replay", Body=b"x")
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    path = obj_path(pbucket, "replay")
    h = s3raw.sign("GET", gw.endpoint + path, {}, s3raw.EMPTY, gw.access_key, gw.secret_key, when=when)
    proxy.reset_log()
    status, _, body = s3raw.send(gw.endpoint, "GET", path, h)
    if ok:
        assert status == 200 and body == b"x"
        # the very same signed request again, still inside the window: S3 accepts replays there too
        assert s3raw.send(gw.endpoint, "GET", path, h)[0] == 200
    else:
        assert (status, error_code(body)) == (403, "RequestTimeTooSkewed")
        assert proxy.requests == []


# -- 4. presigned URLs cannot be widened --------------------------------------------------------------

def _open(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _replace(url: str, name: str, value: str) -> str:
    u = urlsplit(url)
    q = "&".join(f"{name}={value}" if p.split("=", 1)[0] == name else p for p in u.query.split("&"))
    return f"{u.scheme}://{u.netloc}{u.path}?{q}"


def test_presigned_url_cannot_be_widened(proxied_gateway, proxy, pbucket):
    gw = proxied_gateway
    s3 = gw.client()
    s3.put_object(Bucket=pbucket, Key="shared", Body=b"shared body")
    s3.put_object(Bucket=pbucket, Key="other", Body=b"other body")
    get = s3.generate_presigned_url("get_object", Params={"Bucket": pbucket, "Key": "shared"}, ExpiresIn=300)
    assert _open(get) == 200
    u = urlsplit(get)
    proxy.reset_log()
    widened = {
        "PUT instead of GET": _open(get, "PUT", b"overwrite"),
        "DELETE instead of GET": _open(get, "DELETE"),
        "HEAD instead of GET": _open(get, "HEAD"),
        "POST instead of GET": _open(get, "POST", b""),
        "another key": _open(get.replace("/shared?", "/other?")),
        "another bucket": _open(get.replace(f"/{pbucket}/", "/other-bucket/")),
        "extra query parameter": _open(get + "&response-content-type=text%2Fhtml"),
        "subresource added": _open(get + "&uploads"),
        "longer expiry": _open(_replace(get, "X-Amz-Expires", "604800")),
        "other date": _open(_replace(get, "X-Amz-Date", dict(p.split("=", 1) for p in u.query.split("&"))
                                     ["X-Amz-Date"][:-3] + "00Z")),
        "other signed headers": _open(_replace(get, "X-Amz-SignedHeaders", "host%3Brange"), headers={"Range": "bytes=0-1"}),
        "unsigned x-amz header": _open(get, headers={"x-amz-meta-x": "1"}),
    }
    put = s3.generate_presigned_url("put_object", Params={"Bucket": pbucket, "Key": "upload", "ContentType": "text/plain",
                                                          "Metadata": {"owner": "alice"}}, ExpiresIn=300)
    signed = {"Content-Type": "text/plain", "x-amz-meta-owner": "alice"}
    widened.update({
        "signed header value changed": _open(put, "PUT", b"x", {**signed, "Content-Type": "text/html"}),
        "signed metadata changed": _open(put, "PUT", b"x", {**signed, "x-amz-meta-owner": "mallory"}),
        "signed header dropped": _open(put, "PUT", b"x", {"Content-Type": "text/plain"}),
        "extra metadata": _open(put, "PUT", b"x", {**signed, "x-amz-meta-admin": "true"}),
        "PUT URL used to GET": _open(put, "GET", None, signed),
    })
    assert {k: v for k, v in widened.items() if not 400 <= v < 500} == {}, widened
    assert proxy.requests == [], [(r.method, r.target) for r in proxy.requests]
    assert _open(put, "PUT", b"exactly as signed", signed) == 200  # the URL itself works
    assert s3.get_object(Bucket=pbucket, Key="shared")["Body"].read() == b"shared body"


# -- 5. header injection through metadata ---------------------------------------------------------

INJECTIONS = [
    "=?UTF-8?B?" + base64.b64encode(b"v\r\nx-amz-meta-injected: evil").decode() + "?=",
    "=?UTF-8?Q?v=0D=0Ax-amz-acl:_public-read?=",
    "=?UTF-8?B?" + base64.b64encode(b"v\nx-amz-meta-injected: evil").decode() + "?=",
    "=?UTF-8?B?" + base64.b64encode("caf\u00e9\r\nx-amz-meta-injected: evil".encode()).decode() + "?=",
    "=?UTF-8?B?" + base64.b64encode(b"nul\x00byte").decode() + "?=",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=["b64-crlf", "q-crlf", "b64-lf", "b64-unicode-crlf", "b64-nul"])
def test_metadata_cannot_inject_headers(proxied_gateway, proxy, pbucket, rgw_s3, value):
    gw = proxied_gateway
    proxy.reset_log()
    status, _, body = request(gw, "PUT", obj_path(pbucket, "inj"), {"x-amz-meta-a": value}, b"x")
    assert status == 400 and error_code(body) == "InvalidArgument", (status, body[:300])
    assert proxy.requests == []
    with pytest.raises(ClientError):
        rgw_s3.head_object(Bucket=pbucket, Key="inj")


@pytest.mark.parametrize("raw", [b"x-amz-meta-a: one\rx-amz-meta-b: two", b"x-amz-meta-a: one\r\n two",
                                 b"x-amz-meta-a: one\x00two", b"x-amz-meta-a: \xff\xfe"],
                         ids=["bare-cr", "obs-fold", "nul", "not-utf8"])
def test_raw_control_bytes_in_headers_are_refused(proxied_gateway, proxy, pbucket, raw):
    gw = proxied_gateway
    path = obj_path(pbucket, "raw")
    h = signed_headers(gw, "PUT", path, {"Content-Length": "1"})
    head = (f"PUT {path} HTTP/1.1\r\nHost: {gw.endpoint.split('//')[1]}\r\n".encode()
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) + raw + b"\r\n\r\n")
    from .helpers import raw_connection, read_response_head
    proxy.reset_log()
    sock = raw_connection(gw.endpoint)
    try:
        sock.sendall(head + b"x")
        try:
            status, _, _ = read_response_head(sock, 10)
        except ConnectionError:
            status = None  # dropped by the HTTP parser: also a refusal
    finally:
        sock.close()
    assert status is None or 400 <= status < 500
    assert proxy.requests == []


def test_metadata_roundtrip_with_unicode_still_works(proxied_gateway, pbucket):
    s3 = proxied_gateway.client()
    s3.put_object(Bucket=pbucket, Key="meta", Body=b"x", Metadata={"a": "=?UTF-8?B?" + base64.b64encode(
        "café tab\there".encode()).decode() + "?="})
    got = s3.head_object(Bucket=pbucket, Key="meta")["Metadata"]["a"]
    from email.header import decode_header, make_header
    assert str(make_header(decode_header(got))) == "café tab\there"


# -- 6. keys with ../ stay in their bucket ------------------------------------------------------------

DOT_KEYS = ["../{b}/secret", "../../{b}/x", "a/../../{b}/y", "..", ".", "./x", "%2e%2e/{b}/z", "..%2F{b}%2Fw",
            "../", "/../{b}/v", "....//{b}"]


def test_dot_dot_keys_stay_in_their_bucket(scoped_gateway, fault_proxy, buckets, rgw):
    a, b = buckets
    gw = scoped_gateway
    s3 = client_for(gw, "rw-a")
    direct = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    before_b = sorted(o["Key"] for o in direct.list_objects_v2(Bucket=b).get("Contents", []))
    for template in DOT_KEYS:
        key = template.format(b=b)
        fault_proxy.reset_log()
        s3.put_object(Bucket=a, Key=key, Body=key.encode())
        puts = [r.target for r in fault_proxy.requests if r.method == "PUT"]
        assert puts == [f"/{a}/{quote(key, safe='/~')}"], (key, puts)
        assert direct.get_object(Bucket=a, Key=key)["Body"].read() == key.encode()
        assert s3.get_object(Bucket=a, Key=key)["Body"].read() == key.encode()
    # an unnormalised request line: GET /A/../B/secret is the key "../B/secret" in A, never B's object
    for raw_path in (f"/{a}/../{b}/secret", f"/{a}/%2E%2E/{b}/secret", f"/{a}/..%2F{b}%2Fsecret"):
        h = s3raw.sign("GET", gw.endpoint + raw_path, {}, s3raw.EMPTY, "rw-a", "rw-a-secret-0123456789abcdef")
        status, _, body = s3raw.send(gw.endpoint, "GET", raw_path, h)
        assert body != b"B's secret"
        assert status in (200, 404), (raw_path, status, body[:200])
    after_b = sorted(o["Key"] for o in direct.list_objects_v2(Bucket=b).get("Contents", []))
    assert after_b == before_b == ["secret"]


# -- 7. the copy source is authorised like a read -------------------------------------------------

def test_copy_source_is_authorised_like_a_read(scoped_gateway, fault_proxy, buckets, rgw):
    a, b = buckets
    gw = scoped_gateway
    rw_a, ro_ab, admin_ro = client_for(gw, "rw-a"), client_for(gw, "ro-ab"), client_for(gw, "admin-ro")
    direct = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region)
    fault_proxy.reset_log()
    denied = {}
    for label, fn in {
        "copy from B (not in scope)": lambda: rw_a.copy_object(Bucket=a, Key="stolen", CopySource={"Bucket": b, "Key": "secret"}),
        "copy from B, leading slash": lambda: rw_a.copy_object(Bucket=a, Key="stolen", CopySource=f"/{b}/secret"),
        "copy from B, encoded bucket": lambda: rw_a.copy_object(Bucket=a, Key="stolen",
                                                                CopySource="%" + b[0].encode().hex() + b[1:] + "/secret"),
        "upload part copy from B": lambda: _part_copy(rw_a, a, f"{b}/secret"),
        "read-only key copies": lambda: ro_ab.copy_object(Bucket=a, Key="stolen", CopySource={"Bucket": b, "Key": "secret"}),
        "admin read-only key copies": lambda: admin_ro.copy_object(Bucket=a, Key="stolen",
                                                                   CopySource={"Bucket": b, "Key": "secret"}),
    }.items():
        with pytest.raises(ClientError) as e:
            fn()
        denied[label] = code_of(e.value)
    # botocore escapes the '%' of the encoded source once more: decoded once, as S3 does, its
    # bucket is "%73ec-b-…", not a bucket name at all
    assert denied.pop("copy from B, encoded bucket") in ("AccessDenied", "InvalidBucketName")
    assert set(denied.values()) == {"AccessDenied"}, denied
    copies = [r for r in fault_proxy.requests if "x-amz-copy-source" in r.headers]
    assert copies == [], [(r.method, r.target, r.headers["x-amz-copy-source"]) for r in copies]
    # a path that walks out of A is the key "../B/secret" inside A, never B's secret
    dotted = f"../{b}/secret"
    try:
        direct.delete_object(Bucket=a, Key=dotted)
    except ClientError:
        pass
    with pytest.raises(ClientError) as e:
        rw_a.copy_object(Bucket=a, Key="stolen", CopySource=f"{a}/{dotted}")
    assert code_of(e.value) == "NoSuchKey"
    with pytest.raises(ClientError):
        direct.head_object(Bucket=a, Key="stolen")
    direct.put_object(Bucket=a, Key=dotted, Body=b"A's dotted key")
    rw_a.copy_object(Bucket=a, Key="stolen", CopySource=f"{a}/{dotted}")
    assert direct.get_object(Bucket=a, Key="stolen")["Body"].read() == b"A's dotted key"
    # in scope: allowed (positive control)
    rw_a.copy_object(Bucket=a, Key="copy-of-mine", CopySource={"Bucket": a, "Key": "mine"})
    assert direct.get_object(Bucket=a, Key="copy-of-mine")["Body"].read() == b"A's own object"


def _part_copy(client, bucket: str, source: str):
    up = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    try:
        return client.upload_part_copy(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, CopySource=source)
    finally:
        client.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=up)


# -- 8. radosgw 16.2.15 must survive every copy source a client can send --------------------------------

PCT_KEYS = ["anyfilename%.txt", "x%zz", "a%41", "%", "a%", "100%", "anyfilename%25.txt", "%%", "%E2%82",
            "ünï%c3ødé", "q?versionId=x%"]


@pytest.mark.parametrize("key", PCT_KEYS)
def test_upload_part_copy_from_percent_keys_keeps_upstream_up(gateway, rgw, rgw_s3, bucket, key):
    """radosgw 16.2.15 URL-decodes UploadPartCopy's copy source twice: a key with '%' + two
    non-hex characters made it abort (the whole process), '%41' copied another key. The gateway
    sends RGW a form it decodes to exactly the key asked for."""
    s3 = gateway.client()
    body = os.urandom(6 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key="aA", Body=b"decoy: what a double decode of a%41 reads")
    up = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": key})
    assert rgw.is_running(), "radosgw died"
    assert part["CopyPartResult"]["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    ranged = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": key}, CopySourceRange="bytes=0-99")
    assert ranged["CopyPartResult"]["ETag"].strip('"') == hashlib.md5(body[:100]).hexdigest()
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": ranged["CopyPartResult"]["ETag"]}]})
    assert rgw_s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == body + body[:100]
    # CopyObject decodes once on RGW: it must keep working as before
    s3.copy_object(Bucket=bucket, Key="plain-copy", CopySource={"Bucket": bucket, "Key": key})
    assert rgw_s3.get_object(Bucket=bucket, Key="plain-copy")["Body"].read() == body
    assert rgw.is_running()


@pytest.mark.parametrize("header", ["/{b}/x%zz", "{b}/x%zz", "/{b}/x%25zz", "/{b}/%", "/{b}/x%2525zz"])
def test_raw_copy_source_forms_keep_upstream_up(gateway, rgw, rgw_s3, bucket, header):
    """Whatever spelling a client uses (raw '%', encoded, doubly encoded), on UploadPartCopy and on
    a CopyObject carrying x-amz-copy-source-range (RGW treats that as a copying PUT too)."""
    s3 = gateway.client()
    for k in ("x%zz", "%", "x%25zz"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    source = header.format(b=bucket)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    for path, extra in ((f"/{bucket}/mp?partNumber=1&uploadId={quote(up, safe='')}", {}),
                        (f"/{bucket}/copied", {"x-amz-copy-source-range": "bytes=0-1"})):
        status, _, body = request(gateway, "PUT", path, {"x-amz-copy-source": source, **extra})
        assert rgw.is_running(), f"radosgw died on {source!r} ({path})"
        assert status in (200, 400, 404, 416), (status, body[:300])
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=up)


class _FakeUpstream:
    def __init__(self, dialect, learns="ceph"):
        self.dialect, self.learns, self.probes = dialect, learns, 0

    def has(self, quirk):
        return self.dialect in quirk

    async def send(self, req):
        self.probes += 1
        self.dialect = self.learns

        class _Resp:
            def release(self):
                pass
        return _Resp()


class _FakeExchange:
    def __init__(self, dialect, method="PUT", query=None, headers=None, key="k"):
        self.gw = type("GW", (), {"upstream": _FakeUpstream(dialect)})()
        self.upstream = self.gw.upstream
        self.method, self.key, self.query = method, key, dict(query or {})
        self.upstream_headers = dict(headers or {})


@pytest.mark.parametrize("dialect,query,extra,doubled", [
    ("ceph", {"uploadId": "u", "partNumber": "1"}, {}, True),                       # UploadPartCopy
    ("ceph", {}, {"x-amz-copy-source-range": "bytes=0-1"}, True),                  # copying PUT with a range
    ("ceph", {}, {}, False),                                                        # CopyObject: decoded once
    ("aws", {"uploadId": "u", "partNumber": "1"}, {}, False),
    ("minio", {"uploadId": "u", "partNumber": "1"}, {}, False),
    (None, {"uploadId": "u", "partNumber": "1"}, {}, True),                         # learns it is ceph first
])
def test_copy_source_double_encoding_is_targeted(dialect, query, extra, doubled):
    import asyncio
    from gateway.upstream.dialects import fix_request
    ex = _FakeExchange(dialect, query=query, headers={"x-amz-copy-source": "/b/x%25zz", **extra})
    asyncio.run(fix_request(ex))
    assert ex.upstream_headers["x-amz-copy-source"] == ("/b/x%2525zz" if doubled else "/b/x%25zz")
    assert ex.gw.upstream.probes == (1 if dialect is None else 0)
    plain = _FakeExchange("ceph", query=query, headers={"x-amz-copy-source": "/b/plain", **extra})
    asyncio.run(fix_request(plain))
    assert plain.upstream_headers["x-amz-copy-source"] == "/b/plain"
