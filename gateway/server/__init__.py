"""The client-facing HTTP/1.1 server: requests off the socket (``protocol``), as ``Request`` objects
(``request``), answered with ``Response``/``StreamResponse`` (``response``).

Why not aiohttp's server: every request is S3 and takes the same path, so the gateway needs none
of its router, middleware chain, per-request task or request object; this server parses with
httptools (llhttp, the parser of Node.js) and writes answers straight to the transport. It costs
~10 µs a request against ~31 µs for aiohttp's low-level server (measured side by side: a fixed
1 KiB answer at c=16, tests/bench). Bodies still stream through aiohttp's ``StreamReader`` (flow
control, ``readany``/``readline``), which aiohttp's multipart reader builds on.
"""
from .protocol import Server
from .request import Request
from .response import Response, StreamResponse, json_response

__all__ = ["Request", "Response", "Server", "StreamResponse", "json_response"]
