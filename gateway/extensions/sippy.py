"""R2's Sippy (migration on read) on any store, for buckets whose rule has ``migrate_from``:
GetObject and HeadObject fall through to the source (gateway/stores/on_read.py), ListObjects shows
the source's objects too with ``list: merged`` (gateway/stores/merged_list.py). First in the chain:
the destination's own answer (with every other extension) is what these stages fall back from."""
from __future__ import annotations

from ..stores import merged_list, on_read


def register(ext) -> None:
    ext.register(on_read.get_object, "GetObject")
    ext.register(on_read.head_object, "HeadObject")
    ext.register(merged_list.listing, "ListObjects", "ListObjectsV2")
