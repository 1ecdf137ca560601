"""SigV4 header authentication, checked against requests signed by botocore.

Vectors come from two sources: a real boto3 client whose outgoing request is captured just before it is
sent (so the URL encoding, query building and headers are exactly botocore's), and botocore's
``S3SigV4Auth`` applied to hand-built ``AWSRequest``s for shapes a client never produces (raw '!' in a
path, repeated query keys, region "").
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth import sigv4
from gateway.auth.sigv4 import (AuthResult, authenticate, canonical_query,
                                canonical_uri_candidates, signing_key, uri_encode)
from gateway.errors import S3Error

AK = "AKIDEXAMPLE0001"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
KEYS = {AK: SECRET, "AKOTHER": "other-secret"}


def lookup(ak: str) -> str | None:
    return KEYS.get(ak)


# --------------------------------------------------------------------------------------------------
# helpers shared with the presign / chunked tests


class _Captured(Exception):
    def __init__(self, request):
        self.request = request


def make_client(region: str = "auto", endpoint: str = "http://gw.example:8080", **config):
    client = boto3.client(
        "s3", region_name=region, endpoint_url=endpoint, aws_access_key_id=AK, aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1, "mode": "standard"}, **config))

    def capture(request, **_):
        raise _Captured(request)

    client.meta.events.register("before-send.s3", capture)
    return client


def capture(client, operation: str, **params):
    """The prepared request botocore would send for ``operation`` (never sent)."""
    with pytest.raises(_Captured) as info:
        getattr(client, operation)(**params)
    return info.value.request


def read_body(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return body.read()


def host_of(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    return parts.hostname if parts.port in (None, default) else f"{parts.hostname}:{parts.port}"


def wire(request) -> tuple[str, str, str, dict[str, str]]:
    """(method, raw path, raw query, lowercase headers incl. host) of a prepared botocore request."""
    parts = urlsplit(request.url)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        value = value.decode() if isinstance(value, bytes) else value
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    headers.setdefault("host", host_of(request.url))
    return request.method, parts.path, parts.query, headers


def sign_raw(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"",
             region: str = "auto", secret: str = SECRET, ak: str = AK, payload: str | None = None):
    """botocore's S3SigV4Auth on a hand-built request; returns wire() of it."""
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    if payload is None:
        S3SigV4Auth(Credentials(ak, secret), "s3", region).add_auth(req)
    else:  # the generic signer signs a preset X-Amz-Content-SHA256 verbatim (paths here need no care)
        req.headers["X-Amz-Content-SHA256"] = payload
        SigV4Auth(Credentials(ak, secret), "s3", region).add_auth(req)
    return wire(req.prepare())


def ok(method, path, query, headers, now=None, **kw) -> AuthResult:
    return authenticate(method, path, query, headers, lookup, now, **kw)


def code_of(method, path, query, headers, now=None, **kw) -> str:
    with pytest.raises(S3Error) as info:
        authenticate(method, path, query, headers, lookup, now, **kw)
    return info.value.code


# --------------------------------------------------------------------------------------------------
# canonicalisation primitives


def test_uri_encode():
    assert uri_encode("a b+c/d~e_f.g-h", safe_slash=True) == "a%20b%2Bc/d~e_f.g-h"
    assert uri_encode("a/b", safe_slash=False) == "a%2Fb"
    assert uri_encode("é", safe_slash=False) == "%C3%A9"
    assert uri_encode("*!'()", safe_slash=False) == "%2A%21%27%28%29"
    assert uri_encode("=&;:@$,?#[]", safe_slash=False) == "%3D%26%3B%3A%40%24%2C%3F%23%5B%5D"


def test_canonical_query_rules():
    assert canonical_query("") == ""
    assert canonical_query("uploads") == "uploads="
    assert canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2"
    assert canonical_query("prefix=a+b") == "prefix=a%2Bb"          # '+' is a literal plus
    assert canonical_query("prefix=a%20b") == "prefix=a%20b"
    assert canonical_query("prefix=a%2fb") == "prefix=a%2Fb"        # hex case normalised
    assert canonical_query("k=v=w") == "k=v%3Dw"                    # split on the first '='
    assert canonical_query("x=~._-") == "x=~._-"
    assert canonical_query("e=&d") == "d=&e="
    assert canonical_query("a=1&X-Amz-Signature=ff", exclude_signature=True) == "a=1"
    assert canonical_query("a=1&X-Amz-Signature=ff") == "X-Amz-Signature=ff&a=1"


