"""addressing: Host + raw path → bucket and key, never normalised."""
import pytest

from gateway.addressing import Address, parse, parse_query
from gateway.errors import S3Error

D = ("s3.example.test",)


@pytest.mark.parametrize("host,path,want", [
    ("127.0.0.1:8080", "/", Address(None, None)),
    ("127.0.0.1:8080", "/bkt", Address("bkt", None)),
    ("127.0.0.1:8080", "/bkt/", Address("bkt", None)),
    ("127.0.0.1:8080", "/bkt/a/../c", Address("bkt", "a/../c")),
    ("127.0.0.1:8080", "/bkt/a//c/", Address("bkt", "a//c/")),
    ("127.0.0.1:8080", "/bkt/pct%2Fslash", Address("bkt", "pct/slash")),
    ("127.0.0.1:8080", "/bkt/sp%20ace+plus", Address("bkt", "sp ace+plus")),
    ("127.0.0.1:8080", "/bkt/%C3%BC", Address("bkt", "ü")),
    ("bkt.s3.example.test:8080", "/", Address("bkt", None, True)),
    ("bkt.s3.example.test", "/k/../x", Address("bkt", "k/../x", True)),
    ("BKT.S3.Example.Test", "/k", Address("bkt", "k", True)),
    ("s3.example.test", "/bkt/k", Address("bkt", "k")),           # the base domain itself: path style
    ("other.test", "/bkt/k", Address("bkt", "k")),
])
def test_parse(host, path, want):
    assert parse(host, path, D) == want


@pytest.mark.parametrize("path", ["/bkt/%FF", "/%C3"])
def test_invalid_utf8_is_invalid_uri(path):
    with pytest.raises(S3Error) as e:
        parse("h", path, D)
    assert e.value.code == "InvalidURI" and e.value.status == 400


@pytest.mark.parametrize("path", [
    "/alpha%2Fkey", "/alpha%2fkey", "/r2gw-internal%2Fparts/x", "/Alpha/k", "/al_pha/k", "/al%20pha",
    "/ab/k", "/" + "a" * 64, "/-ab/k", "/ab-/k", "/./k", "/../k", "/%2E%2E/k", "/alpha%3Fx/k",
    "/tenant:alpha/k", "/%C3%BCber/k", "/alpha%252Fkey", "//k", "/alpha%00/k",
])
def test_bucket_outside_s3_naming_is_invalid_bucket_name(path):
    with pytest.raises(S3Error) as e:
        parse("127.0.0.1:8080", path, D)
    assert e.value.code == "InvalidBucketName" and e.value.status == 400


@pytest.mark.parametrize("host", ["al_pha.s3.example.test", "a.s3.example.test", "-ab.s3.example.test",
                                  "a*b.s3.example.test"])
def test_virtual_hosted_bucket_outside_s3_naming(host):
    with pytest.raises(S3Error) as e:
        parse(host, "/k", D)
    assert e.value.code == "InvalidBucketName"


def test_relative_target_refused():
    with pytest.raises(S3Error):
        parse("h", "b/k", D)


def test_query():
    assert parse_query("") == {}
    assert parse_query("uploads") == {"uploads": ""}
    assert parse_query("prefix=a%2Fb&list-type=2&x=") == {"prefix": "a/b", "list-type": "2", "x": ""}
    assert parse_query("a=1&a=2") == {"a": "1"}
