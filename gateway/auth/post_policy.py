"""PostObject's authentication, sans-IO: the SigV4 signature of a browser form's POST policy
(``authenticate_form``) and the policy's evaluation against the form's fields (``check_policy``):
``expiration``, each condition (``{"field": v}``, ``eq``, ``starts-with`` — Content-Type: each
comma-separated value —, ``content-length-range``, the ``bucket``), and AWS's "Extra input fields"
(every field but policy, x-amz-signature, file and ``x-ignore-*`` must be named by a condition).
Failures are 403 AccessDenied "Invalid according to Policy: …" or 400 InvalidPolicyDocument."""
from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timezone
from typing import Callable

from ..errors import S3Error
from .canonical import AuthResult, hmac_hex, parse_amz_date, signatures_equal, signing_key

_NOT_COVERED = frozenset({"policy", "x-amz-signature", "file"})


def _policy_denied(reason: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {reason}")


def _invalid_policy(reason: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {reason}", status=400)


def _parse_expiration(value) -> float:
    if not isinstance(value, str):
        raise _invalid_policy("Invalid 'expiration' value")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid_policy(f"Invalid 'expiration' value: '{value[:64]}'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def authenticate_form(fields: dict[str, str], secret_for: Callable[[str], str | None]) -> tuple[dict, AuthResult]:
    """The form's SigV4 POST signature (over the base64 policy) → (the policy document, who signed)."""
    policy_b64 = fields.get("policy")
    signature = fields.get("x-amz-signature")
    if policy_b64 is None or signature is None:
        if "awsaccesskeyid" in fields or "signature" in fields:
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. "
                          "Please use AWS4-HMAC-SHA256.")
        raise S3Error("AccessDenied", "Access Denied")  # no anonymous access
    algorithm = fields.get("x-amz-algorithm", "")
    if algorithm != "AWS4-HMAC-SHA256":
        raise S3Error("InvalidArgument", "POST form x-amz-algorithm must be AWS4-HMAC-SHA256",
                      ArgumentName="x-amz-algorithm", ArgumentValue=algorithm[:64])
    credential = fields.get("x-amz-credential", "")
    parts = credential.split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request" or not parts[0]:
        raise S3Error("InvalidArgument", 'x-amz-credential: expecting "<YOUR-AKID>/YYYYMMDD/REGION/s3/aws4_request".',
                      ArgumentName="x-amz-credential")
    access_key_id, date, region = parts[0], parts[1], parts[2]
    amz_date = fields.get("x-amz-date", "")
    if parse_amz_date(amz_date) is None or amz_date[:8] != date:
        raise S3Error("InvalidArgument", "x-amz-date must be YYYYMMDDTHHMMSSZ, on the credential's date",
                      ArgumentName="x-amz-date")
    secret = secret_for(access_key_id)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key_id)
    key = signing_key(secret, date, region, "s3")
    if not signatures_equal(hmac_hex(key, policy_b64), signature.strip().lower()):
        raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=access_key_id, StringToSign=policy_b64[:4096])
    auth = AuthResult(access_key_id=access_key_id, secret_key=secret, signing_key=key,
                      scope="/".join(parts[1:]), amz_date=amz_date, signature=signature.strip().lower(),
                      signed_headers=(), payload_hash="UNSIGNED-PAYLOAD", presigned=False, region=region)
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(policy, dict):
        raise _invalid_policy("Invalid JSON.")
    return policy, auth


def check_policy(policy: dict, fields: dict[str, str], bucket: str) -> tuple[int, int] | None:
    """Raise unless the form satisfies the policy; returns content-length-range (min, max) if any."""
    if "expiration" not in policy:
        raise _invalid_policy("Policy missing expiration.")
    if time.time() > _parse_expiration(policy["expiration"]):
        raise _policy_denied("Policy expired.")
    conditions = policy.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid_policy("Policy missing conditions.")
    covered: set[str] = set()
    length_range = None
    for cond in conditions:
        if isinstance(cond, dict):
            if len(cond) != 1:
                raise _invalid_policy("Each condition names one field.")
            (name, expected), = cond.items()
            op, field = "eq", str(name).lower()
        elif isinstance(cond, list) and len(cond) == 3 and isinstance(cond[0], str):
            op = cond[0].lower()
            if op == "content-length-range":
                try:
                    low, high = int(cond[1]), int(cond[2])
                except (TypeError, ValueError):
                    raise _invalid_policy("Invalid content-length-range.") from None
                length_range = (low, high)
                continue
            if op not in ("eq", "starts-with") or not isinstance(cond[1], str) or not cond[1].startswith("$"):
                raise _invalid_policy(f"Invalid condition: {json.dumps(cond)[:256]}")
            field, expected = cond[1][1:].lower(), cond[2]
        else:
            raise _invalid_policy(f"Invalid condition: {json.dumps(cond)[:256]}")
        if not isinstance(expected, str):
            raise _invalid_policy(f"Invalid condition: {json.dumps(cond)[:256]}")
        covered.add(field)
        actual = bucket if field == "bucket" else fields.get(field, "")
        if op == "eq":
            ok = actual == expected
        elif field == "content-type":
            ok = all(v.strip().startswith(expected) for v in actual.split(","))
        else:
            ok = actual.startswith(expected)
        if not ok:
            raise _policy_denied(f"Policy Condition failed: {json.dumps(cond)[:256]}")
    extra = sorted(f for f in fields if f not in covered and f not in _NOT_COVERED and not f.startswith("x-ignore-"))
    if extra:
        raise _policy_denied("Extra input fields: " + ", ".join(extra)[:256])
    return length_range
