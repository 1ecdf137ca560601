"""The parsed-Authorization cache: a header that shares a cached prefix still yields its own
signature, and a header whose Signature is not the last component is parsed in full."""
import pytest

from gateway.auth import sigv4
from gateway.errors import S3Error

PREFIX = ("AWS4-HMAC-SHA256 Credential=AKID/20260101/auto/s3/aws4_request, "
          "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=")


def test_same_prefix_other_signature():
    sigv4._PARSED.clear()
    first = sigv4._parse_authorization(PREFIX + "a" * 64)
    second = sigv4._parse_authorization(PREFIX + "b" * 64)
    assert first[3] == "a" * 64 and second[3] == "b" * 64
    assert first[:3] == second[:3] == ("AKID", ["20260101", "auto", "s3", "aws4_request"],
                                       ("host", "x-amz-content-sha256", "x-amz-date"))
    assert len(sigv4._PARSED) == 1


def test_cached_scope_list_is_a_copy():
    sigv4._PARSED.clear()
    sigv4._parse_authorization(PREFIX + "a" * 64)[1].append("mutated")
    assert sigv4._parse_authorization(PREFIX + "c" * 64)[1] == ["20260101", "auto", "s3", "aws4_request"]


def test_trailing_component_is_not_served_from_the_cache():
    sigv4._PARSED.clear()
    sigv4._parse_authorization(PREFIX + "a" * 64)
    with pytest.raises(S3Error) as e:   # a repeated component is malformed, cached prefix or not
        sigv4._parse_authorization(PREFIX + "a" * 64 + ", Signature=" + "b" * 64)
    assert e.value.code == "AuthorizationHeaderMalformed"
