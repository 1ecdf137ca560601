"""What to do with one key, from what the source and the destination hold, and which shard a key is in.

The rules, in order (``src``/``dst``: the key's object on each side, or absent):

- only in the destination: deleted with ``--delete-extra``, else left alone;
- only in the source: copied (``If-None-Match: *``);
- equal content (same size and ETag; see :mod:`.verify` for when ETags can tell): skipped;
- same size, ETags that cannot tell (a multipart ETag on either side), and a destination copy no
  older than the source's: skipped as equal — a copy made by this tool is always newer than its
  source, so a finished copy is never made again;
- different content, destination copy no older than the source's: skipped (``destination newer``) —
  a write to the destination after the source's version (the application's, or migration on read's)
  is never replaced by older data;
- different content, destination copy older: copied over it (``If-Match`` on the copy it replaces).

Times are compared to the second (HEAD answers carry no more).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .stores import ObjectInfo
from .verify import same_content

COPY, SKIP, DELETE, NONE = "copy", "skip", "delete", "none"


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    reason: str
    replace_etag: str | None = None      # COPY over this destination ETag (None: the key is absent)


def decide(src: ObjectInfo | None, dst: ObjectInfo | None, delete_extra: bool) -> Decision:
    if src is None:
        if dst is None:
            return Decision(NONE, "in neither store")
        return Decision(DELETE, "not in the source") if delete_extra else Decision(NONE, "not in the source")
    if dst is None:
        return Decision(COPY, "missing")
    same = same_content(src.size, src.etag, dst.size, dst.etag)
    not_older = int(dst.last_modified) >= int(src.last_modified)
    if same is True:
        return Decision(SKIP, "equal")
    if same is None and not_older:
        return Decision(SKIP, "equal")
    if not_older:
        return Decision(SKIP, "destination newer")
    return Decision(COPY, "different" if same is False else "source newer", dst.etag)


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``I/N`` with 0 <= I < N."""
        i, sep, n = text.partition("/")
        if not sep or not i.strip().isdigit() or not n.strip().isdigit():
            raise ValueError(f"--shard takes I/N (e.g. 0/4), got {text!r}")
        shard = cls(int(i), int(n))
        if shard.count < 1 or not 0 <= shard.index < shard.count:
            raise ValueError(f"--shard {text}: I must be in 0..N-1 and N >= 1")
        return shard

    def __contains__(self, key: str) -> bool:
        if self.count == 1:
            return True
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
