"""The pieces of AWS Signature Version 4 that every signed form shares, sans-IO: ``UriEncode``, the
canonical URI, query and headers, the signing key, date formats, the payload-hash values, and the
:class:`AuthResult` a verified request yields. The header form (:mod:`.sigv4`), the presigned form
(:mod:`.presign`) and the signed chunks (:mod:`.chunked`) build on it."""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Mapping
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from gateway.errors import S3Error, header_not_implemented

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_ECDSA = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
STREAMING_ECDSA_TRAILER = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"
STREAMING_MODES = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})
_SPECIAL_PAYLOADS = frozenset({UNSIGNED_PAYLOAD}) | STREAMING_MODES

#: Allowed clock skew between the request's date and the server's clock, seconds (S3: 15 minutes).
MAX_SKEW_SECONDS = 15 * 60

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX64_ANYCASE = re.compile(r"[0-9a-fA-F]{64}")
# Characters that UriEncode keeps as they are (plus '/' for paths); a string made only of these needs no work.
_PLAIN_QUERY_PART = re.compile(r"[A-Za-z0-9\-._~]*")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/]*")

_CONTENT_SHA256_MESSAGE = (
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER "
    "or a valid sha256 value.")
CREDENTIAL_SHAPE = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'


# --------------------------------------------------------------------------------------------------
# Canonicalisation primitives


def uri_encode(s: str, safe_slash: bool) -> str:
    """AWS ``UriEncode``: keep ``A-Za-z0-9-._~`` (and '/' when ``safe_slash``), ``%XX`` (uppercase) the
    UTF-8 bytes of everything else. Space is ``%20``, never '+'."""
    if (_PLAIN_PATH if safe_slash else _PLAIN_QUERY_PART).fullmatch(s):
        return s   # nothing to encode (the usual key): no trip through urllib
    return quote(s, safe="/" if safe_slash else "")


def _requote(part: str, safe: str) -> str:
    """Percent-decode then UriEncode; identity fast path for already-plain strings."""
    if (_PLAIN_PATH if safe else _PLAIN_QUERY_PART).fullmatch(part):
        return part
    return quote_from_bytes(unquote_to_bytes(part), safe=safe)


def _split_query(raw_query: str, exclude_signature: bool) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if exclude_signature and (key == "X-Amz-Signature"
                                  or ("%" in key and unquote_to_bytes(key) == b"X-Amz-Signature")):
            continue
        pairs.append((key, value))
    return pairs


def canonical_query(raw_query: str, exclude_signature: bool = False) -> str:
    """The SigV4 canonical query string built from the RAW query string.

    Each ``&``-separated part is split on its first '='; key and value are percent-decoded ('+' stays a
    literal '+', as S3 and botocore treat it, so it becomes ``%2B``) and UriEncode-d; pairs are sorted by
    (key, value); a key without '=' gets an empty value (``uploads`` -> ``uploads=``).
    With ``exclude_signature`` the ``X-Amz-Signature`` parameter is left out (presigned URLs).
    """
    if not raw_query:
        return ""
    pairs = [(_requote(k, ""), _requote(v, "")) for k, v in _split_query(raw_query, exclude_signature)]
    pairs.sort()
    return "&".join([k + "=" + v for k, v in pairs])


def _raw_sorted_query(raw_query: str, exclude_signature: bool) -> str:
    """What botocore signs when the query is already in the URL: the raw pairs, sorted, not re-encoded."""
    if not raw_query:
        return ""
    pairs = _split_query(raw_query, exclude_signature)
    pairs.sort()
    return "&".join([k + "=" + v for k, v in pairs])


def canonical_query_candidates(raw_query: str, exclude_signature: bool = False) -> list[str]:
    first = canonical_query(raw_query, exclude_signature)
    raw = _raw_sorted_query(raw_query, exclude_signature)
    return [first] if raw == first else [first, raw]


def canonical_uri_candidates(raw_path: str) -> list[str]:
    """S3 canonical URI candidates for a raw (still percent-encoded) request path, best first.

    1. the path percent-decoded then UriEncode-d with '/' kept (botocore / AWS SDKs; no normalisation:
       '//' and '..' are kept as they are);
    2. the raw path itself, when it differs (clients that sign the path exactly as sent).
    """
    if not raw_path:
        raw_path = "/"
    first = _requote(raw_path, "/")
    return [first] if first == raw_path else [first, raw_path]


@lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request"), cached."""
    k = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    k = hmac.digest(k, region.encode("utf-8"), "sha256")
    k = hmac.digest(k, service.encode("utf-8"), "sha256")
    return hmac.digest(k, b"aws4_request", "sha256")


def hmac_hex(key: bytes, msg: str) -> str:
    return hmac.digest(key, msg.encode("utf-8"), "sha256").hex()


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def signatures_equal(expected_hex: str, provided: str) -> bool:
    """Constant-time comparison that tolerates non-ASCII garbage in ``provided``."""
    return hmac.compare_digest(expected_hex.encode("ascii"), provided.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------------------------------
# Dates

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@lru_cache(maxsize=512)
def parse_amz_date(value: str) -> float | None:
    """``20130524T000000Z`` -> POSIX seconds; None if malformed. Cached: requests share seconds."""
    if (len(value) != 16 or value[8] != "T" or value[15] != "Z" or not value.isascii()
            or not value[:8].isdigit() or not value[9:15].isdigit()):
        return None
    try:
        dt = datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                      int(value[11:13]), int(value[13:15]), tzinfo=timezone.utc)
    except ValueError:
        return None
    return (dt - _EPOCH).total_seconds()


