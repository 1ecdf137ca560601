"""ListBuckets over every store (gateway/stores/buckets.py: the stores' lists merged, their internal
buckets left out), less what the client may not see (buckets outside a bucket-scoped key), paged
by :mod:`.bucket_pages` in R2's form and in AWS's 2024 form (pure functions over the sorted
``(name, creation date)`` list). Tokens are stateless, so any replica can continue a listing (of
the same merged list).
"""
from __future__ import annotations

from ..server import Response

from .. import s3xml
from ..stores.buckets import list_all
from . import bucket_pages


async def list_buckets(ex, proceed):
    req = bucket_pages.parse(ex.query, ex.headers)
    everything = await list_all(ex)
    key = ex.client_key
    visible = [b for b in everything.buckets if key.sees_bucket(b.name)]
    region = ex.gw.profile.spec.region
    name = region.name if region else None
    page = bucket_pages.paginate(visible, req, name, region.aliases if region else ())
    body, headers = bucket_pages.render(page, req, everything.owner_xml, name)
    return Response(body=s3xml.document("ListAllMyBucketsResult", body),
                    headers={"Content-Type": "application/xml", "x-amz-request-id": ex.request_id, **headers})


def register(ext) -> None:
    ext.register(list_buckets, "ListBuckets")
