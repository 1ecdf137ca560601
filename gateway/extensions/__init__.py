"""R2's extensions to S3, one module each. Every extension is a stage ``async (ex, proceed)`` that
may change the request, answer it itself, or call ``proceed(ex)`` (the upstream) and adjust the
answer. ``Extensions.run`` chains the ones registered for the request's operation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

if TYPE_CHECKING:
    from ..server import StreamResponse
    from ..proxy import Exchange

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


def default_extensions() -> Extensions:
    """Every R2 extension the gateway implements, registered on the operations it changes."""
    ext = Extensions()
    for module in _modules():
        module.register(ext)
    return ext


def _modules():
    import importlib
    import pkgutil
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            yield module
