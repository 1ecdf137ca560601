"""The buckets of every store as one list: each store is asked (at once), and a bucket is kept only
from the store its routing rule sends it to — a bucket of the same name on another store (a
migration source, a leftover) is not the client's. The stores' internal buckets are never shown.
A store that cannot answer fails the listing (a partial list would pass for a complete one)."""
from __future__ import annotations

import asyncio
from typing import NamedTuple

from .. import s3xml
from ..s3xml import element
from ..upstream.responses import read_capped, upstream_error

_MAX_LISTING = 64 * 1024 * 1024


class Bucket(NamedTuple):
    name: str
    created: str


class AllBuckets(NamedTuple):
    owner_xml: str          # the default store's <Owner>, as XML
    buckets: list[Bucket]   # sorted by name


async def list_all(ex) -> AllBuckets:
    stores = list(ex.gw.stores)
    answers = await asyncio.gather(*(_list_one(ex, store) for store in stores))
    owner_xml = answers[0][0]
    locate = ex.gw.stores.locate
    buckets = [b for store, (_, listed) in zip(stores, answers) for b in listed
               if b.name != store.internal_bucket and locate(b.name)[1] is store]
    buckets.sort()
    return AllBuckets(owner_xml, buckets)


async def _list_one(ex, store) -> tuple[str, list[Bucket]]:
    resp = await ex.call_upstream("GET", "/", "", {}, None, upstream=store)
    ex.upstream_status = resp.status
    try:
        if resp.status >= 400:
            raise await upstream_error(ex, resp)
        root = s3xml.parse(await read_capped(resp, _MAX_LISTING), limit=_MAX_LISTING)
    finally:
        resp.release()
    owner_xml = ""
    buckets: list[Bucket] = []
    for child in root:
        name = s3xml.local(child.tag) if isinstance(child.tag, str) else ""
        if name == "Owner":
            owner_xml = "<Owner>" + element("ID", s3xml.find_text(child, "ID") or "") + \
                element("DisplayName", s3xml.find_text(child, "DisplayName") or "") + "</Owner>"
        elif name == "Buckets":
            for b in child:
                buckets.append(Bucket(s3xml.find_text(b, "Name") or "", s3xml.find_text(b, "CreationDate") or ""))
    return owner_xml, buckets
