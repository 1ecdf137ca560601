"""The response side of a profile: what the gateway changes in the upstream's answer headers.

- Headers the provider does not send (``strip_response_headers``, per operation and common) are
  removed, in ``enforce`` mode only: ``audit`` and ``off`` relay the upstream's answer as it is.
- ``x-amz-storage-class`` is mapped back from the upstream's name to the client's (the profile's
  ``storage_class_map``, with the gateway config's overrides), in every mode: it is a translation,
  not a restriction. (Listing bodies are mapped by ``gateway.extensions.storage_class``.)

:func:`build` returns None when there is nothing to do for any operation, so the relay's hook
costs one attribute test per response for a profile such as ``r2``.
"""
from __future__ import annotations

from typing import MutableMapping

from .profile import Profile


def storage_class_maps(profile: Profile) -> tuple[dict[str, str], dict[str, str]] | None:
    """(client → upstream, upstream → client) for the classes whose names differ; None if none do."""
    forward = {c: u for c, u in profile.spec.storage_class_map.items() if c != u}
    if not forward:
        return None
    back: dict[str, str] = {}
    for client, upstream in profile.spec.storage_class_map.items():
        back.setdefault(upstream, client)  # first mapping wins, as Profile.client_storage_class
    back = {u: c for u, c in back.items() if u != c}
    return forward, back


class ResponseRules:
    __slots__ = ("_strip", "_back")

    def __init__(self, strip: dict[str, tuple[frozenset[str], tuple[str, ...]]],
                 back: dict[str, str] | None) -> None:
        self._strip = strip
        self._back = back

    def apply(self, op: str, headers: MutableMapping[str, str]) -> None:
        """Strip and map ``headers`` (a CIMultiDict of the response being built) in place."""
        rule = self._strip.get(op)
        if rule is not None:
            exact, prefixes = rule
            drop = [k for k in headers if k.lower() in exact or (prefixes and k.lower().startswith(prefixes))]
            for k in drop:
                headers.pop(k, None)
        if self._back is not None:
            value = headers.get("x-amz-storage-class")
            if value is not None and value in self._back:
                headers["x-amz-storage-class"] = self._back[value]


def build(profile: Profile, mode: str) -> ResponseRules | None:
    """The response rules of ``profile`` in ``mode``; None when they never change anything."""
    strip: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
    if mode == "enforce":
        for op in profile.op_rules:
            exact, prefixes = profile.response_headers_to_strip(op)
            if exact or prefixes:
                strip[op] = (frozenset(h.lower() for h in exact), tuple(p.lower() for p in prefixes))
    maps = storage_class_maps(profile)
    back = maps[1] if maps and maps[1] else None
    if not strip and back is None:
        return None
    return ResponseRules(strip, back)
