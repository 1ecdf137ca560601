"""Fuzz targets over the gateway's parsers of client input, shared by the atheris harnesses
(coverage-guided, ``tests/fuzz/fuzz_*.py``) and the hypothesis properties
(``tests/reliability/test_fuzz_properties.py``).

Each target takes arbitrary bytes, shapes them into the input of one parser (with a little
grammar, so that most inputs get past the first check) and runs it. The contract: a parser answers
any input with a result or an :class:`~gateway.errors.S3Error` — any other exception is a bug (it
would be a 500 from the gateway). Targets also assert the parser's own invariants.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import unquote

from gateway import addressing, s3xml
from gateway.auth import chunked, presign, sigv4
from gateway.errors import S3Error
from gateway.payload import BodyVerifier

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
AMZ_DATE = "20260101T120000Z"
AK, SECRET = "AKFUZZ", "fuzz-secret"
KEYS = {AK: SECRET}


class Reader:
    """Turns fuzz bytes into typed choices (a tiny FuzzedDataProvider; works the same everywhere)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def blob(self, limit: int = 255) -> bytes:
        return self.take(self.byte() % (limit + 1))

    def text(self, limit: int = 255) -> str:
        return self.blob(limit).decode("utf-8", "replace")

    def choice(self, options):
        return options[self.byte() % len(options)]

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


# -- addressing ----------------------------------------------------------------------------------

def addressing_target(data: bytes) -> None:
    r = Reader(data)
    domains = r.choice([(), ("vh.test",), ("vh.test", "s3.example"), (r.text(20),)])
    host = r.choice(["127.0.0.1:8080", "bkt.vh.test", "BKT.VH.TEST:443", "[::1]:80", r.text(40),
                     r.text(10) + ".vh.test"])
    path = r.choice(["/", "", "/" + r.text(80), r.text(80)]) + r.text(60)
    query = r.text(120)
    try:
        addr = addressing.parse(host, path, domains)
    except S3Error:
        addr = None
    if addr is not None:
        # never normalised: the key the upstream will be asked for decodes back to this very key
        if addr.key is not None:
            assert unquote(sigv4.uri_encode(addr.key, True)) == addr.key
        if not addr.virtual_host and addr.bucket is not None:
            assert "/" not in addr.bucket or "%2f" in path.lower()
    q = addressing.parse_query(query)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in q.items())


# -- SigV4 (header and presigned forms) ----------------------------------------------------------

def _sig_piece(r: Reader) -> str:
    return r.choice(["0" * 64, hashlib.sha256(r.blob(8)).hexdigest(), r.text(70), "", "Z" * 64])


def _credential(r: Reader) -> str:
    ak = r.choice([AK, "NOPE", r.text(12), ""])
    date = r.choice([AMZ_DATE[:8], "20251231", r.text(9), ""])
    region = r.choice(["auto", "us-east-1", "", r.text(12)])
    service = r.choice(["s3", "s3", r.text(4)])
    term = r.choice(["aws4_request", "aws4_request", r.text(12)])
    parts = [ak, date, region, service, term]
    if r.byte() % 8 == 0:
        parts = parts[: r.byte() % 5]
    return "/".join(parts)


def _signed_headers(r: Reader) -> str:
    return r.choice(["host", "host;x-amz-content-sha256;x-amz-date", "host;x-amz-date", r.text(40), "",
                     "host;;x-amz-date", "HOST;X-Amz-Date", "host ; x-amz-date"])


def _amz_date(r: Reader) -> str:
    return r.choice([AMZ_DATE, "20260101T115000Z", "20250101T000000Z", r.text(18), "20261301T000000Z", ""])


