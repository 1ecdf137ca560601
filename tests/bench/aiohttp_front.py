"""The gateway behind aiohttp's low-level server (``aiohttp.web.Server``) instead of its own
(gateway/server/), for the A/B of the two client-facing servers (``tests/bench/server_ab.py``).

    PYTHONPATH=. .venv/bin/python -m tests.bench.aiohttp_front     # the environment of `python -m gateway serve`

The same ``Gateway``, the same handler (``entry``, taken from ``build_server``), the same uvloop
and ``gc.freeze()`` as ``python -m gateway serve``; only the HTTP server differs. Nothing in
gateway/ is changed: before the pipeline's modules are imported, this process rebinds
``gateway.server.Response`` / ``StreamResponse`` / ``json_response`` to the thin subclasses of
aiohttp's classes below, so every answer the pipeline builds is aiohttp's. It refuses to start
unless aiohttp's C parser is the one in use (and ``AIOHTTP_NO_EXTENSIONS`` is unset).

What the adapter supplies that aiohttp's low-level server does not (what a switch to it needs):

* ``AioRequest``: the attributes the pipeline reads from ``gateway.server.Request``. ``method``,
  ``raw_path``, ``version``, ``headers``, ``content``, ``content_length``, ``keep_alive``,
  ``transport``, ``scheme`` are aiohttp's own; ``header_dict`` (lowercase names, repeated headers
  joined by ``,``) is built per request from ``headers``; ``complete`` is ``content.is_eof()``.
* ``Expect: 100-continue``: aiohttp answers it only in ``web.Application``'s router; the handler
  here writes ``100 Continue`` itself (HTTP/1.1, body not yet arrived), as the own server does.
* Responses: ``finished`` (aiohttp: ``_eof_sent``); ``prepare`` unwraps ``AioRequest``;
  ``content_type=`` with a ``Content-Type`` header is merged (aiohttp refuses both).
  ``send_head`` (the kernel splice relay of big GETs) is not supported: run with
  ``R2GW_SPLICE=false`` (the A/B does, for both servers; a 1 KiB GET never splices anyway).
* Not reproduced: aiohttp adds ``Server: Python/… aiohttp/…`` and a default
  ``Content-Type: application/octet-stream`` to streamed bodies; a request it cannot parse (or
  with a header over ``max_field_size``) gets aiohttp's plain-text 400, not S3 XML (that needs a
  ``RequestHandler.handle_error`` override); no head timeout (slow-loris) exists in aiohttp's
  server; drain is ``web.Server.shutdown`` instead of ``Server.begin_shutdown``.
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys

import aiohttp
import aiohttp.http_parser as _hp
from aiohttp import web
from multidict import CIMultiDict

import gateway.server as _gs
import gateway.server.response as _gsr

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def c_parser_in_use() -> bool:
    return (not os.environ.get("AIOHTTP_NO_EXTENSIONS")
            and getattr(_hp, "HttpRequestParserC", None) is not None
            and _hp.HttpRequestParser is _hp.HttpRequestParserC)


class AioRequest:
    """An aiohttp ``BaseRequest`` with the attributes the pipeline reads from ``gateway.server.Request``."""

    __slots__ = ("aio", "method", "raw_path", "version", "headers", "header_dict", "content",
                 "content_length", "keep_alive", "transport", "scheme")

    def __init__(self, r: web.BaseRequest) -> None:
        self.aio = r
        self.method = r.method
        self.raw_path = r.raw_path
        self.version = r.version
        self.headers = h = r.headers
        d: dict[str, str] = {}
        for k, v in h.items():
            k = k.lower()
            d[k] = f"{d[k]},{v}" if k in d else v
        self.header_dict = d
        self.content = r.content
        self.content_length = r.content_length
        self.keep_alive = r.keep_alive
        self.transport = r.transport
        self.scheme = r.scheme

    @property
    def complete(self) -> bool:
        """The whole message (body included) has been received."""
        return self.content.is_eof()

    @property
    def raw_headers(self) -> list[tuple[str, str]]:
        return list(self.headers.items())


class _Mixin:
    @property
    def finished(self) -> bool:
        return self._eof_sent   # type: ignore[attr-defined]

    async def prepare(self, request):
        return await super().prepare(request.aio if isinstance(request, AioRequest) else request)  # type: ignore[misc]

    async def send_head(self) -> None:
        raise RuntimeError("the kernel splice relay needs the gateway's own server (run with R2GW_SPLICE=false)")


class AioStreamResponse(_Mixin, web.StreamResponse):
    pass


class AioResponse(_Mixin, web.Response):
    def __init__(self, *, status: int = 200, reason: str | None = None, headers=None,
                 body: bytes | None = None, content_type: str | None = None) -> None:
        if content_type is not None:
            headers = CIMultiDict(headers or ())
            headers["Content-Type"] = content_type
        super().__init__(status=status, reason=reason, headers=headers, body=body)


def _json_response(data, *, status: int = 200) -> AioResponse:
    import orjson
    return AioResponse(status=status, body=orjson.dumps(data), content_type="application/json")


def _patch() -> None:
    """Every module of the pipeline imported after this builds aiohttp's answers."""
    for mod in (_gs, _gsr):
        mod.Response, mod.StreamResponse, mod.json_response = AioResponse, AioStreamResponse, _json_response
    loaded = [m for m in sys.modules if m.startswith("gateway.") and not m.startswith("gateway.server")
              and getattr(sys.modules[m], "StreamResponse", None) is not None]
    if loaded:
        raise RuntimeError(f"imported before the patch: {loaded}")


