"""Region ``auto``: CreateBucket accepts LocationConstraint ``auto``, empty, ``us-east-1`` or one
of R2's location hints and creates the bucket in the upstream's own region; GetBucketLocation
answers ``auto`` as R2 does."""
from __future__ import annotations

from ..server import Response

from .. import s3xml
from ..errors import S3Error

ALIASES = frozenset({"", "auto", "us-east-1"})
# R2's location hints: accepted and mapped to the upstream's region
HINTS = frozenset({"wnam", "enam", "weur", "eeur", "apac", "oc"})


async def create_bucket(ex, proceed):
    body = ex.body if isinstance(ex.body, bytes) else b""
    if body.strip():
        root = s3xml.parse(body)
        if s3xml.local(root.tag) != "CreateBucketConfiguration":
            raise S3Error("MalformedXML")
        loc = (s3xml.find_text(root, "LocationConstraint") or "").strip()
        if loc not in ALIASES and loc not in HINTS:
            raise S3Error("InvalidLocationConstraint", LocationConstraint=loc)
    region = ex.upstream.signer.region
    if region in ("us-east-1", ""):
        ex.body = None
    else:
        ex.body = s3xml.document("CreateBucketConfiguration", [s3xml.element("LocationConstraint", region)])
    ex.upstream_headers.pop("content-md5", None)
    ex.upstream_headers.pop("content-type", None)
    return await proceed(ex)


async def get_location(ex, proceed):
    status, _ = await ex.head(ex.bucket)
    if status == 404:
        raise S3Error("NoSuchBucket", BucketName=ex.bucket)
    if status >= 300:
        raise S3Error("AccessDenied" if status == 403 else "InternalError")
    return Response(body=s3xml.document("LocationConstraint", ["auto"]), headers={"Content-Type": "application/xml", "x-amz-request-id": ex.request_id})


def register(ext) -> None:
    ext.register(create_bucket, "CreateBucket")
    ext.register(get_location, "GetBucketLocation")
