"""Property-based fuzzing (hypothesis) of every parser of client input: the request addressing,
SigV4 (header and presigned forms) and its canonicaliser, the aws-chunked decoder, the body
verifier, and the XML bodies the gateway reads. Any input gets a result or an S3Error (a 4xx the
gateway renders), never another exception. Socket-free: these run in a few seconds.

The coverage-guided counterpart is tests/fuzz (atheris); the targets are shared.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway import addressing, s3xml
from gateway.auth import sigv4
from gateway.errors import S3Error
from gateway.payload import Ingest
from tests.fuzz import targets

SCALE = float(os.environ.get("R2GW_PROPERTY_SCALE", "1"))  # more examples for a long local run
FAST = settings(max_examples=int(400 * SCALE), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=int(120 * SCALE), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# text as a client can put it on the wire: no lone surrogates (the gateway refuses raw non-UTF-8
# header bytes before any parser sees them), but every other code point, escapes and separators
wire_text = st.text(st.one_of(st.sampled_from(list("/%?&=+.-_~ ;,:aAzZ09fF")), st.characters(
    blacklist_categories=("Cs",))), max_size=80)


# -- the shared targets, fed raw bytes ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_target_survives_any_bytes(name):
    target = targets.TARGETS[name]

    @FAST
    @given(st.binary(max_size=700))
    def run(data):
        target(data)
    run()


# -- addressing -------------------------------------------------------------------------------------

@FAST
@given(host=wire_text, path=wire_text, domains=st.lists(wire_text, max_size=2))
def test_addressing_any_target(host, path, domains):
    try:
        addr = addressing.parse(host, path, tuple(d.lower().strip(".") for d in domains))
    except S3Error as e:
        assert 400 <= e.status < 500
        return
    if addr.key is not None:  # never normalised: ../, //, %2F are the key's own
        assert quote(addr.key, safe="/") == sigv4.uri_encode(addr.key, True)


@FAST
@given(wire_text)
def test_query_parsing_any_string(query):
    addressing.parse_query(query)
    sigv4.canonical_query(query)
    sigv4.canonical_query_candidates(query, exclude_signature=True)


# -- SigV4: botocore is the oracle -----------------------------------------------------------------

KEY_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60)
META = st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True),
                       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40), max_size=3)
PARAMS = st.lists(st.tuples(st.sampled_from(["prefix", "delimiter", "marker", "x-id", "versionId", "a b", "é"]),
                            st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)), max_size=3,
                  unique_by=lambda p: p[0])


def _botocore_signed(method: str, key: str, params, meta, region: str, presigned: bool):
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)
    url = f"http://gw.example:8080/bkt/{quote(key, safe='/~')}" + (f"?{query}" if query else "")
    headers = {f"x-amz-meta-{k}": v for k, v in meta.items()}
    req = AWSRequest(method=method, url=url, headers=headers)
    if presigned:
        S3SigV4QueryAuth(Credentials(targets.AK, targets.SECRET), "s3", region, expires=300).add_auth(req)
    else:
        req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        S3SigV4Auth(Credentials(targets.AK, targets.SECRET), "s3", region).add_auth(req)
    prepared = req.prepare()
    path, _, raw_query = prepared.url.split("gw.example:8080", 1)[1].partition("?")
    wire = {k.lower(): v for k, v in prepared.headers.items()}
    wire["host"] = "gw.example:8080"
    return path, raw_query, wire


@SLOW
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "HEAD"]), key=KEY_TEXT, params=PARAMS, meta=META,
       region=st.sampled_from(["auto", "us-east-1", ""]), presigned=st.booleans(), flip=st.integers(0, 10_000))
def test_botocore_signed_requests_verify_and_tampering_fails(method, key, params, meta, region, presigned, flip):
    path, query, headers = _botocore_signed(method, key, params, meta, region, presigned)
    result = sigv4.authenticate(method, path, query, headers, targets.KEYS.get)
    assert result.access_key_id == targets.AK and result.presigned == presigned
    # one changed character in the path (kept a valid, different request target) must not verify
    i = flip % len(path)
    changed = path[:i] + ("X" if path[i] != "X" else "Y") + path[i + 1:]
    assume(changed.count("%") == path.count("%") and "%" not in path[max(0, i - 2):i + 1])
    with pytest.raises(S3Error) as e:
        sigv4.authenticate(method, changed, query, headers, targets.KEYS.get)
    assert e.value.code == "SignatureDoesNotMatch"


@FAST
@given(auth=wire_text, date=wire_text, sha=wire_text, query=wire_text, path=wire_text,
       extra=st.dictionaries(wire_text.map(str.lower), wire_text, max_size=4))
def test_authenticate_any_headers(auth, date, sha, query, path, extra):
    headers = {**extra, "host": "gw.example", "authorization": "AWS4-HMAC-SHA256 " + auth, "x-amz-date": date,
               "x-amz-content-sha256": sha}
    for form in (headers, {k: v for k, v in headers.items() if k != "authorization"}):
        try:
            sigv4.authenticate("GET", "/" + path, query, form, targets.KEYS.get, targets.NOW)
        except S3Error as e:
            assert 400 <= e.status < 600 and e.status != 500
        else:
            raise AssertionError("a made-up signature was accepted")


# -- aws-chunked ---------------------------------------------------------------------------------------

@FAST
@given(mode=st.sampled_from(targets.MODES), body=st.binary(max_size=600), step=st.integers(1, 64),
       declared=st.one_of(st.none(), st.integers(0, 700)), trailer=st.sampled_from(targets.TRAILERS))
def test_chunked_decoder_any_body(mode, body, step, declared, trailer):
    from gateway.auth.chunked import ChunkedDecoder
    try:
        d = ChunkedDecoder(targets.AUTHS[mode], mode, trailer.split(","), declared)
        for i in range(0, len(body), step):
            d.feed(body[i:i + step])
        d.finish()
    except S3Error as e:
        assert 400 <= e.status < 500


@FAST
@given(payload=st.binary(max_size=300), chunk=st.integers(1, 50), mode=st.sampled_from(targets.MODES[:2]),
       at=st.integers(0, 10_000), bit=st.integers(0, 7), step=st.integers(1, 97))
def test_signed_chunks_any_bit_flip_is_caught_or_harmless(payload, chunk, mode, at, bit, step):
    """Flip one bit anywhere in a signed aws-chunked body: refused, or (hex case, whitespace) the
    very same bytes come out — never other data."""
    from gateway.auth.chunked import ChunkedDecoder
    auth = targets.AUTHS[mode]
    trailer = ("x-amz-checksum-crc32", targets_crc32(payload)) if mode == targets.MODES[1] else None
    body = bytearray(targets.encode_chunked(payload, chunk, auth, trailer, sign_trailer=trailer is not None))
    body[at % len(body)] ^= 1 << bit
    d = ChunkedDecoder(auth, mode, ["x-amz-checksum-crc32"] if trailer else [], None)
    out = bytearray()
    try:
        for i in range(0, len(body), step):
            for piece in d.feed(bytes(body[i:i + step])):
                out += piece
        d.finish()
    except S3Error:
        return
    assert bytes(out) == payload


def targets_crc32(data: bytes) -> str:
    import base64
    import zlib
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class _Stream:
    """aiohttp's StreamReader as Ingest uses it: ``read_nowait()`` for what has arrived, ``readany()``
    to wait for more, ``at_eof()``; maybe failing midway. Every other piece is "not arrived yet",
    so both of Ingest's read paths run."""

    def __init__(self, pieces: list[bytes], fail: bool) -> None:
        self.pieces, self.fail = [p for p in pieces if p], fail
        self.arrived = False

    def read_nowait(self) -> bytes:
        if self.pieces and self.arrived:
            self.arrived = False
            return self.pieces.pop(0)
        self.arrived = True
        if not self.pieces and self.fail:
            raise ConnectionResetError("client went away")
        return b""

    def at_eof(self) -> bool:
        return not self.pieces and not self.fail

    async def readany(self) -> bytes:
        await asyncio.sleep(0)
        self.arrived = True
        return self.read_nowait()