def format_amz_date(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


def format_iso8601(ts: float) -> str:
    """S3's ``ServerTime``/``Expires`` field format: ``2013-05-24T00:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def now_timestamp(now: datetime | None) -> float:
    if now is None:
        return time.time()
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.timestamp()


# --------------------------------------------------------------------------------------------------
# Result


@dataclass(slots=True)
class AuthResult:
    """An authenticated request. ``secret_key``/``signing_key`` are for the chunked decoder: never log them
    (they are excluded from ``repr``)."""

    access_key_id: str
    secret_key: str = field(repr=False)
    signing_key: bytes = field(repr=False)
    scope: str                      # "20260101/auto/s3/aws4_request"
    amz_date: str                   # "20260101T000000Z"
    signature: str                  # the seed signature (lowercase hex), first link of the chunk chain
    signed_headers: tuple[str, ...]
    payload_hash: str               # x-amz-content-sha256 as signed, or "UNSIGNED-PAYLOAD" for presigned
    presigned: bool
    region: str

    @property
    def is_streaming(self) -> bool:
        """The body is aws-chunked: decode it with :class:`gateway.auth.chunked.ChunkedDecoder`."""
        return self.payload_hash in STREAMING_MODES

    @property
    def is_unsigned_payload(self) -> bool:
        return self.payload_hash == UNSIGNED_PAYLOAD


# --------------------------------------------------------------------------------------------------
# Shared verification steps (also used by presign)


def validate_payload_hash(value: str) -> str:
    """Check an ``x-amz-content-sha256`` value; returns it unchanged (it is signed verbatim)."""
    if value in _SPECIAL_PAYLOADS or _HEX64_ANYCASE.fullmatch(value):
        return value
    if value in (STREAMING_ECDSA, STREAMING_ECDSA_TRAILER):
        raise header_not_implemented("x-amz-content-sha256", value)
    raise S3Error("InvalidArgument", _CONTENT_SHA256_MESSAGE, ArgumentName="x-amz-content-sha256",
                  ArgumentValue=value[:128])


def check_signed_headers(signed: tuple[str, ...], headers: Mapping[str, str],
                         require_signed_amz_headers: bool) -> None:
    """``host`` must be signed; with ``require_signed_amz_headers`` every ``x-amz-*`` header present too."""
    signed_set = set(signed)
    missing = [] if "host" in signed_set else ["host"]
    if require_signed_amz_headers:
        missing += [name for name in headers if name.startswith("x-amz-") and name not in signed_set]
    if missing:
        raise S3Error("AccessDenied", "There were headers present in the request which were not signed",
                      HeadersNotSigned=", ".join(missing))


def canonical_headers(signed: tuple[str, ...], headers: Mapping[str, str]) -> str:
    """``name:trimmed-value\\n`` per signed header, in the order signed. A signed header that is absent
    -> SignatureDoesNotMatch (the client signed something we did not receive)."""
    out = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise S3Error("SignatureDoesNotMatch")
        out.append(name + ":" + " ".join(value.split()) + "\n")
    return "".join(out)


def verify_candidates(method: str, raw_path: str, raw_query: str, canon_headers: str, signed_line: str,
                      payload_hash: str, amz_date: str, scope: str, key: bytes, provided: str,
                      access_key_id: str, exclude_signature: bool) -> str:
    """Try the canonical-request candidates (URI x query), return the matching signature or raise."""
    tail = "\n" + canon_headers + "\n" + signed_line + "\n" + payload_hash
    sts_head = ALGORITHM + "\n" + amz_date + "\n" + scope + "\n"
    first_sts = None
    queries = canonical_query_candidates(raw_query, exclude_signature) if raw_query else [""]
    for uri in canonical_uri_candidates(raw_path):
        for query in queries:
            creq = method + "\n" + uri + "\n" + query + tail
            sts = sts_head + hashlib.sha256(creq.encode("utf-8")).hexdigest()
            expected = hmac.digest(key, sts.encode("utf-8"), "sha256").hex()
            if signatures_equal(expected, provided):
                return expected
            if first_sts is None:
                first_sts = sts
    raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=access_key_id, StringToSign=first_sts or "")


def check_credential_scope(parts: list[str], error: Callable[[str], S3Error]) -> None:
    """parts = [date, region, service, terminator]."""
    date, _region, service, terminator = parts
    if len(date) != 8 or not date.isascii() or not date.isdigit():
        raise error(f"Invalid credential date \"{date[:16]}\"")
    if service != SERVICE:
        raise error(f'incorrect service "{service[:32]}". This endpoint belongs to "{SERVICE}".')
    if terminator != TERMINATOR:
        raise error(f'incorrect terminal "{terminator[:32]}". This endpoint uses "{TERMINATOR}".')


# --------------------------------------------------------------------------------------------------
# Entry point