def test_canonical_uri_candidates():
    assert canonical_uri_candidates("/b/k") == ["/b/k"]
    assert canonical_uri_candidates("") == ["/"]
    assert canonical_uri_candidates("/b/a%20b") == ["/b/a%20b"]
    assert canonical_uri_candidates("/b/a!b") == ["/b/a%21b", "/b/a!b"]
    assert canonical_uri_candidates("/b/a%2Fb") == ["/b/a/b", "/b/a%2Fb"]
    assert canonical_uri_candidates("/b//x/../y") == ["/b//x/../y"]  # never normalised
    assert canonical_uri_candidates("/b/%e2%82%ac") == ["/b/%E2%82%AC", "/b/%e2%82%ac"]


_params = st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=12)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(_params)
def test_canonical_query_matches_botocore(params):
    """Whatever params botocore serialises (percent-encoded, '%20' for space), we rebuild its canonical
    query string from the raw query."""
    raw = "&".join(quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~") for k, v in params)
    expected = SigV4Auth(None, "s3", "auto")._canonical_query_string_params(params)
    assert canonical_query(raw) == expected


def test_signing_key_known_vector_and_cache():
    # AWS documentation example (sigv4-streaming): secret / 20130524 / us-east-1 / s3
    key = signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
    assert len(key) == 32
    before = signing_key.cache_info().hits
    assert signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3") == key
    assert signing_key.cache_info().hits == before + 1
    assert signing_key("x", "20130524", "us-east-1", "s3") != key


# --------------------------------------------------------------------------------------------------
# acceptance: real boto3 requests

WEIRD_KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign+",
    "unicodé/ключ/日本語.bin",
    "a%2Fb",
    "dir//double//slash",
    "../dotdot/./x/..",
    "tilde~name",
    "k" * 1024,
    "é" * 512,                          # 1024 UTF-8 bytes
    "sp€cial !*'()$&,;=@:?#[]{}^`|\\\"<>",
    "trailing/",
]


@pytest.mark.parametrize("region", ["auto", "us-east-1"])
@pytest.mark.parametrize("key", WEIRD_KEYS)
def test_boto3_object_operations_accepted(region, key):
    client = make_client(region)
    for op, params in [
        ("get_object", {"Bucket": "bkt", "Key": key}),
        ("head_object", {"Bucket": "bkt", "Key": key, "VersionId": "v=1&2"}),
        ("put_object", {"Bucket": "bkt", "Key": key, "Body": b"hello world", "ContentType": "text/x y"}),
        ("delete_object", {"Bucket": "bkt", "Key": key}),
        ("create_multipart_upload", {"Bucket": "bkt", "Key": key, "Metadata": {"m": "v  with   spaces"}}),
        ("upload_part", {"Bucket": "bkt", "Key": key, "UploadId": "u/+=id", "PartNumber": 3, "Body": b"x"}),
        ("copy_object", {"Bucket": "bkt", "Key": key, "CopySource": {"Bucket": "src", "Key": key}}),
    ]:
        method, path, query, headers = wire(capture(client, op, **params))
        result = ok(method, path, query, headers)
        assert result.access_key_id == AK
        assert result.region == region
        assert result.scope.endswith(f"/{region}/s3/aws4_request")
        assert result.presigned is False
        assert "host" in result.signed_headers
        assert result.payload_hash == headers["x-amz-content-sha256"]
        assert result.secret_key == SECRET
        assert result.signing_key == signing_key(SECRET, result.amz_date[:8], region, "s3")
        assert SECRET not in repr(result)


