"""CopyObject and UploadPartCopy from a bucket on another store (gateway/stores/cross_copy.py): the
gateway streams the copy itself. Last in the chain: the conditions, MERGE directive, storage class
and metadata encoding the other stages prepare are what it writes."""
from __future__ import annotations

from ..stores.cross_copy import cross_store


def register(ext) -> None:
    ext.register(cross_store, "CopyObject", "UploadPartCopy")