@SLOW
@given(pieces=st.lists(st.binary(max_size=200), max_size=6), length=st.one_of(st.none(), st.integers(0, 1500)),
       fail=st.booleans(), sha=st.sampled_from(["UNSIGNED-PAYLOAD", sigv4.EMPTY_SHA256, "0" * 64]),
       md5=st.one_of(st.none(), st.text(max_size=30)), limit=st.integers(0, 1200), exact=st.booleans())
def test_ingest_read_all_any_stream(pieces, length, fail, sha, md5, limit, exact):
    if exact:   # the declared length is right half of the time, so whole bodies get through too
        length = sum(map(len, pieces))
    auth = targets.AUTHS[targets.MODES[0]]
    auth = dataclasses.replace(auth, payload_hash=sha)
    headers = {"content-md5": md5} if md5 is not None else {}

    async def run():
        ingest = Ingest(_Stream(pieces, fail), auth, headers, length)
        return await ingest.read_all(limit)
    try:
        data = asyncio.run(run())
    except S3Error as e:
        assert 400 <= e.status < 500
        return
    assert data == b"".join(pieces) and len(data) <= limit and not fail


# -- XML bodies ----------------------------------------------------------------------------------------

NAMES = ["Delete", "Object", "Key", "VersionId", "Quiet", "CompleteMultipartUpload", "Part", "PartNumber", "ETag",
         "CreateBucketConfiguration", "LocationConstraint", "CORSConfiguration", "CORSRule", "AllowedOrigin",
         "AllowedMethod", "LifecycleConfiguration", "Rule", "ID", "Status", "Filter", "Prefix", "Expiration",
         "Days", "ServerSideEncryptionConfiguration", "RestoreRequest", "x", "a:b"]
