"""``cf-create-bucket-if-missing: true`` on PutObject and CreateMultipartUpload: the bucket is
created (``PUT /<bucket>`` with an empty configuration) before the body is sent, so the client
never has to resend it. Creating an existing bucket of our own is not an error, so concurrent
first uploads to one new bucket all succeed."""
from __future__ import annotations

from ..errors import S3Error
from ..upstream.responses import upstream_error


async def create_if_missing(ex, proceed):
    if ex.headers.get("cf-create-bucket-if-missing", "").lower() != "true":
        return await proceed(ex)
    status, headers = await ex.head(ex.bucket)
    if status == 404:
        resp = await ex.call_upstream("PUT", ex.bucket_path(ex.bucket), "", {}, None)
        try:
            if resp.status >= 400 and resp.status != 409:
                raise await upstream_error(ex, resp)
        finally:
            resp.release()
    elif status == 403:
        raise S3Error("AccessDenied")
    return await proceed(ex)


def register(ext) -> None:
    ext.register(create_if_missing, "PutObject", "CreateMultipartUpload")
