"""forwarding: the allow-list of request headers that go upstream, and the refused lookalike names."""
import pytest

from gateway import forwarding
from gateway.errors import S3Error
from gateway.rules.profile import list_profiles, load_profile

SIGNED = ("host", "x-amz-content-sha256", "x-amz-date", "x-amz-copy-source", "x-amz-acl", "x-amz-meta-a_b",
          "x-amz-meta-x", "x-amz-storage-class")


@pytest.mark.parametrize("name", [
    "x_amz_copy_source", "x_amz_acl", "x_amz_meta_big", "x-amz_meta-big", "x-amz-meta_big", "x_amz_grant_read",
    "content_type", "content_md5", "if_match", "if_none_match", "cf_create_bucket_if_missing",
    "x_forwarded_for", "x_real_ip", "transfer_encoding", "cache_control", "proxy_authorization",
])
def test_lookalike_names_are_refused(name):
    with pytest.raises(S3Error) as e:
        forwarding.check_names({"host": "h", name: "v"})
    assert (e.value.code, e.value.status) == ("InvalidArgument", 400)
    assert e.value.fields["ArgumentName"] == name


@pytest.mark.parametrize("name", ["x-amz-meta-my_key", "x-amz-meta-a_b_c", "x_custom_header", "my_header",
                                  "ran_ge", "x-amz-acl", "content-type"])
def test_other_names_pass(name):
    forwarding.check_names({name: "v"})


def test_only_the_allow_list_goes_upstream():
    headers = {
        "host": "gw", "authorization": "AWS4-HMAC-SHA256 …", "x-amz-date": "20260101T000000Z",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-security-token": "t", "content-length": "3",
        "x-amz-decoded-content-length": "3", "x-amz-trailer": "x-amz-checksum-crc32", "expect": "100-continue",
        "connection": "keep-alive", "transfer-encoding": "chunked", "user-agent": "ua", "cookie": "c=1",
        "x-forwarded-for": "1.2.3.4", "cf-create-bucket-if-missing": "true", "x-custom": "1",
        "x_custom": "1", "x-amz-meta-x": "1", "x-amz-meta-a_b": "2", "x-amz-acl": "private",
        "x-amz-storage-class": "STANDARD", "x-amz-unknown-thing": "1", "content-type": "text/plain",
        "content-encoding": "aws-chunked,gzip", "cache-control": "no-cache", "if-match": '"e"',
    }
    got = forwarding.forwarded(headers, SIGNED + ("x-amz-unknown-thing",), "PUT")
    assert got == {"x-amz-meta-x": "1", "x-amz-meta-a_b": "2", "x-amz-acl": "private",
                   "x-amz-storage-class": "STANDARD", "content-type": "text/plain", "content-encoding": "gzip",
                   "cache-control": "no-cache", "if-match": '"e"'}


def test_unsigned_amz_headers_never_go_upstream():
    # the verifier refuses unsigned x-amz-* already; the allow-list does not rely on it
    got = forwarding.forwarded({"x-amz-acl": "public-read", "x-amz-meta-a": "1", "x-amz-copy-source": "/b/k"},
                               ("host",), "PUT")
    assert got == {}


def test_aws_chunked_alone_is_dropped():
    assert forwarding.forwarded({"content-encoding": "aws-chunked"}, (), "PUT") == {}


@pytest.mark.parametrize("value,want", [
    ("bytes=0-1", "bytes=0-1"), ("bytes=5-", "bytes=5-"), ("bytes=-5", "bytes=-5"), ("Bytes=0-1", "bytes=0-1"),
    (" bytes=0-9 ", "bytes=0-9"), ("bytes=3-3", "bytes=3-3"),
    ("items=0-1", None), ("bytes=garbage", None), ("bytes=0-1,3-4", None), ("bytes=3-1", None),
    ("bytes=", None), ("bytes=-", None), ("bytes= 0-1", None), ("bytes=0x1-2", None), ("bytes=1_0-2", None),
    ("bytes=²-3", None), ("bytes=٣-4", None), ("bytes=0-1,", None), ("bytes=" + "9" * 20 + "-", None),
])
def test_byte_range(value, want):
    assert forwarding.byte_range(value) == want


def test_range_forwarded_on_reads_only():
    assert forwarding.forwarded({"range": "bytes=0-1"}, (), "GET") == {"range": "bytes=0-1"}
    assert forwarding.forwarded({"range": "bytes=0-1"}, (), "HEAD") == {"range": "bytes=0-1"}
    assert forwarding.forwarded({"range": "bytes=0-1"}, (), "PUT") == {}
    assert forwarding.forwarded({"range": "items=0-1"}, (), "GET") == {}


# headers a profile names that the gateway consumes itself or re-creates: never forwarded
_CONSUMED = {"authorization", "host", "content-length", "date", "expect", "x-amz-content-sha256", "x-amz-date",
             "x-amz-security-token"}


@pytest.mark.parametrize("name", list_profiles())
def test_the_allow_list_knows_every_request_header_a_profile_names(name):
    profile = load_profile(name)
    for op_name, op in profile.spec.operations.items():
        for feature in op.features:
            for header in feature.headers:
                if header.startswith("cf-") or header in _CONSUMED:
                    continue
                if header.endswith("*"):
                    prefix = header[:-1]
                    assert any(h.startswith(prefix) for h in forwarding.AMZ) or \
                        any(p.startswith(prefix) or prefix.startswith(p) for p in forwarding.AMZ_PREFIXES), \
                        (op_name, header)
                    continue
                assert header in forwarding.STANDARD or header in forwarding.AMZ or \
                    header.startswith(forwarding.AMZ_PREFIXES), (name, op_name, header)