def _check_patched() -> None:
    wrong = [name for name, m in list(sys.modules.items()) if name.startswith("gateway.")
             and not name.startswith("gateway.server")
             for attr, want in (("Response", AioResponse), ("StreamResponse", AioStreamResponse),
                                ("json_response", _json_response))
             if getattr(m, attr, want) is not want]
    if wrong:
        raise RuntimeError(f"modules still holding the own server's classes: {sorted(set(wrong))}")


async def serve(settings) -> int:
    from gateway.app import Gateway, build_server

    _check_patched()
    gw = Gateway(settings)
    await gw.start()
    handler = getattr(build_server(gw), "handler", None)   # the own server's handler: entry(gw, request)
    if handler is None:
        try:
            from gateway.proxy import entry
        except ImportError:
            from gateway.app import entry   # type: ignore[no-redef]

        async def handler(request):
            return await entry(gw, request)
    limits = gw.settings.limits

    async def aio_handler(r: web.BaseRequest):
        req = AioRequest(r)
        if req.version == aiohttp.HttpVersion11 and not req.complete and \
                req.header_dict.get("expect", "").lower() == "100-continue":
            await r.writer.write(_CONTINUE)
        return await handler(req)

    server = web.Server(aio_handler, access_log=None, keepalive_timeout=limits.keepalive_timeout,
                        max_line_size=limits.max_header_bytes, max_field_size=limits.max_header_bytes,
                        lingering_time=10.0)
    gc.freeze()
    loop = asyncio.get_running_loop()
    host, _, port = settings.listen.rpartition(":")
    listener = await loop.create_server(server, host.strip("[]") or "0.0.0.0", int(port), backlog=1024)
    print(f"aiohttp_front: aiohttp {aiohttp.__version__}, C parser in use: {c_parser_in_use()}, "
          f"loop {type(loop).__module__}.{type(loop).__name__}, listening on {settings.listen}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    gw.draining = True
    listener.close()
    await server.shutdown(settings.drain_timeout)
    await gw.stop()
    return 0


def main() -> int:
    if not c_parser_in_use():
        print("aiohttp_front: aiohttp's C parser is not in use (AIOHTTP_NO_EXTENSIONS set, or no "
              "compiled extension): refusing to measure", file=sys.stderr)
        return 2
    _patch()
    from gateway import config
    from gateway.observability import configure_logging

    settings = config.load(None)
    if settings.splice:
        print("aiohttp_front: refusing R2GW_SPLICE=true (send_head is not adapted)", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, access_flush_seconds=settings.access_log_flush_seconds)
    import uvloop
    return uvloop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
