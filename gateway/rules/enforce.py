"""Check one request against a compatibility profile: the list of what it asks for that the profile's
provider does not do, each with the error that provider answers (R2: 501 NotImplemented, in R2's
words). Modes (enforce / audit / off) are the caller's business (see ``rules.mode``).

What is checked, in this order:
1. the operation is implemented, else ``<Op> not implemented`` (and nothing else is checked);
2. each ❌ header of the operation (and the profile's ❌ common headers) that is present with a value
   not among the profile's harmless values: ``Header '<name>' with value '<value>' not implemented``;
3. each ❌ query parameter likewise: ``Query parameter '<name>' with value '<value>' not implemented``
   (R2 has no published wording for this; it follows the header message);
4. x-amz-storage-class, where ✅, against the profile's storage classes (R2 refuses even an empty
   value, with the header message);
5. for requests with a body (PUT/POST) and for operations with ❌ header families (``prefix-*``): one
   walk over the headers for the family rules, the checksum matrix (``x-amz-checksum-<alg>``,
   ``x-amz-checksum-algorithm``, ``x-amz-sdk-checksum-algorithm``, ``x-amz-trailer``,
   ``x-amz-checksum-type``) and the user-metadata size; then the limits of CreateBucket (bucket
   name, also for PutObject / CreateMultipartUpload with ``cf-create-bucket-if-missing: true``),
   PutObject (size) and UploadPart / UploadPartCopy (part number);
6. the key length, on object-level operations.

An ordinary GET costs a dict lookup for the operation and one per ❌ header (two for R2's GetObject).
Header values that are secrets (SSE-C keys, session tokens) are never echoed: they show as ``***``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..errors import S3Error, header_not_implemented, not_implemented
from ..rfc2047 import decode_value
from .profile import OpRules, Profile

_SECRET_HEADERS = frozenset({
    "authorization",
    "x-amz-security-token",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key",
})
_MAX_SHOWN = 256  # a value echoed in a message is cut here
_CREATE_IF_MISSING_OPS = frozenset({"PutObject", "CreateMultipartUpload"})
_PART_OPS = frozenset({"UploadPart", "UploadPartCopy"})


@dataclass(slots=True)
class Violation:
    feature: str      # "GetObjectTagging", "x-amz-acl=public-read", "?versionId=3", "key-length", …
    error: S3Error

    @property
    def name(self) -> str:
        """The feature without the client's value ("x-amz-acl"): a bounded set, fit for a metric label."""
        return self.feature.partition("=")[0]


def _shown(name: str, value: str) -> str:
    if name in _SECRET_HEADERS:
        return "***"
    return value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…"


def _header(name: str, value: str) -> Violation:
    shown = _shown(name, value)
    return Violation(f"{name}={shown}", header_not_implemented(name, shown))


def _query(name: str, value: str) -> Violation:
    shown = _shown(name, value)
    return Violation(f"?{name}={shown}", S3Error(
        "NotImplemented", f"Query parameter '{name}' with value '{shown}' not implemented"))


