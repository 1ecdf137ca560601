"""The request body as the upstream receives it: aws-chunked framing removed, the signed payload
hash, ``Content-MD5`` and ``x-amz-checksum-*`` verified in one pass, and the last bytes held back
until every check has passed — so a body that fails a check is never committed upstream.

Sans-IO at its core (``BodyVerifier`` sees bytes, not sockets); ``Ingest`` adapts an aiohttp
request stream to it with backpressure (one piece in flight).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from typing import AsyncIterator, Mapping

from .auth.chunked import ChunkedDecoder
from .auth.canonical import STREAMING_MODES, UNSIGNED_PAYLOAD as UNSIGNED, AuthResult
from .checksums import ALGORITHMS, new_checksum
from .errors import S3Error



def _b64digest(value: str, size: int, code: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise S3Error(code)
    return raw


class BodyVerifier:
    """Checks one body as its decoded bytes pass by; ``finish()`` raises if anything failed."""

    __slots__ = ("_sha256", "_expected_sha256", "_md5", "_expected_md5", "_checksum",
                 "_expected_checksum", "received")

    def __init__(self, payload_hash: str, headers: Mapping[str, str]) -> None:
        self.received = 0
        self._sha256 = self._md5 = self._checksum = None
        self._expected_sha256 = self._expected_md5 = self._expected_checksum = None
        if len(payload_hash) == 64:
            try:
                self._expected_sha256 = bytes.fromhex(payload_hash)
            except ValueError:
                raise S3Error("XAmzContentSHA256Mismatch") from None
            self._sha256 = hashlib.sha256()
        md5 = headers.get("content-md5")
        if md5 is not None:
            self._expected_md5 = _b64digest(md5, 16, "InvalidDigest")
            self._md5 = hashlib.md5()
        for alg in ALGORITHMS:
            value = headers.get("x-amz-checksum-" + alg)
            if value is not None:
                self._checksum = new_checksum(alg)
                self._expected_checksum = value
                break

    @property
    def active(self) -> bool:
        return bool(self._sha256 or self._md5 or self._checksum)

    def update(self, data: bytes | memoryview) -> None:
        self.received += len(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._checksum is not None:
            self._checksum.update(data)

    def finish(self) -> None:
        if self._sha256 is not None and not hmac.compare_digest(self._sha256.digest(), self._expected_sha256):
            raise S3Error("XAmzContentSHA256Mismatch", ClientComputedContentSHA256=self._expected_sha256.hex(),
                          S3ComputedContentSHA256=self._sha256.hexdigest())
        if self._md5 is not None and self._md5.digest() != self._expected_md5:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what was received.")
        if self._checksum is not None and self._checksum.digest_b64() != self._expected_checksum:
            raise S3Error("BadDigest", "The checksum you specified did not match what was received.")


class Ingest:
    """Async iterator over the verified, decoded body of one request.

    ``length`` is the decoded length (what the upstream gets as Content-Length). ``error`` holds
    the S3Error that stopped the stream, if any, so the caller can answer with it after the
    upstream request was aborted.
    """

    def __init__(self, stream, auth: AuthResult | None, headers: Mapping[str, str],
                 content_length: int | None, read_timeout: float = 60.0) -> None:
        self._stream = stream
        self._read_timeout = read_timeout
        self.error: S3Error | None = None
        payload_hash = auth.payload_hash if auth else UNSIGNED
        self._decoder: ChunkedDecoder | None = None
        if payload_hash in STREAMING_MODES:
            decoded = headers.get("x-amz-decoded-content-length")
            if decoded is None or not decoded.isdigit():
                raise S3Error("MissingContentLength")
            trailer = headers.get("x-amz-trailer", "")
            names = [t.strip().lower() for t in trailer.split(",") if t.strip()]
            self._decoder = ChunkedDecoder(auth, payload_hash, names, int(decoded))
            self.length: int | None = int(decoded)
            self._verifier = BodyVerifier(UNSIGNED, headers)
        else:
            if content_length is None:
                raise S3Error("MissingContentLength")
            self.length = content_length
            self._verifier = BodyVerifier(payload_hash, headers)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    @property
    def trailers(self) -> dict[str, str]:
        """The aws-chunked trailers (lowercase names), verified once the body has been read."""
        return self._decoder.trailers if self._decoder is not None else {}

    async def _iterate(self) -> AsyncIterator[bytes]:
        held: bytes | memoryview | None = None
        decoder, verifier = self._decoder, self._verifier
        stream, timeout = self._stream, self._read_timeout
        try:
            while True:
                # what has arrived already is taken without arming a timer; a client that stops
                # sending mid-body (slow-loris) is cut off after read_timeout
                data = stream.read_nowait()
                if not data and not stream.at_eof():
                    async with asyncio.timeout(timeout):
                        data = await stream.readany()
                if not data:
                    break
                pieces = decoder.feed(data) if decoder is not None else (data,)
                for piece in pieces:
                    if not piece:
                        continue
                    verifier.update(piece)
                    if held is not None:
                        yield held
                    held = piece
            if decoder is not None:
                decoder.finish()
            if self.length is not None and verifier.received != self.length:
                raise S3Error("IncompleteBody")
            verifier.finish()
        except S3Error as e:
            self.error = e
            raise
        except TimeoutError as e:
            self.error = S3Error("RequestTimeout")
            raise self.error from e
        except Exception as e:  # client went away mid-body
            self.error = S3Error("IncompleteBody")
            raise self.error from e
        if held is not None:
            yield held

    async def read_all(self, limit: int) -> bytes:
        """A small body (an XML document) read whole, verified, capped at ``limit`` bytes."""
        if self.length is not None and self.length > limit:
            raise S3Error("MaxMessageLengthExceeded")
        parts: list[bytes] = []
        size = 0
        async for piece in self:
            size += len(piece)
            if size > limit:
                raise S3Error("MaxMessageLengthExceeded")
            parts.append(bytes(piece))
        return b"".join(parts)
