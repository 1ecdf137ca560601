"""``/report`` and ``/report.json``, served where ``/metrics`` is: on the main listener (an unsigned
GET/HEAD with no query, like the other internal endpoints) unless metrics have a listener of their
own, then there. Not served when metrics are disabled or the report is off (rules off included)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from ..server import Response
from .render import html

if TYPE_CHECKING:
    from ..app import Gateway

PATHS = ("/report", "/report.json")
_HTML = "text/html; charset=utf-8"


def _bodies(gw: "Gateway", path: str) -> tuple[bytes, str]:
    doc = gw.readiness.document()
    if path.endswith(".json"):
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2), "application/json"
    return html(doc), _HTML


def _served(gw: "Gateway") -> bool:
    return gw.readiness.enabled and gw.settings.metrics.enabled


def install(gw: "Gateway") -> None:
    """On the main listener (when /metrics is served there)."""
    if not _served(gw) or gw.settings.metrics.listen:
        return
    for path in PATHS:
        async def handler(request, path=path) -> Response:
            body, ctype = _bodies(gw, path)
            return Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-store"})
        gw.internal.add(path, handler)


def install_aiohttp(gw: "Gateway", app: web.Application) -> None:
    """On the metrics listener (an aiohttp application)."""
    if not _served(gw):
        return
    for path in PATHS:
        async def handler(request, path=path) -> web.Response:
            body, ctype = _bodies(gw, path)
            return web.Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-store"})
        app.router.add_get(path, handler)
