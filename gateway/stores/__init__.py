"""The stores behind the gateway: one upstream client per configured store (``upstream`` is named
``default``, ``upstreams`` by their names) and which one holds a bucket (the ``buckets`` rules,
gateway/routing.py).

The modules of this package use them: :mod:`.copy` (store-to-store streaming copy, shared with the
bulk ``migrate``), :mod:`.on_read` (migration on read: R2's Sippy on any store), :mod:`.cross_copy`
(CopyObject and UploadPartCopy between stores), :mod:`.buckets` (ListBuckets over every store) and
:mod:`.merged_list` (``list: merged``).
"""
from __future__ import annotations

import asyncio
from typing import Iterator

from ..config import Settings
from ..routing import DEFAULT, DEFAULT_ROUTE, Route, Routes
from ..upstream.client import Upstream


class Stores:
    """Every store's client, by name; ``locate(bucket)`` is the route and the client of a bucket."""

    def __init__(self, settings: Settings, embedded_endpoint: str | None = None) -> None:
        self.routes = Routes(settings.buckets)
        self._routed = bool(self.routes)
        clients: dict[str, Upstream] = {}
        for name in (DEFAULT, *settings.upstreams):
            up = settings.store(name)
            if up.endpoint is None:   # only the default store may be the embedded one
                clients[name] = Upstream.from_settings(up, embedded_endpoint, "embedded", "embedded", name=name)
            else:
                clients[name] = Upstream.from_settings(up, name=name)
        self._clients = clients
        self.default = clients[DEFAULT]
        #: the gateway's own hidden buckets (one per store): never addressable by clients
        self.internal_buckets = frozenset(c.internal_bucket for c in clients.values())

    def __iter__(self) -> Iterator[Upstream]:
        return iter(self._clients.values())

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, name: str) -> Upstream:
        return self._clients[name]

    def locate(self, bucket: str | None) -> tuple[Route, Upstream]:
        """The route of ``bucket`` (None: the service level) and the client of the store holding it."""
        if not self._routed or bucket is None:
            return DEFAULT_ROUTE, self.default
        route = self.routes.for_bucket(bucket)
        return route, self._clients[route.store]

    def for_bucket(self, bucket: str) -> Upstream:
        return self.locate(bucket)[1]

    def source_of(self, route: Route) -> Upstream | None:
        """The store a migrating bucket's objects come from (None: the bucket does not migrate)."""
        return self._clients[route.source_store] if route.source_store is not None else None

    async def start(self) -> None:
        started: list[Upstream] = []
        try:
            for client in self._clients.values():
                await client.start()
                started.append(client)
        except BaseException:
            for client in started:
                await client.close()
            raise

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients.values()), return_exceptions=True)