def sigv4_target(data: bytes) -> None:
    r = Reader(data)
    method = r.choice(["GET", "PUT", "POST", "DELETE", "HEAD", r.text(8)])
    path = r.choice(["/bkt/key", "/", "/bkt/a%2Fb/../c", "/" + r.text(60)])
    headers: dict[str, str] = {"host": r.choice(["gw.example:8080", r.text(20)])}
    form = r.byte() % 3
    query = r.choice(["", "uploads", "list-type=2&prefix=a%20b", r.text(80)])
    if form == 0:  # Authorization header
        headers["authorization"] = r.choice([
            f"AWS4-HMAC-SHA256 Credential={_credential(r)}, SignedHeaders={_signed_headers(r)}, "
            f"Signature={_sig_piece(r)}",
            "AWS4-HMAC-SHA256 " + r.text(120), "AWS " + r.text(40), "AWS4-ECDSA-P256-SHA256 x", r.text(60), ""])
        headers["x-amz-date"] = _amz_date(r)
        headers["x-amz-content-sha256"] = r.choice([
            sigv4.UNSIGNED_PAYLOAD, sigv4.EMPTY_SHA256, sigv4.STREAMING_SIGNED, sigv4.STREAMING_UNSIGNED_TRAILER,
            sigv4.STREAMING_ECDSA, r.text(70), "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"])
        if r.byte() % 4 == 0:
            del headers["x-amz-date"]
            headers["date"] = r.choice(["Thu, 01 Jan 2026 12:00:00 GMT", r.text(40)])
    elif form == 1:  # presigned URL
        params = [("X-Amz-Algorithm", r.choice(["AWS4-HMAC-SHA256", r.text(20)])),
                  ("X-Amz-Credential", _credential(r).replace("/", r.choice(["/", "%2F"]))),
                  ("X-Amz-Date", _amz_date(r)),
                  ("X-Amz-Expires", r.choice(["3600", "0", "-1", "604801", "99999999999999", r.text(6)])),
                  ("X-Amz-SignedHeaders", _signed_headers(r)),
                  ("X-Amz-Signature", _sig_piece(r))]
        if r.byte() % 3 == 0:
            params.append((r.choice(["X-Amz-Content-Sha256", "X-Amz-Security-Token", "X-Amz-Date"]), r.text(70)))
        n = r.byte() % (len(params) + 1)
        query = "&".join([f"{k}={v}" for k, v in params[:max(n, 4)]] + ([query] if query else []))
    else:  # anything at all
        for _ in range(r.byte() % 6):
            headers[r.text(20).lower()] = r.text(60)
    for _ in range(r.byte() % 4):
        headers[r.choice(["x-amz-meta-a", "x-amz-trailer", "x-amz-security-token", "content-md5"])] = r.text(40)
    try:
        result = sigv4.authenticate(method, path, query, headers, KEYS.get, NOW)
    except S3Error:
        result = None
    if result is not None:  # only the right secret can sign: the fuzzer must not find a forgery
        raise AssertionError(f"forged signature accepted: {method} {path}?{query} {headers}")
    for candidate in sigv4.canonical_uri_candidates(path):
        assert isinstance(candidate, str)
    sigv4.canonical_query(query)
    sigv4.canonical_query(query, exclude_signature=True)
    presign.strip_presign_params(query)


# -- aws-chunked ---------------------------------------------------------------------------------

def _auth(mode: str) -> sigv4.AuthResult:
    """What authenticate() returns for a PUT declaring ``mode`` (seed signature computed here)."""
    key = sigv4.signing_key(SECRET, AMZ_DATE[:8], "auto", "s3")
    seed = hmac.new(key, f"seed-{mode}".encode(), hashlib.sha256).hexdigest()
    return sigv4.AuthResult(access_key_id=AK, secret_key=SECRET, signing_key=key,
                            scope=f"{AMZ_DATE[:8]}/auto/s3/aws4_request", amz_date=AMZ_DATE, signature=seed,
                            signed_headers=("host",), payload_hash=mode, presigned=False, region="auto")


MODES = (sigv4.STREAMING_SIGNED, sigv4.STREAMING_SIGNED_TRAILER, sigv4.STREAMING_UNSIGNED_TRAILER)
AUTHS = {m: _auth(m) for m in MODES}
TRAILERS = ("", "x-amz-checksum-crc32", "x-amz-checksum-crc32c,x-amz-checksum-sha256", "x-amz-checksum-md5",
            "x-amz-checksum-crc64nvme", " , x-amz-checksum-sha1")


