"""The client-facing HTTP/1.1 server: requests off the socket (``protocol``), as ``Request`` objects
(``request``), answered with ``Response``/``StreamResponse`` (``response``).

Why not aiohttp's server: every request is S3 and takes the same path, so the gateway needs none
of its router, middleware chain, per-request task or request object; this server parses with
httptools (llhttp, the parser of Node.js) and writes answers straight to the transport. Measured
side by side on the whole pipeline (tests/bench/server_ab.py, 1 KiB objects, c=16), it takes about
18 % less gateway CPU per GET than aiohttp's ``web.Server`` (docs/architecture.md). Bodies stream
through ``BodyStream`` (``body``), which aiohttp's multipart reader reads as it reads its own.
"""
from .server import Server
from .request import Request
from .response import Response, StreamResponse, json_response

__all__ = ["Request", "Response", "Server", "StreamResponse", "json_response"]
