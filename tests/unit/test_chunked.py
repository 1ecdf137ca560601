"""The aws-chunked decoder: AWS's published examples, botocore's encoder, and an independent encoder for the
signed-chunk forms (botocore only sends unsigned-trailer chunks)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import random
import tracemalloc
import zlib

import pytest
from botocore.httpchecksum import (AwsChunkedWrapper, Crc32Checksum, CrtCrc32cChecksum, CrtCrc64NvmeChecksum,
                                   Sha1Checksum, Sha256Checksum)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth.chunked import MAX_LINE, ChunkedDecoder
from gateway.auth.sigv4 import AuthResult, authenticate
from gateway.errors import S3Error
from tests.unit.test_sigv4 import AK, SECRET, capture, make_client, read_body, sign_raw, wire

EMPTY = hashlib.sha256(b"").hexdigest()
SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


# --------------------------------------------------------------------------------------------------
# an independent encoder (straight from the AWS documentation's description)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def test_key(secret: str, date: str, region: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, "s3", "aws4_request"):
        k = _hmac(k, part)
    return k


test_key.__test__ = False  # a helper, not a test


def encode(payload: bytes, chunk_size: int, auth: AuthResult | None, trailers: dict[str, str] | None = None,
           sign_trailer: bool = False, key: bytes | None = None) -> bytes:
    """aws-chunked framing; chunks signed when ``auth`` is given (chained from auth.signature)."""
    out = bytearray()
    prev = auth.signature if auth else ""
    if auth is not None and key is None:
        key = test_key(SECRET, auth.amz_date[:8], auth.region)
    pieces = [payload[i:i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    for piece in pieces:
        if auth is not None:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope, prev, EMPTY,
                             hashlib.sha256(piece).hexdigest()])
            prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            out += f"{len(piece):x};chunk-signature={prev}\r\n".encode()
        else:
            out += f"{len(piece):x}\r\n".encode()
        if piece:
            out += piece + b"\r\n"
    if trailers is not None:
        for name, value in trailers.items():
            out += f"{name}:{value}\r\n".encode()
        if sign_trailer:
            canonical = "".join(f"{n}:{v}\n" for n, v in sorted(trailers.items()))
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, prev,
                             hashlib.sha256(canonical.encode()).hexdigest()])
            out += f"x-amz-trailer-signature:{hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def auth_for(mode: str, region: str = "auto", trailer: str | None = None, decoded: int | None = None):
    """A real AuthResult: botocore signs a PUT declaring ``mode``, the gateway authenticates it."""
    headers = {"Content-Encoding": "aws-chunked"}
    if trailer:
        headers["X-Amz-Trailer"] = trailer
    if decoded is not None:
        headers["X-Amz-Decoded-Content-Length"] = str(decoded)
    method, path, query, h = sign_raw("PUT", "http://gw.example/bkt/obj", headers=headers, region=region,
                                      payload=mode)
    return authenticate(method, path, query, h, {AK: SECRET}.get)


def decode_all(decoder: ChunkedDecoder, body: bytes, splits=None) -> tuple[bytes, dict[str, str]]:
    out = bytearray()
    if splits is None:
        splits = [len(body)]
    last = 0
    for cut in sorted(set(splits)) + [len(body)]:
        for piece in decoder.feed(body[last:cut]):
            out += piece
        last = cut
    return bytes(out), decoder.finish()


def raises(code: str, fn, *args):
    with pytest.raises(S3Error) as info:
        fn(*args)
    assert info.value.code == code, (info.value.code, info.value.message)
    return info.value


def feed_and_finish(decoder, body):
    decoder.feed(body)
    return decoder.finish()


# --------------------------------------------------------------------------------------------------
# AWS documentation examples, reconstructed exactly


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = dt.datetime(2013, 5, 24, 0, 0, 0, tzinfo=dt.timezone.utc)


def test_aws_example_signed_chunks():
    """"Example: PUT Object" of "Transferring Payload in Multiple Chunks": 64 KiB + 1 KiB of 'a'."""
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                         "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                         "x-amz-decoded-content-length;x-amz-storage-class,"
                         "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        "x-amz-content-sha256": SIGNED,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    auth = authenticate("PUT", "/examplebucket/chunkObject.txt", "", headers,
                        {"AKIAIOSFODNN7EXAMPLE": AWS_SECRET}.get, AWS_NOW)
    assert auth.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    body = (b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
            + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
            + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
    assert len(body) == 66824  # the example's Content-Length
    decoder = ChunkedDecoder(auth, SIGNED, [], 66560)
    data, trailers = decode_all(decoder, body, splits=[1, 100, 65600, 65700])
    assert data == b"a" * 66560 and trailers == {} and decoder.done
    # the independent encoder produces the same bytes
    assert encode(b"a" * 66560, 65536, auth, key=test_key(AWS_SECRET, "20130524", "us-east-1")) == body
    # and the second chunk's signature matters
    tampered = body.replace(b"0055627c9e", b"0055627c9f")
    raises("SignatureDoesNotMatch", feed_and_finish, ChunkedDecoder(auth, SIGNED, [], 66560), tampered)


def test_aws_example_signed_trailer():
    """The trailing-headers example: same payload, x-amz-checksum-crc32c trailer, signed trailer."""
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                         "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
                         "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
                         "Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
        "x-amz-content-sha256": SIGNED_TRAILER,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "x-amz-trailer": "x-amz-checksum-crc32c",
    }
    auth = authenticate("PUT", "/examplebucket/chunkObject.txt", "", headers,
                        {"AKIAIOSFODNN7EXAMPLE": AWS_SECRET}.get, AWS_NOW)
    body = (b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n"
            + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n"
            + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
            + b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
            + b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
            + b"\r\n")
    decoder = ChunkedDecoder(auth, SIGNED_TRAILER, ["x-amz-checksum-crc32c"], 66560)
    data, trailers = decode_all(decoder, body, splits=range(0, len(body), 4099))
    assert data == b"a" * 66560
    assert trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    tampered = body.replace(b"d81f82fc35", b"d81f82fc36")
    raises("SignatureDoesNotMatch", feed_and_finish,
           ChunkedDecoder(auth, SIGNED_TRAILER, ["x-amz-checksum-crc32c"], 66560), tampered)


# --------------------------------------------------------------------------------------------------
# botocore's own aws-chunked bodies (STREAMING-UNSIGNED-PAYLOAD-TRAILER)


def test_botocore_https_put_object_body():
    payload = random.Random(1).randbytes(2 * 1024 * 1024 + 17)
    client = make_client(endpoint="https://gw.example")
    request = capture(client, "put_object", Bucket="bkt", Key="k", Body=payload)
    method, path, query, headers = wire(request)
    auth = authenticate(method, path, query, headers, {AK: SECRET}.get)
    assert headers["x-amz-content-sha256"] == UNSIGNED_TRAILER and headers["content-encoding"] == "aws-chunked"
    body = read_body(request.body)
    names = [n.strip() for n in headers["x-amz-trailer"].split(",")]
    decoder = ChunkedDecoder(auth, headers["x-amz-content-sha256"], names,
                             int(headers["x-amz-decoded-content-length"]))
    data, trailers = decode_all(decoder, body, splits=range(0, len(body), 65536))
    assert data == payload
    assert trailers == {"x-amz-checksum-crc32": crc32_b64(payload)}


@pytest.mark.parametrize("cls, name", [
    (Crc32Checksum, "x-amz-checksum-crc32"), (CrtCrc32cChecksum, "x-amz-checksum-crc32c"),
    (CrtCrc64NvmeChecksum, "x-amz-checksum-crc64nvme"), (Sha1Checksum, "x-amz-checksum-sha1"),
    (Sha256Checksum, "x-amz-checksum-sha256"),
])
def test_botocore_wrapper_every_checksum(cls, name):
    payload = random.Random(name).randbytes(10_000)
    body = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=cls, checksum_name=name, chunk_size=777).read()
    auth = auth_for(UNSIGNED_TRAILER, trailer=name, decoded=len(payload))
    data, trailers = decode_all(ChunkedDecoder(auth, UNSIGNED_TRAILER, [name], len(payload)), body,
                                splits=[5, 800, 801, 802, 4000])
    assert data == payload and list(trailers) == [name]
    # a wrong payload byte is caught by the trailer checksum
    bad = bytearray(body)
    bad[body.index(b"\r\n") + 2 + 10] ^= 1
    raises("BadDigest", feed_and_finish, ChunkedDecoder(auth, UNSIGNED_TRAILER, [name], len(payload)), bytes(bad))


def test_botocore_wrapper_without_checksum_and_empty_payload():
    auth = auth_for(UNSIGNED_TRAILER)
    body = AwsChunkedWrapper(io.BytesIO(b"")).read()
    assert body == b"0\r\n\r\n"
    decoder = ChunkedDecoder(auth, UNSIGNED_TRAILER, [], 0)
    assert decode_all(decoder, body) == (b"", {})


# --------------------------------------------------------------------------------------------------
# splitting never matters


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=3000), chunk_size=st.integers(1, 700),
       mode=st.sampled_from([SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER]), data=st.data())
def test_any_split_points_give_the_same_output(payload, chunk_size, mode, data):
    trailer = "x-amz-checksum-crc32" if mode != SIGNED else None
    auth = _auths[mode]
    trailers = {trailer: crc32_b64(payload)} if trailer else None
    body = encode(payload, chunk_size, auth if mode != UNSIGNED_TRAILER else None, trailers,
                  sign_trailer=mode == SIGNED_TRAILER)
    splits = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    decoder = ChunkedDecoder(auth, mode, [trailer] if trailer else [], len(payload))
    out, got = decode_all(decoder, body, splits)
    assert out == payload
    assert got == (trailers or {})
    assert decoder.done and decoder.decoded_bytes == len(payload)


def _auth(mode):
    # signing once per mode keeps hypothesis fast; the AuthResult is still a real one
    return auth_for(mode, trailer=None if mode == SIGNED else "x-amz-checksum-crc32")


_auths = {m: _auth(m) for m in (SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER)}


def test_byte_at_a_time():
    auth = _auths[SIGNED_TRAILER]
    payload = b"0123456789" * 50
    body = encode(payload, 64, auth, {"x-amz-checksum-crc32": crc32_b64(payload)}, sign_trailer=True)
    out, trailers = decode_all(ChunkedDecoder(auth, SIGNED_TRAILER, ["x-amz-checksum-crc32"], len(payload)),
                               body, splits=range(len(body)))
    assert out == payload and trailers == {"x-amz-checksum-crc32": crc32_b64(payload)}


@pytest.mark.parametrize("region", ["auto", "us-east-1", ""])
def test_regions(region):
    auth = auth_for(SIGNED, region=region)
    body = encode(b"x" * 100, 30, auth)
    assert decode_all(ChunkedDecoder(auth, SIGNED, [], 100), body) == (b"x" * 100, {})


# --------------------------------------------------------------------------------------------------
# bounded memory


def test_16mib_chunk_in_64kib_pieces_is_streamed_without_copies():
    auth = _auths[SIGNED]
    payload = b"z" * (16 * 1024 * 1024)
    body = encode(payload, len(payload), auth)
    step = 64 * 1024
    pieces_in = [body[i:i + step] for i in range(0, len(body), step)]
    decoder = ChunkedDecoder(auth, SIGNED, [], len(payload))
    total = 0
    tracemalloc.start()
    try:
        for piece_in in pieces_in:
            out = decoder.feed(piece_in)
            size = sum(len(p) for p in out)
            assert size <= len(piece_in)
            for p in out:  # views of the input, never copies
                assert p is piece_in or (isinstance(p, memoryview) and p.obj is piece_in)
            assert len(decoder._line) <= MAX_LINE
            total += size
            del out
        decoder.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(payload)
    assert peak < 512 * 1024, peak   # nothing close to the 16 MiB chunk is ever held


def test_overlong_line_is_refused_without_buffering():
    auth = _auths[SIGNED]
    decoder = ChunkedDecoder(auth, SIGNED, [], None)
    e = raises("IncompleteBody", decoder.feed, b"1" * (1024 * 1024))
    assert "line too long" in e.message
    decoder = ChunkedDecoder(auth, SIGNED, [], None)
    for _ in range(MAX_LINE // 100):
        decoder.feed(b"a" * 100)
    raises("IncompleteBody", decoder.feed, b"a" * 200)


def test_overlong_trailer_section():
    auth = _auths[UNSIGNED_TRAILER]
    decoder = ChunkedDecoder(auth, UNSIGNED_TRAILER, ["x-amz-checksum-crc32"], 0)
    decoder.feed(b"0\r\n")
    raises("InvalidRequest", lambda: [decoder.feed(b"x-amz-meta-x:" + b"a" * 1000 + b"\r\n") for _ in range(40)])


# --------------------------------------------------------------------------------------------------
# failures


def test_tampered_chunk_byte():
    auth = _auths[SIGNED]
    payload = bytes(range(256)) * 40
    body = bytearray(encode(payload, 1000, auth))
    start = body.index(b"\r\n", body.index(b"\r\n") + 2 + 1000) + 2  # inside the second chunk
    body[start + 500] ^= 0x01
    decoder = ChunkedDecoder(auth, SIGNED, [], len(payload))
    raises("SignatureDoesNotMatch", decoder.feed, bytes(body))


def test_tampered_chunk_size_or_reordered_chunks():
    auth = _auths[SIGNED]
    payload = b"A" * 100 + b"B" * 100
    body = encode(payload, 100, auth)
    first_len = body.index(b"\r\n") + 2 + 100 + 2
    first, second = body[:first_len], body[first_len:2 * first_len]
    swapped = second + first + body[2 * first_len:]
    raises("SignatureDoesNotMatch", feed_and_finish, ChunkedDecoder(auth, SIGNED, [], 200), swapped)
    # dropping a chunk breaks the chain too
    dropped = body[first_len:]
    raises("SignatureDoesNotMatch", feed_and_finish, ChunkedDecoder(auth, SIGNED, [], None), dropped)


def test_missing_or_malformed_chunk_signature():
    auth = _auths[SIGNED]
    for body in [b"5\r\nhello\r\n0\r\n\r\n", b"5;chunk-signature=xyz\r\nhello\r\n",
                 b"5;chunk-signature=" + b"0" * 64 + b"\r\nhello\r\n"]:
        raises("SignatureDoesNotMatch", feed_and_finish, ChunkedDecoder(auth, SIGNED, [], None), body)


def test_another_requests_chunks_do_not_verify():
    auth_a, auth_b = auth_for(SIGNED), auth_for(SIGNED, region="us-east-1")
    body = encode(b"payload", 4, auth_a)
    raises("SignatureDoesNotMatch", feed_and_finish, ChunkedDecoder(auth_b, SIGNED, [], 7), body)


def test_wrong_trailer_checksum_is_bad_digest():
    for mode in (UNSIGNED_TRAILER, SIGNED_TRAILER):
        auth = _auths[mode]
        payload = b"hello world"
        body = encode(payload, 4, auth if mode == SIGNED_TRAILER else None,
                      {"x-amz-checksum-crc32": crc32_b64(b"hello worle")}, sign_trailer=mode == SIGNED_TRAILER)
        e = raises("BadDigest", feed_and_finish,
                   ChunkedDecoder(auth, mode, ["x-amz-checksum-crc32"], len(payload)), body)
        assert "CRC32" in e.message


def test_tampered_signed_trailer_value():
    auth = _auths[SIGNED_TRAILER]
    payload = b"hello world"
    good = crc32_b64(payload)
    body = encode(payload, 4, auth, {"x-amz-checksum-crc32": good}, sign_trailer=True)
    # a valid-looking checksum of other data, without re-signing: the trailer signature catches it first
    other = crc32_b64(b"other")
    raises("SignatureDoesNotMatch", feed_and_finish,
           ChunkedDecoder(auth, SIGNED_TRAILER, ["x-amz-checksum-crc32"], 11), body.replace(good.encode(),
                                                                                           other.encode()))
    no_sig = body[:body.index(b"x-amz-trailer-signature")] + b"\r\n"
    raises("SignatureDoesNotMatch", feed_and_finish,
           ChunkedDecoder(auth, SIGNED_TRAILER, ["x-amz-checksum-crc32"], 11), no_sig)


@pytest.mark.parametrize("mode", [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER])
def test_truncated_anywhere_is_incomplete_body(mode):
    auth = _auths[mode]
    payload = b"abcdefghij" * 30
    trailer = None if mode == SIGNED else {"x-amz-checksum-crc32": crc32_b64(payload)}
    body = encode(payload, 64, auth if mode != UNSIGNED_TRAILER else None, trailer,
                  sign_trailer=mode == SIGNED_TRAILER)
    names = list(trailer or {})
    for cut in range(len(body)):
        decoder = ChunkedDecoder(auth, mode, names, len(payload))
        decoder.feed(body[:cut])
        if cut == len(body) - 2:
            # only the final empty line is missing: tolerated
            assert decoder.finish() == (trailer or {})
            continue
        raises("IncompleteBody", decoder.finish)
        assert not decoder.done


def test_data_after_the_end():
    auth = _auths[SIGNED]
    body = encode(b"abc", 2, auth)
    raises("IncompleteBody", ChunkedDecoder(auth, SIGNED, [], 3).feed, body + b"x")
    decoder = ChunkedDecoder(auth, SIGNED, [], 3)
    decoder.feed(body)
    assert decoder.done
    raises("IncompleteBody", decoder.feed, b"\r\n")
    assert decoder.feed(b"") == []


def test_malformed_framing():
    auth = _auths[UNSIGNED_TRAILER]
    for body in [b"zz\r\nhello\r\n", b"5\r\nhelloXX0\r\n\r\n", b"5\nhello\r\n", b"-5\r\n",
                 b"\r\n", b"0x5\r\nhello\r\n", b"11111111111111111\r\n"]:
        raises("IncompleteBody", feed_and_finish, ChunkedDecoder(auth, UNSIGNED_TRAILER, [], None), body)


def test_decoded_length_mismatch():
    auth = _auths[SIGNED]
    body = encode(b"x" * 50, 20, auth)
    raises("IncompleteBody", feed_and_finish, ChunkedDecoder(auth, SIGNED, [], 51), body)
    e = raises("IncompleteBody", ChunkedDecoder(auth, SIGNED, [], 49).feed, body)
    assert "exceeds" in e.message
    assert decode_all(ChunkedDecoder(auth, SIGNED, [], None), body)[0] == b"x" * 50


def test_trailer_problems():
    auth = _auths[UNSIGNED_TRAILER]
    crc = crc32_b64(b"hi")
    base = b"2\r\nhi\r\n0\r\n"
    name = ["x-amz-checksum-crc32"]
    cases = [
        (base + b"x-amz-checksum-crc32:" + crc.encode() + b"\r\nx-amz-meta-a:1\r\n\r\n", "InvalidRequest"),
        (base + b"\r\n", "InvalidRequest"),                                          # declared, missing
        (base + b"x-amz-checksum-crc32:!!!!\r\n\r\n", "InvalidRequest"),             # not base64
        (base + b"x-amz-checksum-crc32:AAAAAAAA\r\n\r\n", "InvalidRequest"),         # wrong size
        (base + b"x-amz-checksum-crc32:" + crc.encode() + b"\r\nx-amz-checksum-crc32:" + crc.encode()
         + b"\r\n\r\n", "InvalidRequest"),                                            # duplicate
        (base + b"no-colon\r\n\r\n", "InvalidRequest"),
        (base + b"x-amz-checksum-crc32:" + crc.encode() + b"\r\nx-amz-trailer-signature:" + b"0" * 64
         + b"\r\n\r\n", "InvalidRequest"),                                            # sig in unsigned mode
    ]
    for body, code in cases:
        raises(code, feed_and_finish, ChunkedDecoder(auth, UNSIGNED_TRAILER, name, 2), body)
    # trailer names are case-insensitive on the wire
    ok = base + b"X-Amz-Checksum-CRC32: " + crc.encode() + b"\r\n\r\n"
    assert decode_all(ChunkedDecoder(auth, UNSIGNED_TRAILER, ["X-Amz-Checksum-Crc32"], 2), ok)[1] \
        == {"x-amz-checksum-crc32": crc}
    # no trailers allowed after the last chunk of STREAMING-AWS4-HMAC-SHA256-PAYLOAD
    signed = _auths[SIGNED]
    body = encode(b"hi", 2, signed)[:-2] + b"x-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n"
    raises("IncompleteBody", feed_and_finish, ChunkedDecoder(signed, SIGNED, [], 2), body)


def test_constructor_checks():
    raises("InvalidRequest", ChunkedDecoder, _auths[SIGNED], UNSIGNED_TRAILER, [], None)  # mode != signed one
    raises("InvalidArgument", ChunkedDecoder, _auths[SIGNED], "UNSIGNED-PAYLOAD", [], None)
    raises("InvalidRequest", ChunkedDecoder, _auths[SIGNED], SIGNED, ["x-amz-checksum-crc32"], None)
    raises("InvalidArgument", ChunkedDecoder, _auths[UNSIGNED_TRAILER], UNSIGNED_TRAILER, ["x-amz-meta-a"], None)
    raises("InvalidArgument", ChunkedDecoder, _auths[UNSIGNED_TRAILER], UNSIGNED_TRAILER,
           ["x-amz-checksum-md5"], None)