@pytest.mark.parametrize("params", [
    {"Prefix": "a b/c+d", "Delimiter": "/"},
    {"Prefix": "x=y&z=w", "StartAfter": "k=v&x", "MaxKeys": 10},
    {"Prefix": "", "EncodingType": "url"},
    {"Prefix": "ünï/çødé", "ContinuationToken": "abc+/=="},
    {"Prefix": "~!*'();:@&=+$,/?#[]"},
])
def test_boto3_list_queries_accepted(params):
    client = make_client()
    method, path, query, headers = wire(capture(client, "list_objects_v2", Bucket="bkt", **params))
    assert ok(method, path, query, headers).access_key_id == AK


def test_boto3_bucket_level_and_post_operations():
    client = make_client("us-east-1")
    for op, params in [
        ("list_buckets", {}),
        ("create_bucket", {"Bucket": "new-bkt"}),
        ("list_multipart_uploads", {"Bucket": "bkt", "Prefix": "p q"}),
        ("list_object_versions", {"Bucket": "bkt", "KeyMarker": "a+b"}),
        ("get_bucket_cors", {"Bucket": "bkt"}),
        ("delete_objects", {"Bucket": "bkt", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b c"}]}}),
        ("complete_multipart_upload", {"Bucket": "bkt", "Key": "k", "UploadId": "id",
                                       "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"e"'}]}}),
    ]:
        method, path, query, headers = wire(capture(client, op, **params))
        assert ok(method, path, query, headers).access_key_id == AK, op


def test_https_streaming_unsigned_trailer_put_accepted():
    """Over HTTPS botocore sends PutObject as STREAMING-UNSIGNED-PAYLOAD-TRAILER aws-chunked."""
    client = make_client(endpoint="https://gw.example")
    request = capture(client, "put_object", Bucket="bkt", Key="k", Body=b"data" * 100)
    method, path, query, headers = wire(request)
    assert headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    result = ok(method, path, query, headers)
    assert result.is_streaming


# --------------------------------------------------------------------------------------------------
# acceptance: hand-built shapes


@pytest.mark.parametrize("region", ["auto", "us-east-1", ""])
def test_regions_accepted_including_empty(region):
    method, path, query, headers = sign_raw("GET", "http://gw.example/bkt/key", region=region)
    result = ok(method, path, query, headers)
    assert result.region == region
    assert result.scope.split("/")[1] == region


def test_raw_path_candidate_for_clients_that_sign_what_they_send():
    # botocore signs the URL path exactly as given: '!' and '(' unencoded here
    method, path, query, headers = sign_raw("GET", "http://gw.example/bkt/a!b(c)")
    assert path == "/bkt/a!b(c)"
    assert ok(method, path, query, headers).access_key_id == AK


def test_raw_query_with_repeated_keys_empty_values_and_bare_keys():
    url = "http://gw.example/bkt?uploads&b=&a=2&a=1&enc=%3D%26&x=a%20b"
    method, path, query, headers = sign_raw("GET", url)
    assert query == "uploads&b=&a=2&a=1&enc=%3D%26&x=a%20b"
    assert ok(method, path, query, headers).access_key_id == AK


def test_raw_query_candidate_for_literal_plus():
    # a client that sends and signs a raw '+': the canonical form (%2B) differs, the raw one matches
    method, path, query, headers = sign_raw("GET", "http://gw.example/bkt?prefix=a+b")
    assert ok(method, path, query, headers).access_key_id == AK


def test_header_value_whitespace_is_canonicalised():
    method, path, query, headers = sign_raw("PUT", "http://gw.example/bkt/k",
                                            headers={"x-amz-meta-a": "  one   two  ", "Content-Type": "a\tb"})
    assert ok(method, path, query, headers).access_key_id == AK


def test_date_header_instead_of_x_amz_date():
    req = AWSRequest(method="GET", url="http://gw.example/bkt/k",
                     headers={"Date": "Thu, 01 Jan 2026 00:00:00 GMT"})
    S3SigV4Auth(Credentials(AK, SECRET), "s3", "auto").add_auth(req)
    method, path, query, headers = wire(req.prepare())
    assert "x-amz-date" not in headers and "date" in headers
    server = dt.datetime.fromtimestamp(sigv4.parse_amz_date(
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())), dt.timezone.utc)
    result = ok(method, path, query, headers, now=server)
    assert result.amz_date[8] == "T" and result.amz_date.endswith("Z")


def test_signed_payload_hash_is_the_one_signed():
    body = b"the body"
    method, path, query, headers = sign_raw("PUT", "http://gw.example/bkt/k", body=body)
    result = ok(method, path, query, headers)
    assert result.payload_hash == hashlib.sha256(body).hexdigest()
    assert not result.is_streaming and not result.is_unsigned_payload


@pytest.mark.parametrize("payload", ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER"])
def test_special_payload_values_signed_verbatim(payload):
    method, path, query, headers = sign_raw("PUT", "http://gw.example/bkt/k", payload=payload)
    assert headers["x-amz-content-sha256"] == payload
    result = ok(method, path, query, headers)
    assert result.payload_hash == payload


# --------------------------------------------------------------------------------------------------
# refusals: one mutation each, exact code


@pytest.fixture
def signed_get():
    client = make_client()
    return wire(capture(client, "list_objects_v2", Bucket="bkt", Prefix="p", MaxKeys=5))


@pytest.fixture
def signed_put():
    client = make_client()
    return wire(capture(client, "put_object", Bucket="bkt", Key="k", Body=b"abc", Metadata={"a": "1"}))


def test_control(signed_get):
    assert ok(*signed_get).access_key_id == AK


def test_method_changed(signed_get):
    method, path, query, headers = signed_get
    assert code_of("HEAD", path, query, headers) == "SignatureDoesNotMatch"
    assert code_of("DELETE", path, query, headers) == "SignatureDoesNotMatch"


def test_path_changed(signed_put):
    method, path, query, headers = signed_put
    assert code_of(method, path + "x", query, headers) == "SignatureDoesNotMatch"
    assert code_of(method, path.replace("/bkt/", "/other/"), query, headers) == "SignatureDoesNotMatch"
    assert code_of(method, path + "/", query, headers) == "SignatureDoesNotMatch"


def test_query_changed(signed_get):
    method, path, query, headers = signed_get
    assert code_of(method, path, query.replace("max-keys=5", "max-keys=6"), headers) == "SignatureDoesNotMatch"
    assert code_of(method, path, query + "&extra=1", headers) == "SignatureDoesNotMatch"
    assert code_of(method, path, query.replace("prefix=p", "prefix=q"), headers) == "SignatureDoesNotMatch"


def test_signed_header_changed_or_removed(signed_put):
    method, path, query, headers = signed_put
    assert code_of(method, path, query, {**headers, "x-amz-meta-a": "2"}) == "SignatureDoesNotMatch"
    assert code_of(method, path, query, {**headers, "host": "evil.example"}) == "SignatureDoesNotMatch"
    assert code_of(method, path, query, {**headers, "x-amz-checksum-crc32": "AAAAAA=="}) \
        == "SignatureDoesNotMatch"
    removed = {k: v for k, v in headers.items() if k != "x-amz-meta-a"}
    assert code_of(method, path, query, removed) == "SignatureDoesNotMatch"
    # a signed non-amz header, removed or changed
    m2, p2, q2, h2 = sign_raw("PUT", "http://gw.example/bkt/k", headers={"Content-Type": "text/plain"})
    assert code_of(m2, p2, q2, {**h2, "content-type": "text/html"}) == "SignatureDoesNotMatch"
    assert code_of(m2, p2, q2, {k: v for k, v in h2.items() if k != "content-type"}) == "SignatureDoesNotMatch"
    # whitespace around a value is not a change (trimmed in the canonical form)
    assert ok(m2, p2, q2, {**h2, "content-type": "  text/plain "})


def test_payload_hash_changed(signed_put):
    method, path, query, headers = signed_put
    assert code_of(method, path, query, {**headers, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}) \
        == "SignatureDoesNotMatch"


def test_unsigned_amz_header_added(signed_put):
    method, path, query, headers = signed_put
    with pytest.raises(S3Error) as info:
        ok(method, path, query, {**headers, "x-amz-acl": "public-read", "x-amz-meta-b": "x"})
    assert info.value.code == "AccessDenied"
    assert info.value.fields["HeadersNotSigned"] == "x-amz-acl, x-amz-meta-b"
    # an unsigned non-amz header is fine (e.g. a proxy's user-agent rewrite)
    assert ok(method, path, query, {**headers, "user-agent": "other", "x-forwarded-for": "1.2.3.4"})
    # opt-out for deployments that need it
    assert ok(method, path, query, {**headers, "x-amz-acl": "public-read"}, require_signed_amz_headers=False)


def test_host_not_signed():
    method, path, query, headers = sign_raw("GET", "http://gw.example/bkt/k")
    auth = headers["authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    with pytest.raises(S3Error) as info:
        ok(method, path, query, {**headers, "authorization": auth})
    assert info.value.code == "AccessDenied" and info.value.fields["HeadersNotSigned"] == "host"


def test_wrong_secret_and_unknown_key(signed_get):
    method, path, query, headers = signed_get
    with pytest.raises(S3Error) as info:
        authenticate(method, path, query, headers, lambda ak: "not-the-secret")
    assert info.value.code == "SignatureDoesNotMatch"
    assert "not-the-secret" not in info.value.message and SECRET not in str(info.value.fields)
    assert info.value.fields["AWSAccessKeyId"] == AK
    with pytest.raises(S3Error) as info:
        authenticate(method, path, query, headers, lambda ak: None)
    assert info.value.code == "InvalidAccessKeyId" and info.value.status == 403


def test_signature_changed(signed_get):
    method, path, query, headers = signed_get
    auth = headers["authorization"]
    sig = auth.rsplit("Signature=", 1)[1]
    flipped = auth[:-1] + ("0" if sig[-1] != "0" else "1")
    assert code_of(method, path, query, {**headers, "authorization": flipped}) == "SignatureDoesNotMatch"
    assert code_of(method, path, query, {**headers, "authorization": auth[:-2]}) == "SignatureDoesNotMatch"
    assert code_of(method, path, query, {**headers, "authorization": auth[:-1] + "é"}) == "SignatureDoesNotMatch"
    # uppercase hex of the right signature is tolerated
    upper = auth[: -64] + sig.upper()
    assert ok(method, path, query, {**headers, "authorization": upper}).signature == sig


@pytest.mark.parametrize("minutes, code", [(-16, "RequestTimeTooSkewed"), (16, "RequestTimeTooSkewed"),
                                           (-14, None), (14, None)])
def test_clock_skew(signed_get, minutes, code):
    method, path, query, headers = signed_get
    request_ts = sigv4.parse_amz_date(headers["x-amz-date"])
    now = dt.datetime.fromtimestamp(request_ts, dt.timezone.utc) + dt.timedelta(minutes=minutes)
    if code is None:
        assert ok(method, path, query, headers, now=now)
    else:
        with pytest.raises(S3Error) as info:
            ok(method, path, query, headers, now=now)
        assert info.value.code == code and info.value.status == 403
        assert info.value.fields["MaxAllowedSkewMilliseconds"] == "900000"
        assert info.value.fields["RequestTime"] == headers["x-amz-date"]


def test_custom_skew(signed_get):
    method, path, query, headers = signed_get
    now = dt.datetime.fromtimestamp(sigv4.parse_amz_date(headers["x-amz-date"]), dt.timezone.utc)
    assert code_of(method, path, query, headers, now=now + dt.timedelta(seconds=61),
                   skew_seconds=60) == "RequestTimeTooSkewed"
    assert ok(method, path, query, headers, now=(now + dt.timedelta(seconds=59)).replace(tzinfo=None),
              skew_seconds=60)


def test_no_credentials_is_access_denied():
    assert code_of("GET", "/bkt/k", "", {"host": "gw.example"}) == "AccessDenied"


def test_sigv2_is_refused():
    headers = {"host": "gw.example", "authorization": "AWS AKID:c2lnbmF0dXJl", "date": "x"}
    with pytest.raises(S3Error) as info:
        ok("GET", "/bkt/k", "", headers)
    assert info.value.code == "InvalidRequest" and "AWS4-HMAC-SHA256" in info.value.message
    assert code_of("GET", "/bkt/k", "AWSAccessKeyId=AK&Expires=1&Signature=x", {"host": "h"}) == "InvalidRequest"


def test_other_schemes():
    assert code_of("GET", "/", "", {"authorization": "Bearer abc"}) == "InvalidArgument"
    assert code_of("GET", "/", "", {"authorization": "AWS4-ECDSA-P256-SHA256 Credential=x"}) == "NotImplemented"


@pytest.mark.parametrize("mutate", [
    lambda a: a.replace("Credential=", "Credentials="),
    lambda a: a.replace(", SignedHeaders=", ", Signed="),
    lambda a: a.split(", Signature=")[0],
    lambda a: a.replace("/s3/aws4_request", "/s3"),
    lambda a: a.replace("/aws4_request", "/aws5_request"),
    lambda a: a.replace("/s3/", "/ec2/"),
    lambda a: a.replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256,"),
    lambda a: a.replace("SignedHeaders=host", "SignedHeaders=;host"),
    lambda a: a.replace(f"Credential={AK}/", "Credential=/"),
])
def test_malformed_authorization(signed_get, mutate):
    method, path, query, headers = signed_get
    assert code_of(method, path, query, {**headers, "authorization": mutate(headers["authorization"])}) \
        == "AuthorizationHeaderMalformed"


def test_scope_date_must_match_x_amz_date(signed_get):
    method, path, query, headers = signed_get
    ts = sigv4.parse_amz_date(headers["x-amz-date"]) + 86400
    other = time.strftime("%Y%m%d", time.gmtime(ts))
    auth = headers["authorization"].replace(f"/{headers['x-amz-date'][:8]}/", f"/{other}/")
    assert code_of(method, path, query, {**headers, "authorization": auth}) == "AuthorizationHeaderMalformed"


def test_bad_or_missing_date(signed_get):
    method, path, query, headers = signed_get
    for bad in ["20260101T000000", "2026-01-01T00:00:00Z", "20261301T000000Z", "２０２６0101T000000Z"]:
        with pytest.raises(S3Error) as info:
            ok(method, path, query, {**headers, "x-amz-date": bad})
        assert info.value.code == "AccessDenied" and "valid Date or x-amz-date" in info.value.message
    without = {k: v for k, v in headers.items() if k != "x-amz-date"}
    assert code_of(method, path, query, without) == "AccessDenied"


def test_content_sha256_required_and_validated(signed_get):
    method, path, query, headers = signed_get
    without = {k: v for k, v in headers.items() if k != "x-amz-content-sha256"}
    with pytest.raises(S3Error) as info:
        ok(method, path, query, without)
    assert info.value.code == "InvalidRequest" and "x-amz-content-sha256" in info.value.message
    for bad in ["GIBBERISH", "abc", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85z"]:
        with pytest.raises(S3Error) as info:
            ok(method, path, query, {**headers, "x-amz-content-sha256": bad})
        assert info.value.code == "InvalidArgument"
        assert info.value.fields["ArgumentName"] == "x-amz-content-sha256"
    for ecdsa in ["STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"]:
        assert code_of(method, path, query, {**headers, "x-amz-content-sha256": ecdsa}) == "NotImplemented"


def test_header_and_query_auth_together(signed_get):
    method, path, query, headers = signed_get
    q = query + "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    assert code_of(method, path, q, headers) == "InvalidArgument"


def test_error_messages_never_contain_the_secret(signed_get):
    method, path, query, headers = signed_get
    for mutated in [{**headers, "x-amz-meta-z": "1"}, {**headers, "host": "x"}]:
        with pytest.raises(S3Error) as info:
            ok(method, path, query, mutated)
        blob = info.value.to_xml("rid").decode()
        assert SECRET not in blob
        assert headers["authorization"].rsplit("Signature=", 1)[1] not in blob
