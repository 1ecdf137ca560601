"""SigV4 query-string authentication (presigned URLs), sans-IO.

Reached through :func:`gateway.auth.sigv4.authenticate` when the query carries ``X-Amz-Algorithm`` /
``X-Amz-Credential`` / ``X-Amz-Signature``. Error choices follow S3:

* missing/invalid auth parameters, ``X-Amz-Expires`` of 0 or over 604800, bad ``X-Amz-Date``, bad
  credential -> ``AuthorizationQueryParametersError`` (400);
* expired, or a negative ``X-Amz-Expires`` (a URL that expired before it was made) -> ``AccessDenied``
  "Request has expired" with ``X-Amz-Expires``, ``Expires``, ``ServerTime``;
* ``X-Amz-Date`` more than 15 minutes in the future -> ``AccessDenied`` "Request is not yet valid"
  (S3's wording) with ``X-Amz-Date``, ``Expires``, ``ServerTime``;
* the payload hash is ``UNSIGNED-PAYLOAD`` unless an ``X-Amz-Content-Sha256`` query parameter (or a signed
  ``x-amz-content-sha256`` header) says otherwise;
* method, path, query and every signed header are covered by the signature, so a URL cannot be widened;
  ``x-amz-*`` headers sent but not signed are refused (``AccessDenied``, ``HeadersNotSigned``), as S3.

``X-Amz-Security-Token`` is accepted as an ordinary signed query parameter (there is no STS here).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Mapping
from urllib.parse import unquote, unquote_to_bytes

from gateway.auth import canonical
from gateway.errors import S3Error

#: Maximum X-Amz-Expires, seconds (7 days), as S3.
MAX_EXPIRES = 604800

#: The query parameters that carry the authentication itself; stripped before forwarding upstream.
AUTH_PARAMS = frozenset({
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
    "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Content-Sha256",
})
_EXPIRES = re.compile(r"-?[0-9]{1,12}")
_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders",
             "X-Amz-Expires")
_REQUIRED_MESSAGE = ("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                     "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")


def _qerror(message: str) -> S3Error:
    return S3Error("AuthorizationQueryParametersError", message)


def _credential_error(detail: str) -> S3Error:
    return _qerror("Error parsing the X-Amz-Credential parameter; " + detail)


def _decoded_key(raw_key: str) -> str:
    return unquote_to_bytes(raw_key).decode("utf-8", "replace") if "%" in raw_key else raw_key


def strip_presign_params(raw_query: str) -> str:
    """The raw query without the SigV4 auth parameters (``X-Amz-Algorithm``, ``-Credential``, ``-Date``,
    ``-Expires``, ``-SignedHeaders``, ``-Signature``, ``-Security-Token``, ``-Content-Sha256``); every other
    part is kept byte for byte and in order."""
    if not raw_query or "X-Amz-" not in raw_query and "%" not in raw_query:
        return raw_query
    return "&".join(part for part in raw_query.split("&")
                    if _decoded_key(part.partition("=")[0]) not in AUTH_PARAMS)


def _auth_params(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in raw_query.split("&"):
        raw_key, _, raw_value = part.partition("=")
        key = _decoded_key(raw_key)
        if key in AUTH_PARAMS:
            if key in params:
                raise _qerror(f"Duplicate {key} parameter.")
            params[key] = unquote(raw_value)
    return params


def authenticate_presigned(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                           lookup_secret: Callable[[str], str | None], now: datetime | None = None, *,
                           skew_seconds: float = canonical.MAX_SKEW_SECONDS,
                           require_signed_amz_headers: bool = True) -> canonical.AuthResult:
    params = _auth_params(raw_query)
    if any(name not in params for name in _REQUIRED):
        raise _qerror(_REQUIRED_MESSAGE)

    algorithm = params["X-Amz-Algorithm"]
    if algorithm != canonical.ALGORITHM:
        if algorithm == "AWS4-ECDSA-P256-SHA256":
            raise S3Error("NotImplemented", "AWS4-ECDSA-P256-SHA256 (SigV4a) not implemented")
        raise _qerror('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')

    parts = params["X-Amz-Credential"].rsplit("/", 4)
    if len(parts) != 5 or not parts[0]:
        raise _credential_error('the Credential is mal-formed; expecting '
                                '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    access_key_id, scope_parts = parts[0], parts[1:]
    canonical.check_credential_scope(scope_parts, _credential_error)

    amz_date = params["X-Amz-Date"]
    request_ts = canonical.parse_amz_date(amz_date)
    if request_ts is None:
        raise _qerror("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if scope_parts[0] != amz_date[:8]:
        raise _credential_error(f'Invalid credential date "{scope_parts[0]}". This date is not the same as '
                                f'X-Amz-Date: "{amz_date[:8]}".')

    raw_expires = params["X-Amz-Expires"]
    if not _EXPIRES.fullmatch(raw_expires):
        raise _qerror("X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires == 0:
        raise _qerror("X-Amz-Expires must be a positive number of seconds")
    if expires > MAX_EXPIRES:
        raise _qerror(f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}")

    signed_raw = params["X-Amz-SignedHeaders"]
    signed = tuple(name.lower() for name in signed_raw.split(";"))
    if not signed_raw or any(not n or n != n.strip() for n in signed):
        raise _qerror("X-Amz-SignedHeaders is malformed")

    if "X-Amz-Content-Sha256" in params:
        payload_hash = params["X-Amz-Content-Sha256"]
    elif "x-amz-content-sha256" in signed and "x-amz-content-sha256" in headers:
        payload_hash = headers["x-amz-content-sha256"].strip()
    else:
        payload_hash = canonical.UNSIGNED_PAYLOAD
    if payload_hash != canonical.UNSIGNED_PAYLOAD:
        canonical.validate_payload_hash(payload_hash)
        if payload_hash in canonical.STREAMING_MODES:
            raise S3Error("InvalidArgument", "A presigned request cannot use a streaming payload",
                          ArgumentName="x-amz-content-sha256", ArgumentValue=payload_hash)

    secret = lookup_secret(access_key_id)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key_id)

    server_ts = canonical.now_timestamp(now)
    expires_at = request_ts + expires
    if server_ts > expires_at:
        raise S3Error("AccessDenied", "Request has expired", **{
            "X-Amz-Expires": str(expires), "Expires": canonical.format_iso8601(expires_at),
            "ServerTime": canonical.format_iso8601(server_ts)})
    if request_ts - server_ts > skew_seconds:
        raise S3Error("AccessDenied", "Request is not yet valid", **{
            "X-Amz-Date": amz_date, "Expires": canonical.format_iso8601(expires_at),
            "ServerTime": canonical.format_iso8601(server_ts)})

    canonical.check_signed_headers(signed, headers, require_signed_amz_headers)
    canon = canonical.canonical_headers(signed, headers)
    date, region, service, _ = scope_parts
    key = canonical.signing_key(secret, date, region, service)
    scope = "/".join(scope_parts)
    signature = canonical.verify_candidates(method, raw_path, raw_query, canon, ";".join(signed), payload_hash,
                                        amz_date, scope, key, params["X-Amz-Signature"].lower(),
                                        access_key_id, True)
    return canonical.AuthResult(access_key_id=access_key_id, secret_key=secret, signing_key=key, scope=scope,
                            amz_date=amz_date, signature=signature, signed_headers=signed,
                            payload_hash=payload_hash, presigned=True, region=region)
