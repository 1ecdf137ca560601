"""The gateway's own endpoints on the S3 listener: ``/healthz`` (the process is up), ``/readyz``
(ready for traffic: not draining, every store answers) and ``/metrics`` (Prometheus text, unless
metrics have a listener of their own); other modules add theirs (``add``, ``add_matcher``).

These paths answer only *unsigned* GET/HEAD requests with no query. Every S3 request is signed
(the gateway allows no anonymous access), so a bucket named ``healthz`` stays reachable: ``GET
/healthz`` signed is ListObjects on it. An added matcher never claims a SigV4-signed request either.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import web

from .server import Request, Response, json_response
from .upstream.client import UpstreamRequest

if TYPE_CHECKING:
    from .app import Gateway

Handler = Callable[[Request], Awaitable[Response]]
PATHS = ("/healthz", "/readyz", "/metrics")
_READY_CACHE_SECONDS = 2.0
# any answer below 500 proves the upstream is up; a HEAD of a bucket that is not there is cheap
# everywhere (RGW mis-answers HEAD /, and GET / lists every bucket)
_PROBE_PATH = "/r2gw-readiness-probe"


class InternalEndpoints:
    def __init__(self, gateway: "Gateway") -> None:
        self.gw = gateway
        self._ready_at = 0.0
        self._down: list[str] | None = None   # the stores that did not answer the last probe
        self._routes: dict[str, Handler] = {"/healthz": self.healthz, "/readyz": self.readyz}
        if gateway.settings.metrics.enabled and not gateway.settings.metrics.listen:
            self._routes["/metrics"] = self.metrics
        self._matchers: list[Callable[[Request], Handler | None]] = []

    def route(self, request: Request) -> Handler | None:
        """The handler for an unsigned GET/HEAD of an internal path, or for a request an added
        matcher claims; else None (S3 takes it)."""
        if request.method in ("GET", "HEAD") and "authorization" not in request.header_dict:
            return self._routes.get(request.raw_path)
        for match in self._matchers:
            handler = match(request)
            if handler is not None:
                return handler
        return None

    def add(self, path: str, handler: Handler) -> None:
        """Serve one more internal path (an unsigned GET/HEAD with no query)."""
        self._routes[path] = handler

    def add_matcher(self, match: Callable[[Request], Handler | None]) -> None:
        """Serve the requests ``match`` claims (it returns their handler, else None): endpoints of
        another method or a path pattern. Asked about every request that is not an unsigned
        GET/HEAD, so it must be quick to say no, and never claim a SigV4-signed request."""
        self._matchers.append(match)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        gw = self.gw
        if gw.draining:
            return json_response({"status": "draining"}, status=503)
        now = time.monotonic()
        if self._down is None or now - self._ready_at > _READY_CACHE_SECONDS:
            stores = list(gw.stores or ())
            answers = await asyncio.gather(*(self._probe(s) for s in stores))
            self._down = [s.name for s, up in zip(stores, answers) if not up]
            self._ready_at = now
        if not self._down:
            return json_response({"status": "ready", "profile": gw.profile.name})
        return json_response({"status": "upstream unreachable", "stores": self._down}, status=503)

    async def _probe(self, store) -> bool:
        try:
            resp = await asyncio.wait_for(store.send(UpstreamRequest("HEAD", _PROBE_PATH)), 5)
            resp.release()
            ok = resp.status < 500
        except Exception:
            ok = False
        if not ok or store.name == "default":
            self.gw.metrics.upstream_ok = ok
        return ok

    async def metrics(self, request: Request) -> Response:
        body, ctype = self.gw.metrics_body()
        return Response(body=body, headers={"Content-Type": ctype})

    async def metrics_aiohttp(self, request: web.BaseRequest) -> web.Response:
        """/metrics on a listener of its own (an aiohttp app: not on the request path)."""
        body, ctype = self.gw.metrics_body()
        return web.Response(body=body, headers={"Content-Type": ctype})
