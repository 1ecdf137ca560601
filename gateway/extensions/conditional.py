"""R2's conditional PutObject (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since)
and conditional CompleteMultipartUpload: 412 PreconditionFailed when the object's current state
does not match.

The check is pinned to the state it saw: after a HEAD, the write goes upstream with
``If-Match: <etag>`` (object existed) or ``If-None-Match: *`` (it did not), so a concurrent
writer between the HEAD and the write makes the upstream answer 412 instead of overwriting. On
upstreams that honour If-Match/If-None-Match natively (AWS S3, MinIO), ETag-only conditions go
straight through with no HEAD. Ceph RGW wants the pinned ETag unquoted, and ignores the pin on
CompleteMultipartUpload: there the check is HEAD-then-write, with the race the README describes.
"""
from __future__ import annotations

from .conditions import Conditions, holds, state_from_head
from ..errors import S3Error
from ..upstream import quirks

_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


async def conditional_write(ex, proceed):
    cond = Conditions.from_headers(ex.headers)
    if not cond:
        return await proceed(ex)
    for h in _HEADERS:
        ex.upstream_headers.pop(h, None)
    upstream = ex.upstream
    if upstream.has(quirks.CONDITIONAL_WRITES) and not cond.by_time:
        for h in ("if-match", "if-none-match"):
            if h in ex.headers:
                ex.upstream_headers[h] = ex.headers[h]
        return await proceed(ex)
    status, headers = await ex.head(ex.bucket, ex.key, ex.sse_c())
    state = state_from_head(status, headers)
    if not holds(cond, state):
        raise S3Error("PreconditionFailed", Condition=_first(cond))
    if state.exists:
        ex.upstream_headers["if-match"] = state.etag if upstream.has(quirks.UNQUOTED_IF_MATCH) else f'"{state.etag}"'
    else:
        ex.upstream_headers["if-none-match"] = "*"
    return await proceed(ex)


def _first(cond: Conditions) -> str:
    for name, value in zip(("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"),
                           (cond.if_match, cond.if_none_match, cond.if_modified_since, cond.if_unmodified_since)):
        if value is not None:
            return name
    return ""


def register(ext) -> None:
    ext.register(conditional_write, "PutObject", "CompleteMultipartUpload")
