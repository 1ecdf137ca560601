"""Unicode metadata (RFC 2047): ``x-amz-meta-*`` values arriving RFC 2047-encoded (or as raw
UTF-8) are decoded; values with non-ASCII characters are stored upstream as one RFC 2047
encoded-word, so every upstream keeps them intact (Ceph RGW mangles raw UTF-8) and retrieval
returns them RFC 2047-encoded, as R2 does. The 8,192-byte limit applies to the decoded values.
Metadata *names* with non-ASCII characters are dropped, as R2 does."""
from __future__ import annotations

from ..errors import S3Error
from ..rfc2047 import CONTROL, decode_value, encode_value
from ..upstream.responses import RESERVED_METADATA

LIMIT = 8192


def decoded_metadata_size(headers: dict[str, str]) -> int:
    size = 0
    for k, v in headers.items():
        if k.startswith("x-amz-meta-"):
            size += len(k) - 11 + len(decode_value(v).encode())
    return size


async def unicode_metadata(ex, proceed):
    headers = ex.upstream_headers
    names = [k for k in headers if k.startswith("x-amz-meta-") and k not in RESERVED_METADATA]
    if not names:
        return await proceed(ex)
    size = 0
    dropped = 0
    for k in names:
        if not k.isascii() or any(0xDC80 <= ord(c) <= 0xDCFF for c in k):
            del headers[k]
            dropped += 1
            continue
        value = decode_value(headers[k])
        if CONTROL.search(value):
            raise S3Error("InvalidArgument", "Metadata values may not contain control characters.",
                          ArgumentName=k)
        size += len(k) - 11 + len(value.encode())
        headers[k] = encode_value(value)
    if size > LIMIT:
        raise S3Error("MetadataTooLarge", Size=str(size), MaxSizeAllowed=str(LIMIT))
    if dropped:
        ex.response_headers["x-amz-missing-meta"] = str(dropped)
    return await proceed(ex)


def register(ext) -> None:
    ext.register(unicode_metadata, "PutObject", "CopyObject", "CreateMultipartUpload")
