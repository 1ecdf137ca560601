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

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping
from urllib.parse import unquote_to_bytes

from gateway.errors import S3Error

from . import presign as _presign
# the shared pieces, also reachable from here (``sigv4.uri_encode``, ``sigv4.AuthResult``)
from .canonical import (  # noqa: F401
    CREDENTIAL_SHAPE, ALGORITHM, EMPTY_SHA256, MAX_SKEW_SECONDS, STREAMING_ECDSA, STREAMING_MODES,
    STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD, AuthResult,
    canonical_headers, canonical_query, canonical_query_candidates, canonical_uri_candidates,
    check_credential_scope, check_signed_headers, format_amz_date, format_iso8601, hmac, hmac_hex,
    now_timestamp, parse_amz_date, sha256_hex, signatures_equal, signing_key, uri_encode,
    validate_payload_hash, verify_candidates)

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
        raise _malformed("the Credential is mal-formed; " + CREDENTIAL_SHAPE)
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
