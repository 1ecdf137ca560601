"""Presigned URLs (SigV4 query-string form), checked against botocore's generate_presigned_url."""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.auth import sigv4
from gateway.auth.presign import MAX_EXPIRES, strip_presign_params
from gateway.auth.sigv4 import authenticate
from gateway.errors import S3Error
from tests.unit.test_sigv4 import AK, SECRET, WEIRD_KEYS, host_of, lookup, make_client


def presigned(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, parts.query, {"host": host_of(url)}


def url_for(operation="get_object", region="auto", expires=3600, **params):
    params.setdefault("Bucket", "bkt")
    if operation not in ("list_objects_v2",):
        params.setdefault("Key", "obj")
    return make_client(region).generate_presigned_url(operation, Params=params, ExpiresIn=expires)


def ok(method, path, query, headers, now=None):
    return authenticate(method, path, query, headers, lookup, now)


def error(method, path, query, headers, now=None) -> S3Error:
    with pytest.raises(S3Error) as info:
        authenticate(method, path, query, headers, lookup, now)
    return info.value


def date_of(query: str) -> dt.datetime:
    amz = dict(p.split("=", 1) for p in query.split("&"))["X-Amz-Date"]
    return dt.datetime.fromtimestamp(sigv4.parse_amz_date(amz), dt.timezone.utc)


def replace_param(query: str, name: str, value: str) -> str:
    return "&".join(f"{name}={value}" if p.split("=", 1)[0] == name else p for p in query.split("&"))


# --------------------------------------------------------------------------------------------------
# acceptance


@pytest.mark.parametrize("region", ["auto", "us-east-1"])
@pytest.mark.parametrize("key", WEIRD_KEYS)
def test_presigned_get_put_head_accepted(region, key):
    for op, method in [("get_object", "GET"), ("put_object", "PUT"), ("head_object", "HEAD"),
                       ("delete_object", "DELETE")]:
        path, query, headers = presigned(url_for(op, region, Key=key))
        result = ok(method, path, query, headers)
        assert result.presigned and result.access_key_id == AK and result.region == region
        assert result.payload_hash == "UNSIGNED-PAYLOAD"
        assert result.signed_headers == ("host",)
        assert SECRET not in repr(result)


@pytest.mark.parametrize("params", [
    {"ResponseContentDisposition": 'attachment; filename="a b=c&d.txt"', "ResponseContentType": "text/x+y"},
    {"VersionId": "v/+=1", "PartNumber": 2},
    {"ResponseCacheControl": "no-cache", "ResponseExpires": dt.datetime(2030, 1, 1)},
])
def test_presigned_with_extra_query_params(params):
    path, query, headers = presigned(url_for("get_object", **params))
    assert ok("GET", path, query, headers).presigned


def test_presigned_list_and_multipart():
    path, query, headers = presigned(url_for("list_objects_v2", Prefix="a b+c", Delimiter="/"))
    assert ok("GET", path, query, headers)
    path, query, headers = presigned(url_for("upload_part", UploadId="id+/=", PartNumber=7))
    assert ok("PUT", path, query, headers)


@pytest.mark.parametrize("expires", [1, 60, 3600, MAX_EXPIRES])
def test_expires_range_accepted(expires):
    path, query, headers = presigned(url_for(expires=expires))
    assert ok("GET", path, query, headers)


def test_presigned_with_signed_content_type_and_region_empty():
    req = AWSRequest(method="PUT", url="http://gw.example/bkt/k%20x", headers={"Content-Type": "image/png"})
    S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", "", expires=300).add_auth(req)
    path, query, headers = presigned(req.url)
    headers["content-type"] = "image/png"
    result = ok("PUT", path, query, headers)
    assert result.region == "" and result.signed_headers == ("content-type", "host")
    # the signed header must be sent as signed
    assert error("PUT", path, query, {**headers, "content-type": "text/html"}).code == "SignatureDoesNotMatch"
    assert error("PUT", path, query, {"host": headers["host"]}).code == "SignatureDoesNotMatch"


def test_security_token_is_an_ordinary_signed_param():
    req = AWSRequest(method="GET", url="http://gw.example/bkt/k")
    S3SigV4QueryAuth(Credentials(AK, SECRET, "tok/en+=="), "s3", "auto").add_auth(req)
    path, query, headers = presigned(req.url)
    assert "X-Amz-Security-Token=" in query
    assert ok("GET", path, query, headers)
    assert error("GET", path, replace_param(query, "X-Amz-Security-Token", "other"), headers).code \
        == "SignatureDoesNotMatch"


def test_content_sha256_query_param():
    url = url_for() + "&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD"
    # appended after signing: the canonical query changes, so the signature no longer matches
    path, query, headers = presigned(url)
    assert error("GET", path, query, headers).code == "SignatureDoesNotMatch"
    bad = url_for() + "&X-Amz-Content-Sha256=nonsense"
    path, query, headers = presigned(bad)
    assert error("GET", path, query, headers).code == "InvalidArgument"


# --------------------------------------------------------------------------------------------------
# a presigned URL cannot be widened


@pytest.fixture
def get_url():
    return presigned(url_for("get_object", Key="dir/obj.txt", ResponseContentType="text/plain"))


def test_control(get_url):
    assert ok("GET", *get_url)


def test_method_cannot_change(get_url):
    path, query, headers = get_url
    for method in ("PUT", "DELETE", "HEAD", "POST"):
        assert error(method, path, query, headers).code == "SignatureDoesNotMatch"


def test_path_cannot_change(get_url):
    path, query, headers = get_url
    for other in (path + "2", path.replace("dir/", ""), path.replace("/bkt/", "/bkt2/"), path + "/",
                  path.replace("/", "//", 2)):
        assert error("GET", other, query, headers).code == "SignatureDoesNotMatch", other


def test_query_cannot_change(get_url):
    path, query, headers = get_url
    assert error("GET", path, query + "&versionId=1", headers).code == "SignatureDoesNotMatch"
    assert error("GET", path, replace_param(query, "response-content-type", "text%2Fhtml"), headers).code \
        == "SignatureDoesNotMatch"
    dropped = "&".join(p for p in query.split("&") if not p.startswith("response-content-type"))
    assert error("GET", path, dropped, headers).code == "SignatureDoesNotMatch"
    assert error("GET", path, replace_param(query, "X-Amz-Expires", "3601"), headers).code \
        == "SignatureDoesNotMatch"


def test_host_cannot_change(get_url):
    path, query, headers = get_url
    assert error("GET", path, query, {"host": "other.example"}).code == "SignatureDoesNotMatch"


def test_unsigned_amz_header_refused(get_url):
    path, query, headers = get_url
    e = error("GET", path, query, {**headers, "x-amz-server-side-encryption-customer-key": "k"})
    assert e.code == "AccessDenied" and e.fields["HeadersNotSigned"] == "x-amz-server-side-encryption-customer-key"
    # ordinary unsigned headers are fine (browsers add many)
    assert ok("GET", path, query, {**headers, "user-agent": "Mozilla", "range": "bytes=0-1"})


def test_host_must_be_signed():
    req = AWSRequest(method="GET", url="http://gw.example/bkt/k")
    S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", "auto").add_auth(req)
    path, query, headers = presigned(req.url)
    query = replace_param(query, "X-Amz-SignedHeaders", "x-amz-date")
    e = error("GET", path, query, {**headers, "x-amz-date": "x"})
    assert e.code == "AccessDenied" and e.fields["HeadersNotSigned"] == "host"


def test_wrong_secret_and_unknown_key(get_url):
    path, query, headers = get_url
    with pytest.raises(S3Error) as info:
        authenticate("GET", path, query, headers, lambda ak: "wrong")
    assert info.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as info:
        authenticate("GET", path, query, headers, lambda ak: None)
    assert info.value.code == "InvalidAccessKeyId"


def test_signature_tampered(get_url):
    path, query, headers = get_url
    sig = dict(p.split("=", 1) for p in query.split("&"))["X-Amz-Signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert error("GET", path, replace_param(query, "X-Amz-Signature", flipped), headers).code \
        == "SignatureDoesNotMatch"


# --------------------------------------------------------------------------------------------------
# time


def test_expired():
    path, query, headers = presigned(url_for(expires=60))
    signed_at = date_of(query)
    assert ok("GET", path, query, headers, now=signed_at + dt.timedelta(seconds=60))
    e = error("GET", path, query, headers, now=signed_at + dt.timedelta(seconds=61))
    assert (e.code, e.status, e.message) == ("AccessDenied", 403, "Request has expired")
    assert e.fields["X-Amz-Expires"] == "60"
    assert e.fields["Expires"] == (signed_at + dt.timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert e.fields["ServerTime"] == (signed_at + dt.timedelta(seconds=61)).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = e.to_xml("rid").decode()
    assert "<X-Amz-Expires>60</X-Amz-Expires>" in xml


def test_negative_expires_is_expired():
    """A negative X-Amz-Expires names a URL that expired before it was signed: AccessDenied."""
    path, query, headers = presigned(url_for())
    signed_at = date_of(query)
    e = error("GET", path, replace_param(query, "X-Amz-Expires", "-5"), headers, now=signed_at)
    assert (e.code, e.status, e.message) == ("AccessDenied", 403, "Request has expired")
    assert e.fields["X-Amz-Expires"] == "-5"
    assert e.fields["Expires"] == (signed_at - dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_old_but_unexpired_url_is_not_skew_checked():
    path, query, headers = presigned(url_for(expires=7200))
    assert ok("GET", path, query, headers, now=date_of(query) + dt.timedelta(minutes=100))


def test_not_yet_valid():
    path, query, headers = presigned(url_for(expires=3600))
    signed_at = date_of(query)
    assert ok("GET", path, query, headers, now=signed_at - dt.timedelta(minutes=14))
    e = error("GET", path, query, headers, now=signed_at - dt.timedelta(minutes=16))
    assert (e.code, e.message) == ("AccessDenied", "Request is not yet valid")


@pytest.mark.parametrize("value, fragment", [
    (str(MAX_EXPIRES + 1), "less than a week"), ("0", "positive"),
    ("abc", "number"), ("", "number"), ("1e3", "number"), ("--5", "number"), ("%2B5", "number"),
    ("１２", "number"),
])
def test_bad_expires(value, fragment):
    path, query, headers = presigned(url_for())
    e = error("GET", path, replace_param(query, "X-Amz-Expires", value), headers)
    assert e.code == "AuthorizationQueryParametersError" and fragment in e.message


def test_expires_over_a_week_even_when_correctly_signed():
    req = AWSRequest(method="GET", url="http://gw.example/bkt/k")
    S3SigV4QueryAuth(Credentials(AK, SECRET), "s3", "auto", expires=MAX_EXPIRES + 1).add_auth(req)
    path, query, headers = presigned(req.url)
    assert error("GET", path, query, headers).code == "AuthorizationQueryParametersError"


# --------------------------------------------------------------------------------------------------
# malformed parameters


@pytest.mark.parametrize("name", ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                  "X-Amz-SignedHeaders", "X-Amz-Signature"])
def test_missing_param(name):
    path, query, headers = presigned(url_for())
    dropped = "&".join(p for p in query.split("&") if p.split("=", 1)[0] != name)
    e = error("GET", path, dropped, headers)
    assert e.code == "AuthorizationQueryParametersError", name


@pytest.mark.parametrize("name, value, code", [
    ("X-Amz-Algorithm", "AWS4-HMAC-SHA1", "AuthorizationQueryParametersError"),
    ("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256", "NotImplemented"),
    ("X-Amz-Credential", "nope", "AuthorizationQueryParametersError"),
    ("X-Amz-Credential", quote(f"{AK}/20260101/auto/ec2/aws4_request", safe=""),
     "AuthorizationQueryParametersError"),
    ("X-Amz-Credential", quote(f"{AK}/20260101/auto/s3/aws5_request", safe=""),
     "AuthorizationQueryParametersError"),
    ("X-Amz-Date", "2026-01-01T00:00:00Z", "AuthorizationQueryParametersError"),
    ("X-Amz-SignedHeaders", "", "AuthorizationQueryParametersError"),
])
def test_malformed_param(name, value, code):
    path, query, headers = presigned(url_for())
    assert error("GET", path, replace_param(query, name, value), headers).code == code


def test_credential_date_must_match():
    path, query, headers = presigned(url_for())
    params = dict(p.split("=", 1) for p in query.split("&"))
    cred = params["X-Amz-Credential"].replace(params["X-Amz-Date"][:8], "20000101")
    assert error("GET", path, replace_param(query, "X-Amz-Credential", cred), headers).code \
        == "AuthorizationQueryParametersError"


def test_duplicate_auth_param():
    path, query, headers = presigned(url_for())
    assert error("GET", path, query + "&X-Amz-Signature=" + "0" * 64, headers).code \
        == "AuthorizationQueryParametersError"


def test_signature_without_algorithm_is_not_anonymous():
    assert error("GET", "/bkt/k", "X-Amz-Signature=abc", {"host": "h"}).code == "AuthorizationQueryParametersError"


# --------------------------------------------------------------------------------------------------
# strip_presign_params


def test_strip_presign_params_keeps_the_rest_byte_for_byte():
    path, query, headers = presigned(url_for("get_object", VersionId="v/+=1",
                                             ResponseContentDisposition="a b;c=d"))
    stripped = strip_presign_params(query)
    assert "X-Amz-" not in stripped
    kept = [p for p in query.split("&") if not p.startswith("X-Amz-")]
    assert stripped == "&".join(kept)
    assert "versionId=v%2F%2B%3D1" in stripped


def test_strip_presign_params_edge_cases():
    assert strip_presign_params("") == ""
    assert strip_presign_params("uploads") == "uploads"
    assert strip_presign_params("a=1&X-Amz-Signature=x&b=%2B&X-Amz-Security-Token=t&c") == "a=1&b=%2B&c"
    assert strip_presign_params("X-Amz-Algorithm=x") == ""
    assert strip_presign_params("X%2DAmz-Date=1&x-amz-date=2") == "x-amz-date=2"  # names are case-sensitive
    assert strip_presign_params("X-Amz-Meta-Foo=1&X-Amz-Expires=2") == "X-Amz-Meta-Foo=1"