def _utf8_len(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogateescape"))


def check(profile: Profile, op: str, headers: Mapping[str, str], query: Mapping[str, str],
          bucket: str | None, key: str | None, *, decoded_metadata_size: int | None = None) -> list[Violation]:
    """What in this request ``profile``'s provider does not implement (empty: nothing).

    ``headers`` has lowercase names. ``decoded_metadata_size`` overrides the measured size of the
    x-amz-meta-* headers (for a caller that has decoded them already).
    """
    rules = profile.op_rules.get(op)
    if rules is None or not rules.implemented:
        return [Violation(op, not_implemented(op))]
    out: list[Violation] = []
    for name, harmless in rules.refuse_headers:
        value = headers.get(name)
        if value is not None and value.strip().lower() not in harmless:
            out.append(_header(name, value))
    if rules.refuse_query and query:
        for name, harmless in rules.refuse_query:
            value = query.get(name)
            if value is not None and value.strip().lower() not in harmless:
                out.append(_query(name, value))
    if rules.storage_class:
        value = headers.get("x-amz-storage-class")
        if value is not None and value not in profile.storage_class_set:
            out.append(_storage_class(profile, value))
    if rules.scan:
        _scan(profile, op, rules, headers, query, bucket, out, decoded_metadata_size)
    if rules.object_level and key is not None:
        limit = profile.limits.max_key_bytes
        if len(key) * 4 > limit and _utf8_len(key) > limit:
            out.append(Violation("key-length", S3Error(profile.limits.key_error)))
    return out


def _storage_class(profile: Profile, value: str) -> Violation:
    if profile.storage_class_error == "NotImplemented":
        return _header("x-amz-storage-class", value)
    return Violation(f"x-amz-storage-class={_shown('x-amz-storage-class', value)}",
                     S3Error(profile.storage_class_error))


def _scan(profile: Profile, op: str, rules: OpRules, headers: Mapping[str, str], query: Mapping[str, str],
          bucket: str | None, out: list[Violation], decoded_metadata_size: int | None) -> None:
    checksums = profile.checksums
    prefixes = rules.refuse_prefixes
    any_prefix = rules.any_prefix
    refused = rules.refused_names
    unicode_meta = "unicode_metadata" in profile.extension_set
    meta = 0
    algorithm = checksum_type = None
    for name, value in headers.items():
        if name in refused:
            continue  # its own ❌ rule decided already
        if any_prefix and name.startswith(any_prefix):
            harmless = next(h for p, h in prefixes if name.startswith(p))
            if value.strip().lower() not in harmless:
                out.append(_header(name, value))
            continue
        if not name.startswith("x-amz-"):
            continue
        if name.startswith("x-amz-meta-"):
            meta += len(name) - 11 + _utf8_len(decode_value(value) if unicode_meta and "=?" in value else value)
        elif name.startswith("x-amz-checksum-"):
            suffix = name[15:]
            if suffix == "type":
                checksum_type = value
            elif suffix == "mode":
                pass  # GetObject/HeadObject's request for checksums in the answer
            else:
                alg = value.strip().upper() if suffix == "algorithm" else suffix.upper()
                if alg in checksums:
                    algorithm = alg
                else:
                    out.append(_header(name, value))
        elif name == "x-amz-sdk-checksum-algorithm":
            if value.strip().upper() not in checksums:
                out.append(_header(name, value))
        elif name == "x-amz-trailer":
            for t in value.split(","):
                t = t.strip().lower()
                if t.startswith("x-amz-checksum-") and t[15:].upper() not in checksums:
                    out.append(_header(name, value))
                    break
    if checksum_type is not None and algorithm is not None \
            and checksum_type.strip().upper() not in checksums[algorithm]:
        out.append(_header("x-amz-checksum-type", checksum_type))
    limits = profile.limits
    if rules.metadata:
        size = meta if decoded_metadata_size is None else decoded_metadata_size
        if size > limits.max_metadata_bytes:
            out.append(Violation("metadata-size", S3Error("MetadataTooLarge")))
    if op == "CreateBucket" or (op in _CREATE_IF_MISSING_OPS
                                and "create_bucket_if_missing" in profile.extension_set
                                and headers.get("cf-create-bucket-if-missing", "").lower() == "true"):
        if bucket is not None and not profile.valid_bucket_name(bucket):
            out.append(Violation("bucket-name", S3Error("InvalidBucketName", BucketName=bucket[:_MAX_SHOWN])))
    elif op == "PutObject" and limits.max_put_object_bytes is not None:
        size = headers.get("x-amz-decoded-content-length") or headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limits.max_put_object_bytes:
            out.append(Violation("object-size", S3Error("EntityTooLarge")))
    elif op in _PART_OPS and limits.max_parts is not None:
        part = query.get("partNumber", "")
        if not (part.isdigit() and 1 <= int(part) <= limits.max_parts):
            out.append(Violation("part-number", S3Error(
                "InvalidArgument", f"Part number must be an integer between 1 and {limits.max_parts}, inclusive",
                ArgumentName="partNumber", ArgumentValue=part[:_MAX_SHOWN])))
