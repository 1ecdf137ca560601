"""Client authentication: SigV4 header and presigned-URL verification, aws-chunked body decoding.

All of it is sans-IO (no sockets, no aiohttp): the server layer passes method, raw path, raw query and
lowercase headers to :func:`authenticate`, then streams the body through a :class:`ChunkedDecoder` (for
``STREAMING-*`` payloads) or a :class:`PayloadHasher` (for a signed 64-hex payload hash).
"""
from gateway.auth.sigv4 import (  # noqa: F401
    STREAMING_MODES, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD, AuthResult, PayloadHasher, authenticate, canonical_query, canonical_uri_candidates,
    signing_key, uri_encode)
from gateway.auth.presign import strip_presign_params  # noqa: F401
from gateway.auth.chunked import ChunkedDecoder  # noqa: F401

__all__ = [
    "AuthResult", "ChunkedDecoder", "PayloadHasher", "authenticate", "canonical_query",
    "canonical_uri_candidates", "signing_key", "strip_presign_params", "uri_encode",
    "STREAMING_MODES", "STREAMING_SIGNED", "STREAMING_SIGNED_TRAILER", "STREAMING_UNSIGNED_TRAILER",
    "UNSIGNED_PAYLOAD",
]