xml_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def xml_documents(draw, root: str | None = None):
    """Well-formed S3-ish documents (any nesting, text, namespaces), as lxml serialises them."""
    def build(depth: int, name: str) -> etree._Element:
        ns = draw(st.sampled_from([None, None, "http://s3.amazonaws.com/doc/2006-03-01/", "urn:x"]))
        tag = name.replace(":", "_")
        el = etree.Element(f"{{{ns}}}{tag}" if ns else tag)
        text = draw(xml_text)
        try:
            el.text = text
        except ValueError:  # characters XML cannot carry (NUL, most C0 controls)
            pass
        if depth < 4:
            for _ in range(draw(st.integers(0, 3))):
                el.append(build(depth + 1, draw(st.sampled_from(NAMES))))
        return el
    el = build(0, root or draw(st.sampled_from(NAMES)))
    encoding = draw(st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1", "ASCII"]))
    declaration = encoding == "ISO-8859-1" or draw(st.booleans())  # latin-1 needs its declaration
    return etree.tostring(el, encoding=encoding, xml_declaration=declaration)


@st.composite
def mangled(draw, docs):
    doc = bytearray(draw(docs))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(doc)))
        if op == 0 and at < len(doc):
            doc[at] = draw(st.integers(0, 255))
        elif op == 1:
            del doc[at:at + draw(st.integers(1, 20))]
        elif op == 2:
            doc[at:at] = draw(st.sampled_from([b"<!DOCTYPE x [<!ENTITY e 'e'>]>", b"&e;", b"<![CDATA[", b"]]>",
                                               b"<!--", b"\x00", b"\xff\xfe", b"&#0;", b"<?xml version='1.0'?>"]))
        else:
            doc = doc[:at]
    return bytes(doc)


ROOTS = ["Delete", "CompleteMultipartUpload", "CreateBucketConfiguration", "CORSConfiguration",
         "LifecycleConfiguration", "ServerSideEncryptionConfiguration", "RestoreRequest"]


@FAST
@given(root=st.sampled_from(ROOTS), data=st.data())
def test_xml_any_body(root, data):
    body = data.draw(st.one_of(mangled(xml_documents()), mangled(xml_documents(root)), st.binary(max_size=300)))
    targets.xml_target(bytes([ROOTS.index(root)]) + body)


@FAST
@given(root=st.sampled_from(ROOTS), data=st.data())
def test_well_formed_bodies_with_the_right_root_pass(root, data):
    """The gateway's XML check has no false positives: any well-formed document with the root S3
    expects (namespaced or not, declared encoding or not) is forwarded."""
    body = data.draw(xml_documents(root))
    s3xml.check_document(body, root)


@SLOW
@given(body=st.one_of(mangled(xml_documents("CreateBucketConfiguration")), st.binary(max_size=200)))
def test_create_bucket_configuration_any_body(body):
    from gateway.extensions import location

    class _Ex:
        def __init__(self):
            self.body = body
            self.upstream_headers = {}
            self.upstream = type("U", (), {"signer": type("S", (), {"region": "us-east-1"})()})()

    async def proceed(ex):
        return "forwarded"
    try:
        assert asyncio.run(location.create_bucket(_Ex(), proceed)) == "forwarded"
    except S3Error as e:
        assert e.code in ("MalformedXML", "InvalidLocationConstraint", "MaxMessageLengthExceeded")


def test_entity_and_size_bombs_refused_fast():
    import time
    from tests.reliability.test_xml_limits import billion_laughs
    for enc in ("utf-8", "utf-16", "utf-32"):
        t0 = time.monotonic()
        with pytest.raises(S3Error) as e:
            s3xml.check_document(billion_laughs("Delete", "<Object><Key>X</Key></Object>", enc), "Delete")
        assert e.value.code == "MalformedXML" and time.monotonic() - t0 < 0.5
    deep = b"<Delete>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</Delete>"
    with pytest.raises(S3Error):
        s3xml.check_document(deep, "Delete")
    with pytest.raises(S3Error) as e:
        s3xml.parse(b"<Delete>" + b"x" * (3 * 1024 * 1024) + b"</Delete>")
    assert e.value.code == "MaxMessageLengthExceeded"
