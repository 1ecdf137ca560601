"""``x-amz-metadata-directive: MERGE`` on CopyObject: the source's metadata, with the keys the
request names replaced. Sent upstream as a REPLACE carrying the merged set, so a MERGE can add or
change keys but never delete one. System metadata merges the same way."""
from __future__ import annotations

from ..errors import S3Error

SYSTEM = ("content-type", "cache-control", "content-disposition", "content-encoding", "content-language",
          "expires")


async def merge(ex, proceed):
    directive = ex.headers.get("x-amz-metadata-directive", "").upper()
    if directive != "MERGE":
        return await proceed(ex)
    bucket, key, _ = ex.copy_source()
    status, headers = await ex.head(bucket, key, ex.sse_c(source=True))
    if status == 404:
        raise S3Error("NoSuchKey")
    if status >= 300:
        raise S3Error("AccessDenied" if status == 403 else "InternalError")
    merged: dict[str, str] = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk in SYSTEM or lk.startswith("x-amz-meta-"):
            merged[lk] = v
    for k, v in ex.upstream_headers.items():
        if k in SYSTEM or k.startswith("x-amz-meta-"):
            merged[k] = v
    ex.upstream_headers.update(merged)
    ex.upstream_headers["x-amz-metadata-directive"] = "REPLACE"
    return await proceed(ex)


def register(ext) -> None:
    ext.register(merge, "CopyObject")
