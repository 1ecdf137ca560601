"""CopyObject conditions: R2's ``cf-copy-destination-if-*`` (checked against the destination just
before the copy is committed) and S3's ``x-amz-copy-source-if-*`` (checked against the source;
enforced here too because Ceph RGW does not fail if-match/if-none-match on CopyObject).

Neither is atomic with the copy on upstreams without conditional copies; R2 documents that the two
families are not atomic with each other either.
"""
from __future__ import annotations

from .conditions import Conditions, holds, state_from_head
from ..errors import S3Error

_SOURCE_SSE = "x-amz-copy-source-server-side-encryption-customer-"


async def copy_conditions(ex, proceed):
    dest = Conditions.from_headers(ex.headers, "cf-copy-destination-")
    source = Conditions.from_headers(ex.headers, "x-amz-copy-source-")
    if source:
        bucket, key, _ = ex.copy_source()
        sse = {"x-amz-server-side-encryption-customer-" + k[len(_SOURCE_SSE):]: v
               for k, v in ex.headers.items() if k.startswith(_SOURCE_SSE)}
        status, headers = await ex.head(bucket, key, sse)
        if status == 404:
            raise S3Error("NoSuchKey")
        if not holds(source, state_from_head(status, headers)):
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If")
    if dest:
        sse = {k: v for k, v in ex.upstream_headers.items()
               if k.startswith("x-amz-server-side-encryption-customer-")}
        status, headers = await ex.head(ex.bucket, ex.key, sse)
        if not holds(dest, state_from_head(status, headers)):
            raise S3Error("PreconditionFailed", Condition="cf-copy-destination-If")
    return await proceed(ex)


def register(ext) -> None:
    ext.register(copy_conditions, "CopyObject")
