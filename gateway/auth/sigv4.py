"""AWS Signature Version 4 verification for S3 requests, sans-IO.

Header form (``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``) is
verified here; the query-string (presigned URL) form lives in :mod:`gateway.auth.presign` and is reached
through the same :func:`authenticate` entry point.

Choices (see also the module docstring of ``presign``):

* Region: any region string in the credential scope is accepted (R2 aliases ``auto``, ``us-east-1`` and
  ``""``); the signature is verified with the scope the client signed with, so a request cannot be moved
  to another region's scope without the secret.
* Canonical URI: S3 does not normalise paths. The first candidate is the raw path percent-decoded then
  ``UriEncode``-d with '/' kept (what botocore and the AWS SDKs produce); the raw path as sent is a second
  candidate when it differs (clients that sign exactly what they send). The canonical query likewise has a
  raw-order-sorted second candidate. Extra candidates cost one HMAC each, only on failure.
* Every ``x-amz-*`` header present must be signed and ``host`` must be signed, as S3 enforces
  (``AccessDenied`` "There were headers present in the request which were not signed").

Error codes (header form), following S3:

* no credentials at all -> ``AccessDenied`` (no anonymous access);
* SigV2 (``Authorization: AWS ak:sig`` or ``AWSAccessKeyId``/``Signature`` query) -> ``InvalidRequest``
  "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256." (what
  S3 answers in SigV4-only regions); SigV4a -> ``NotImplemented``; other schemes -> ``InvalidArgument``
  "Unsupported Authorization Type"; header *and* presigned query -> ``InvalidArgument``;
* unparsable header/credential, service other than ``s3``, terminal other than ``aws4_request``, scope
  date != date of ``x-amz-date`` -> ``AuthorizationHeaderMalformed``;
* missing/invalid ``x-amz-date`` (and no valid ``Date``) -> ``AccessDenied`` "AWS authentication requires
  a valid Date or x-amz-date header";
* missing ``x-amz-content-sha256`` -> ``InvalidRequest`` "Missing required header for this request:
  x-amz-content-sha256"; an unknown value -> ``InvalidArgument`` (S3's message); ECDSA streaming ->
  ``NotImplemented``;
* unknown access key -> ``InvalidAccessKeyId``; skew > 15 min -> ``RequestTimeTooSkewed`` (403);
* wrong signature, or a signed header absent -> ``SignatureDoesNotMatch`` (fields: AWSAccessKeyId and
  StringToSign — never the canonical request, which may hold header values such as SSE-C keys).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
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
_CREDENTIAL_SHAPE = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'


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


def _malformed(detail: str) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed", "The authorization header is malformed; " + detail)


# Authorization headers differ from request to request only in their Signature (the Credential's
# date changes daily): what precedes it is parsed once. Bounded: cleared when it holds 1024 forms.
_PARSED: dict[str, tuple[str, list[str], tuple[str, ...]]] = {}


def _parse_authorization(value: str) -> tuple[str, list[str], tuple[str, ...], str]:
    """-> (access key id, [date, region, service, terminator], signed headers, signature)."""
    head, sep, signature = value.rpartition("Signature=")
    if sep and "," not in signature:
        known = _PARSED.get(head)
        if known is not None:
            return known[0], list(known[1]), known[2], signature.strip()
    parsed = _parse_authorization_fully(value)
    # cached only when the one "Signature=" is the last component: then any header with the same
    # prefix parses to the same fields, whatever its (comma-free) signature
    if sep and "," not in signature and value.count("Signature=") == 1:
        if len(_PARSED) >= 1024:
            _PARSED.clear()
        _PARSED[head] = (parsed[0], list(parsed[1]), parsed[2])
    return parsed


def _parse_authorization_fully(value: str) -> tuple[str, list[str], tuple[str, ...], str]:
    rest = value[len(ALGORITHM):]
    if not rest or rest[0] not in " \t":
        raise _malformed("the authorization header requires three components: Credential, SignedHeaders, "
                         "and Signature.")
    fields: dict[str, str] = {}
    for component in rest.split(","):
        name, eq, val = component.strip().partition("=")
        if not eq or name in fields:
            raise _malformed(f"the authorization component \"{name[:32]}\" is malformed.")
        fields[name] = val.strip()
    try:
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError:
        raise _malformed("the authorization header requires three components: Credential, SignedHeaders, "
                         "and Signature.") from None
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not parts[0]:
        raise _malformed("the Credential is mal-formed; " + _CREDENTIAL_SHAPE)
    names = tuple(signed.split(";"))
    if not signed or any(not n or n != n.strip() for n in names):
        raise _malformed("the SignedHeaders component is malformed.")
    return parts[0], parts[1:], tuple(n.lower() for n in names), signature


_last_amz_date: list = [None, None]   # [value, POSIX seconds]: requests of one second share it


def _request_time(headers: Mapping[str, str]) -> tuple[str, float]:
    """(amz_date as signed, POSIX seconds) from x-amz-date, else the Date header (RFC 7231)."""
    amz = headers.get("x-amz-date")
    if amz is not None:
        if amz == _last_amz_date[0]:
            return amz, _last_amz_date[1]
        ts = parse_amz_date(amz.strip())
        if ts is not None and amz == amz.strip():
            _last_amz_date[0], _last_amz_date[1] = amz, ts
        if ts is not None:
            return amz.strip(), ts
    else:
        date = headers.get("date")
        if date is not None:
            try:
                dt = parsedate_to_datetime(date)
            except (TypeError, ValueError, IndexError):
                dt = None
            if dt is not None:
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=timezone.utc)
                ts = dt.timestamp()
                return format_amz_date(ts), ts
    raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")


def _has_presign_params(raw_query: str) -> bool:
    if "X-Amz-" not in raw_query:
        return False
    for part in raw_query.split("&"):
        key = part.partition("=")[0]
        if "%" in key:
            key = unquote_to_bytes(key).decode("utf-8", "replace")
        if key in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"):
            return True
    return False


def _has_sigv2_params(raw_query: str) -> bool:
    return "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query


def authenticate(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                 lookup_secret: Callable[[str], str | None], now: datetime | None = None, *,
                 skew_seconds: float = MAX_SKEW_SECONDS,
                 require_signed_amz_headers: bool = True) -> AuthResult:
    """Verify a request's SigV4 signature (header or presigned-URL form) and return who signed it.

    ``raw_path``/``raw_query`` are exactly as received (still percent-encoded, query without '?');
    ``headers`` has lowercase names with repeated headers joined by ','. ``skew_seconds`` is the allowed
    clock skew (S3: 900). Raises :class:`S3Error`.
    """
    authorization = headers.get("authorization")
    presign = bool(raw_query) and _has_presign_params(raw_query)
    if authorization is not None and presign:
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                      "parameter, Signature query string parameter or the Authorization header should be "
                      "specified", ArgumentName="Authorization")
    if presign:
        return _presign.authenticate_presigned(method, raw_path, raw_query, headers, lookup_secret, now,
                                               skew_seconds=skew_seconds,
                                               require_signed_amz_headers=require_signed_amz_headers)
    if authorization is None:
        if raw_query and _has_sigv2_params(raw_query):
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                          "Please use AWS4-HMAC-SHA256.")
        raise S3Error("AccessDenied", "Access Denied")

    authorization = authorization.strip()
    if not authorization.startswith(ALGORITHM):
        if authorization.startswith("AWS "):
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                          "Please use AWS4-HMAC-SHA256.")
        if authorization.startswith("AWS4-ECDSA-P256-SHA256"):
            raise S3Error("NotImplemented", "AWS4-ECDSA-P256-SHA256 (SigV4a) not implemented")
        raise S3Error("InvalidArgument", "Unsupported Authorization Type", ArgumentName="Authorization")

    access_key_id, scope_parts, signed, provided = _parse_authorization(authorization)
    check_credential_scope(scope_parts, _malformed)
    amz_date, request_ts = _request_time(headers)
    if scope_parts[0] != amz_date[:8]:
        raise _malformed(f'Invalid credential date "{scope_parts[0]}". This date is not the same as '
                         f'X-Amz-Date: "{amz_date[:8]}".')

    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    payload_hash = validate_payload_hash(payload_hash.strip())

    secret = lookup_secret(access_key_id)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key_id)

    server_ts = now_timestamp(now)
    if abs(server_ts - request_ts) > skew_seconds:
        raise S3Error("RequestTimeTooSkewed",
                      "The difference between the request time and the current time is too large.",
                      RequestTime=amz_date, ServerTime=format_iso8601(server_ts),
                      MaxAllowedSkewMilliseconds=str(int(skew_seconds * 1000)))

    check_signed_headers(signed, headers, require_signed_amz_headers)
    canon = canonical_headers(signed, headers)
    date, region, service, _ = scope_parts
    key = signing_key(secret, date, region, service)
    scope = "/".join(scope_parts)
    signature = verify_candidates(method, raw_path, raw_query, canon, ";".join(signed), payload_hash,
                                  amz_date, scope, key, provided.lower(), access_key_id, False)
    return AuthResult(access_key_id=access_key_id, secret_key=secret, signing_key=key, scope=scope,
                      amz_date=amz_date, signature=signature, signed_headers=signed,
                      payload_hash=payload_hash, presigned=False, region=region)


# Imported last: presign imports the helpers above (module attribute access keeps the cycle safe).
from gateway.auth import presign as _presign  # noqa: E402
