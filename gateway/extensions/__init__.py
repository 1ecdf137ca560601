"""R2's extensions to S3, one module each. Every extension is a stage ``async (ex, proceed)`` that
may change the request, answer it itself, or call ``proceed(ex)`` (the upstream) and adjust the
answer. ``Extensions.run`` chains the ones registered for the request's operation, in the order of
``CHAIN`` below (a new extension is a module here with a ``register(ext)`` and a line in ``CHAIN``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from . import (checksums_kept, conditional, copy_conditions, create_bucket, cross_store, list_buckets, location,
               merge, multipart, multipart_checksums, restore, sippy, sse_c_copy, storage_class, unicode_metadata)

if TYPE_CHECKING:
    from ..exchange import Exchange
    from ..server import StreamResponse

Stage = Callable[["Exchange", Callable[["Exchange"], Awaitable["StreamResponse"]]],
                 Awaitable["StreamResponse"]]


class Extensions:
    def __init__(self) -> None:
        self._by_op: dict[str, list[Stage]] = {}

    def register(self, stage: Stage, *operations: str) -> None:
        for op in operations:
            self._by_op.setdefault(op, []).append(stage)

    def for_operation(self, op: str) -> list[Stage]:
        return self._by_op.get(op, [])

    async def run(self, ex: "Exchange", last) -> "StreamResponse":
        stages = self._by_op.get(ex.op)
        if not stages:
            return await last(ex)
        return await _Proceed(stages, last, 0)(ex)


class _Proceed:
    """``proceed`` for stage ``i``: the next stage, or ``last`` after the final one. A small object
    rather than a recursive closure, which would be a reference cycle left to the collector on
    every request."""

    __slots__ = ("stages", "last", "i")

    def __init__(self, stages: list[Stage], last, i: int) -> None:
        self.stages, self.last, self.i = stages, last, i

    def __call__(self, ex: "Exchange") -> Awaitable["StreamResponse"]:
        i, stages = self.i, self.stages
        if i == len(stages):
            return self.last(ex)
        return stages[i](ex, _Proceed(stages, self.last, i + 1))


#: The chain, outermost first: for an operation several extensions change, the first listed sees the
#: request first and the answer last. Migration on read falls back from the destination's whole
#: answer; conditions are checked before a missing bucket is created and before the metadata and
#: storage class are rewritten for the upstream. The checksums' stages come after the metadata is
#: rewritten (their own metadata is not the client's, nor counted as such), and before
#: storage_class's listing, which answers ListParts itself; the gateway's SSE-C copy comes once the
#: request is as the upstream would have received it; a copy between stores writes what all of
#: them prepared.
CHAIN = (sippy, conditional, copy_conditions, create_bucket, list_buckets, location, merge, multipart, restore,
         unicode_metadata, checksums_kept, multipart_checksums, storage_class, sse_c_copy, cross_store)


def default_extensions() -> Extensions:
    """Every R2 extension the gateway implements, registered on the operations it changes."""
    ext = Extensions()
    for module in CHAIN:
        module.register(ext)
    return ext
