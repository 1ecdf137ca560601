"""Which store holds a bucket: the config's ``buckets`` rules (first match wins; a name or a glob),
no match → the ``default`` store (``upstream``). A rule with ``migrate_from`` also names where the
bucket's objects come from on first read (R2's Sippy) and in a bulk ``migrate``."""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Sequence

from .config import BucketRoute

DEFAULT = "default"
_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class Route:
    store: str                          # the store that holds the bucket
    source_store: str | None = None     # migration source, if any: store and bucket
    source_bucket: str | None = None
    list_merged: bool = False           # ListObjects shows the source's not-yet-copied objects too

    @property
    def migrates(self) -> bool:
        return self.source_store is not None


DEFAULT_ROUTE = Route(DEFAULT)


class Routes:
    def __init__(self, rules: Sequence[BucketRoute]) -> None:
        self._rules = tuple(rules)
        self._cache: dict[str, Route] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def for_bucket(self, bucket: str) -> Route:
        route = self._cache.get(bucket)
        if route is None:
            route = self._match(bucket)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[bucket] = route
        return route

    def _match(self, bucket: str) -> Route:
        for rule in self._rules:
            if rule.match == bucket or fnmatchcase(bucket, rule.match):
                src = rule.migrate_from
                if src is None:
                    return Route(rule.upstream)
                return Route(rule.upstream, src.upstream, src.bucket or bucket, src.list == "merged")
        return DEFAULT_ROUTE

    def stores(self) -> set[str]:
        """Every store a rule names (as destination or source)."""
        names = {DEFAULT}
        for rule in self._rules:
            names.add(rule.upstream)
            if rule.migrate_from is not None:
                names.add(rule.migrate_from.upstream)
        return names
