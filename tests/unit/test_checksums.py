"""Flexible checksums must equal botocore's (the values clients put in x-amz-checksum-*)."""
from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.httpchecksum import (Crc32Checksum, CrtCrc32cChecksum, CrtCrc32Checksum, CrtCrc64NvmeChecksum,
                                   Sha1Checksum, Sha256Checksum)
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.checksums import (ALGORITHMS, DIGEST_SIZES, algorithm_from_header, compute_b64, decode_b64,
                               header_name, new_checksum)

BOTOCORE = {
    "crc32": Crc32Checksum, "crc32c": CrtCrc32cChecksum, "crc64nvme": CrtCrc64NvmeChecksum,
    "sha1": Sha1Checksum, "sha256": Sha256Checksum,
}


def botocore_b64(algorithm: str, data: bytes) -> str:
    c = BOTOCORE[algorithm]()
    c.update(data)
    return c.b64digest()


def test_algorithms():
    assert set(ALGORITHMS) == set(BOTOCORE) == set(DIGEST_SIZES)


@pytest.mark.parametrize("algorithm", sorted(BOTOCORE))
@pytest.mark.parametrize("data", [b"", b"a", b"hello world", bytes(range(256)) * 100, b"a" * 66560])
def test_matches_botocore(algorithm, data):
    c = new_checksum(algorithm)
    c.update(data)
    assert c.digest_b64() == botocore_b64(algorithm, data)
    assert len(c.digest()) == DIGEST_SIZES[algorithm]
    assert compute_b64(algorithm.upper(), data) == botocore_b64(algorithm, data)


@settings(max_examples=200, deadline=None)
@given(algorithm=st.sampled_from(sorted(BOTOCORE)), data=st.binary(max_size=5000),
       cuts=st.lists(st.integers(0, 5000), max_size=8))
def test_incremental_any_split(algorithm, data, cuts):
    c = new_checksum(algorithm)
    last = 0
    for cut in sorted(min(x, len(data)) for x in cuts) + [len(data)]:
        c.update(memoryview(data)[last:cut])   # views, as the chunked decoder passes them
        last = cut
    assert c.digest_b64() == botocore_b64(algorithm, data)


def test_known_values():
    # AWS documentation (sigv4-streaming-trailers): CRC32C of 66560 x 'a'
    assert compute_b64("crc32c", b"a" * 66560) == "sOO8/Q=="
    assert compute_b64("crc32", b"") == "AAAAAA=="
    assert compute_b64("sha256", b"") == base64.b64encode(hashlib.sha256().digest()).decode()
    # crt's crc32 agrees with zlib's
    c = CrtCrc32Checksum()
    c.update(b"123456789")
    assert compute_b64("crc32", b"123456789") == c.b64digest()
    assert compute_b64("crc32", b"123456789") != compute_b64("crc32c", b"123456789")


def test_header_helpers():
    assert header_name("CRC32C") == "x-amz-checksum-crc32c"
    assert algorithm_from_header("X-Amz-Checksum-CRC64NVME") == "crc64nvme"
    assert algorithm_from_header("x-amz-checksum-algorithm") is None
    assert algorithm_from_header("x-amz-checksum-type") is None
    assert algorithm_from_header("x-amz-meta-x") is None
    for alg in ALGORITHMS:
        assert algorithm_from_header(header_name(alg)) == alg


def test_decode_b64():
    assert decode_b64("crc32", "AAAAAA==") == b"\0\0\0\0"
    assert decode_b64("crc32", "AAAAAAAA") is None          # 6 bytes
    assert decode_b64("crc32", "!!!!") is None
    assert decode_b64("sha256", compute_b64("sha256", b"x")) == hashlib.sha256(b"x").digest()
    assert decode_b64("md5", "AAAAAA==") is None


def test_unknown_algorithm():
    with pytest.raises(ValueError):
        new_checksum("md5")


# -- multipart: CRCs combined from the parts, COMPOSITE checksums ------------------------------------

@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme"])
@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
def test_full_object_crc_combined_from_parts(algorithm, parts):
    from gateway.checksums import full_object, new_checksum
    whole = new_checksum(algorithm)
    pieces = []
    for p in parts:
        whole.update(p)
        c = new_checksum(algorithm)
        c.update(p)
        pieces.append((c.digest(), len(p)))
    assert full_object(algorithm, pieces) == whole.digest()


def test_combine_over_part_sized_lengths():
    """Lengths of real parts (5 MiB … 5 GiB) take the x^(8·2^k) powers far up the table."""
    from gateway.checksums import combine_crc, new_checksum
    a, b = b"first part", bytes(5 * 1024 * 1024 + 3)
    for algorithm in ("crc32", "crc32c", "crc64nvme"):
        ca, cb, whole = new_checksum(algorithm), new_checksum(algorithm), new_checksum(algorithm)
        ca.update(a), cb.update(b), whole.update(a + b)
        assert combine_crc(algorithm, ca.digest(), cb.digest(), len(b)) == whole.digest()


def test_composite_is_checksum_of_part_digests():
    from gateway.checksums import composite
    parts = [b"a" * 10, b"b" * 20, b"c"]
    digests = [hashlib.sha256(p).digest() for p in parts]
    expected = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode() + "-3"
    assert composite("sha256", digests) == expected


@pytest.mark.parametrize("sent, stored", [
    ("aws-chunked", ""), ("aws-chunked, deflate, gzip", "deflate, gzip"), ("gzip,aws-chunked", "gzip"),
    ("deflate ,  gzip", "deflate ,  gzip"), ("AWS-CHUNKED,br", "br"), ("gzip, aws-chunked, br", "gzip, br"),
])
def test_content_encoding_as_written_less_aws_chunked(sent, stored):
    from gateway.exchange import stored_content_encoding
    assert stored_content_encoding(sent) == stored


def test_awscrt_is_loaded_on_first_use_or_by_preload():
    """A process that meets no CRC32C/CRC64NVME never loads awscrt; ``preload`` loads it (that the
    gateway calls it at start: tests/integration/test_checksums_kept.py)."""
    import subprocess
    import sys
    probe = ("import sys, gateway.checksums as c; a = 'awscrt' in sys.modules; {}; "
             "print(a, 'awscrt.checksums' in sys.modules)")
    def run(step: str) -> str:
        return subprocess.run([sys.executable, "-c", probe.format(step)], capture_output=True, text=True,
                              check=True).stdout.split()
    assert run("c.new_checksum('crc32')") == ["False", "False"]
    assert run("c.preload()") == ["False", "True"]
    assert run("c.new_checksum('crc64nvme').update(b'x')") == ["False", "True"]
