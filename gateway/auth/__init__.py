"""Client authentication: SigV4 header and presigned-URL verification, aws-chunked body decoding.

All of it is sans-IO (no sockets, no aiohttp): the server layer passes method, raw path, raw query and
lowercase headers to :func:`authenticate`, then streams an aws-chunked body through a :class:`ChunkedDecoder`; a signed 64-hex payload hash is
checked by ``gateway.payload.BodyVerifier`` in the same pass as Content-MD5 and checksums.
"""
from gateway.auth.sigv4 import (  # noqa: F401
    STREAMING_MODES, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD, AuthResult, authenticate, canonical_query, canonical_uri_candidates,
    signing_key, uri_encode)
from gateway.auth.presign import strip_presign_params  # noqa: F401
from gateway.auth.chunked import ChunkedDecoder  # noqa: F401

__all__ = [
    "AuthResult", "ChunkedDecoder", "authenticate", "canonical_query",
    "canonical_uri_candidates", "signing_key", "strip_presign_params", "uri_encode",
    "STREAMING_MODES", "STREAMING_SIGNED", "STREAMING_SIGNED_TRAILER", "STREAMING_UNSIGNED_TRAILER",
    "UNSIGNED_PAYLOAD",
]
