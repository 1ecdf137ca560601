"""Both sides' keys, side by side: the source's and the destination's ListObjectsV2 listings (each
page fetched while the previous one is used) merged in key order, so a bucket of any size is compared
in constant memory. S3 lists keys in UTF-8 byte order, which is Python's ``str`` order; a listing
that goes backwards is an error rather than a wrong comparison.

With ``--keys-from`` there is no listing: each key of the file is looked up (HEAD) on both sides.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator

from .stores import ObjectInfo


class ListingError(Exception):
    pass


Page = Callable[[str | None], Awaitable[tuple[list[ObjectInfo], str | None]]]


async def prefetched(page: Page, where: str) -> AsyncIterator[ObjectInfo]:
    """The objects ``page(token)`` lists, in key order, the next page always on its way."""
    pending = asyncio.ensure_future(page(None))
    last = None
    try:
        while True:
            items, token = await pending
            pending = asyncio.ensure_future(page(token)) if token else None
            for item in items:
                if last is not None and item.key <= last:
                    raise ListingError(f"{where}: listing out of order at {item.key!r}")
                last = item.key
                yield item
            if pending is None:
                return
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


async def merged(src: AsyncIterator[ObjectInfo], dst: AsyncIterator[ObjectInfo]
                 ) -> AsyncIterator[tuple[str, ObjectInfo | None, ObjectInfo | None]]:
    """(key, source object or None, destination object or None), in key order."""
    s = await anext(src, None)
    d = await anext(dst, None)
    while s is not None or d is not None:
        if d is None or (s is not None and s.key < d.key):
            yield s.key, s, None
            s = await anext(src, None)
        elif s is None or d.key < s.key:
            yield d.key, None, d
            d = await anext(dst, None)
        else:
            yield s.key, s, d
            s, d = await anext(src, None), await anext(dst, None)


def keys_file(path: str | Path) -> Iterator[str]:
    """One key per line (the line's end removed, nothing else: keys may hold spaces); blank lines
    are skipped; each key once."""
    seen: set[str] = set()
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            key = line[:-1] if line.endswith("\n") else line
            if key.endswith("\r"):
                key = key[:-1]
            if key and key not in seen:
                seen.add(key)
                yield key