def encode_chunked(payload: bytes, chunk: int, auth: sigv4.AuthResult | None,
                   trailer: tuple[str, str] | None = None, sign_trailer: bool = False) -> bytes:
    """A valid aws-chunked body (signed chunks when ``auth`` is given), for mutation seeds."""
    out = bytearray()
    prev = auth.signature if auth else ""
    pieces = [payload[i:i + chunk] for i in range(0, len(payload), max(chunk, 1))] + [b""]
    for piece in pieces:
        ext = ""
        if auth is not None:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope, prev, sigv4.EMPTY_SHA256,
                             hashlib.sha256(piece).hexdigest()])
            prev = hmac.new(auth.signing_key, sts.encode(), hashlib.sha256).hexdigest()
            ext = f";chunk-signature={prev}"
        out += f"{len(piece):x}{ext}\r\n".encode() + piece + (b"\r\n" if piece else b"")
    if trailer is not None:
        out += f"{trailer[0]}:{trailer[1]}\r\n".encode()
        if sign_trailer and auth is not None:
            canonical = f"{trailer[0]}:{trailer[1]}\n"
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, prev,
                             hashlib.sha256(canonical.encode()).hexdigest()])
            out += f"x-amz-trailer-signature:{hmac.new(auth.signing_key, sts.encode(), hashlib.sha256).hexdigest()}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def chunked_target(data: bytes) -> None:
    r = Reader(data)
    mode = r.choice(MODES)
    auth = AUTHS[mode]
    trailer_names = r.choice(TRAILERS).split(",")
    declared = r.choice([None, 0, 5, 100, r.byte() * 7, 2 ** 40])
    seeded = r.byte() % 2 == 0
    payload = None
    if seeded:  # mutate a valid encoding: flips, cuts and insertions keep most of the grammar
        payload = r.blob(200)
        body = bytearray(encode_chunked(payload, 1 + r.byte() % 64, auth if mode != MODES[2] else None,
                                        ("x-amz-checksum-crc32", "AAAAAA==") if mode != MODES[0] else None,
                                        sign_trailer=mode == MODES[1]))
        for _ in range(r.byte() % 4):
            op, at = r.byte() % 3, (r.byte() << 8 | r.byte()) % (len(body) + 1)
            if op == 0 and at < len(body):
                body[at] ^= 1 << (r.byte() % 8)
            elif op == 1:
                del body[at:at + r.byte() % 8]
            else:
                body[at:at] = r.blob(8)
        body = bytes(body)
    else:
        body = r.rest()
    try:
        decoder = chunked.ChunkedDecoder(auth, mode, trailer_names, declared)
    except S3Error:
        return
    out = bytearray()
    pos = 0
    step = 1 + (data[-1] if data else 0) % 97
    try:
        while pos < len(body):
            for piece in decoder.feed(body[pos:pos + step]):
                out += piece
            pos += step
        trailers = decoder.finish()
    except S3Error:
        return
    assert decoder.done and isinstance(trailers, dict)
    if declared is not None:
        assert len(out) == declared
    if payload is not None and mode != MODES[2]:
        # signed chunks: whatever decodes after any mutation is exactly what was signed
        assert bytes(out) == payload, "a mutated signed body decoded to other bytes"


def body_verifier_target(data: bytes) -> None:
    r = Reader(data)
    headers = {}
    for _ in range(r.byte() % 4):
        headers[r.choice(["content-md5", "x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-checksum-crc64nvme",
                          "x-amz-checksum-crc32c", "x-amz-checksum-sha1"])] = r.text(60)
    payload_hash = r.choice(["UNSIGNED-PAYLOAD", sigv4.EMPTY_SHA256, r.text(64), "g" * 64])
    try:
        v = BodyVerifier(payload_hash, headers)
        v.update(r.rest())
        v.finish()
    except S3Error:
        pass


# -- XML bodies ------------------------------------------------------------------------------------

XML_ROOTS = ("Delete", "CompleteMultipartUpload", "CreateBucketConfiguration", "CORSConfiguration",
             "LifecycleConfiguration", "ServerSideEncryptionConfiguration", "RestoreRequest")


def xml_target(data: bytes) -> None:
    from gateway.extensions import multipart
    root_name = XML_ROOTS[data[0] % len(XML_ROOTS)] if data else "Delete"
    body = data[1:]
    try:
        root = s3xml.parse(body)
    except S3Error:
        root = None
    if root is not None:
        assert not root.getroottree().docinfo.doctype
        for name in ("Key", "LocationConstraint", "PartNumber", "Code"):
            s3xml.find_text(root, name)
    try:
        s3xml.check_document(body, root_name)
    except S3Error:
        pass
    try:
        multipart._requested_parts(body)
    except S3Error:
        pass


TARGETS = {
    "addressing": addressing_target,
    "sigv4": sigv4_target,
    "chunked": chunked_target,
    "body_verifier": body_verifier_target,
    "xml": xml_target,
}
