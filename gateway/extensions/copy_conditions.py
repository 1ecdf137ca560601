"""CopyObject conditions: R2's ``cf-copy-destination-if-*`` (checked against the destination just
before the copy is committed) and S3's ``x-amz-copy-source-if-*`` (checked against the source;
enforced here too because Ceph RGW does not fail if-match/if-none-match on CopyObject).

Neither is atomic with the copy on upstreams without conditional copies; R2 documents that the two
families are not atomic with each other either.
"""
from __future__ import annotations

from .conditions import Conditions, holds, state_from_head
from ..errors import S3Error



async def copy_conditions(ex, proceed):
    dest = Conditions.from_headers(ex.headers, "cf-copy-destination-")
    source = Conditions.from_headers(ex.headers, "x-amz-copy-source-")
    if source:
        bucket, key, _ = ex.copy_source()
        status, headers = await ex.head(bucket, key, ex.sse_c(source=True))
        if status == 404:
            raise S3Error("NoSuchKey")
        if not holds(source, state_from_head(status, headers)):
            raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If")
    if dest and ex.op == "CopyObject":  # R2 defines cf-copy-destination-if-* for CopyObject only
        status, headers = await ex.head(ex.bucket, ex.key, ex.sse_c())
        if not holds(dest, state_from_head(status, headers)):
            raise S3Error("PreconditionFailed", Condition="cf-copy-destination-If")
    return await proceed(ex)


def register(ext) -> None:
    # UploadPartCopy: boto3/aws-cli managed copies send x-amz-copy-source-if-match on every part,
    # and RGW ignores it there too
    ext.register(copy_conditions, "CopyObject", "UploadPartCopy")
