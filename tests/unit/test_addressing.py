"""addressing: Host + raw path → bucket and key, never normalised."""
import pytest

from gateway.addressing import Address, parse, parse_query
from gateway.errors import S3Error

D = ("s3.example.test",)


@pytest.mark.parametrize("host,path,want", [
    ("127.0.0.1:8080", "/", Address(None, None)),
    ("127.0.0.1:8080", "/b", Address("b", None)),
    ("127.0.0.1:8080", "/b/", Address("b", None)),
    ("127.0.0.1:8080", "/b/a/../c", Address("b", "a/../c")),
    ("127.0.0.1:8080", "/b/a//c/", Address("b", "a//c/")),
    ("127.0.0.1:8080", "/b/pct%2Fslash", Address("b", "pct/slash")),
    ("127.0.0.1:8080", "/b/sp%20ace+plus", Address("b", "sp ace+plus")),
    ("127.0.0.1:8080", "/b/%C3%BC", Address("b", "ü")),
    ("bkt.s3.example.test:8080", "/", Address("bkt", None, True)),
    ("bkt.s3.example.test", "/k/../x", Address("bkt", "k/../x", True)),
    ("BKT.S3.Example.Test", "/k", Address("bkt", "k", True)),
    ("s3.example.test", "/b/k", Address("b", "k")),           # the base domain itself: path style
    ("other.test", "/b/k", Address("b", "k")),
])
def test_parse(host, path, want):
    assert parse(host, path, D) == want


@pytest.mark.parametrize("path", ["/b/%FF", "/%C3"])
def test_invalid_utf8_is_invalid_uri(path):
    with pytest.raises(S3Error) as e:
        parse("h", path, D)
    assert e.value.code == "InvalidURI" and e.value.status == 400


def test_relative_target_refused():
    with pytest.raises(S3Error):
        parse("h", "b/k", D)


def test_query():
    assert parse_query("") == {}
    assert parse_query("uploads") == {"uploads": ""}
    assert parse_query("prefix=a%2Fb&list-type=2&x=") == {"prefix": "a/b", "list-type": "2", "x": ""}
    assert parse_query("a=1&a=2") == {"a": "1"}
