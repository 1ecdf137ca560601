"""Incremental, sans-IO decoder for ``Content-Encoding: aws-chunked`` request bodies.

Wire format (``x-amz-content-sha256`` says which variant)::

    <hex-size>[;chunk-signature=<64 hex>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<64 hex>]\\r\\n
    [<trailer-name>:<value>\\r\\n ...][x-amz-trailer-signature:<64 hex>\\r\\n]\\r\\n

* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: every chunk (the final empty one too) is signed, chained from the
  seed signature of the Authorization header; no trailers.
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: same, plus trailers signed by ``x-amz-trailer-signature``.
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: plain chunks (botocore's ``AwsChunkedWrapper``) plus trailers.

Payload bytes are returned as they arrive (memoryview slices of the input when a piece is not the whole
input): memory stays bounded by the size of what is fed plus one header line (<= 4 KiB). Consequently a
chunk whose signature turns out wrong has had its leading bytes returned by earlier ``feed`` calls: the
caller must treat any exception as "abort the upstream upload", never let it complete.

Error choices: bad chunk/trailer signature -> ``SignatureDoesNotMatch``; framing errors (bad size line,
missing CRLF, over-long line, data after the end), truncation and a decoded length different from
``x-amz-decoded-content-length`` -> ``IncompleteBody``; a trailer that is undeclared, malformed, duplicated
or missing, or a checksum value that is not valid base64 of the right size -> ``InvalidRequest``; a trailer
checksum that does not match the decoded payload -> ``BadDigest``.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Iterable

from gateway import checksums
from gateway.auth.canonical import (EMPTY_SHA256, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER,
                                STREAMING_UNSIGNED_TRAILER, AuthResult)
from gateway.errors import S3Error

MAX_LINE = 4096            # a chunk-size line or one trailer line, CRLF included
MAX_TRAILER_BYTES = 16384  # the whole trailer section
MAX_TRAILER_LINES = 32

TRAILER_SIGNATURE = "x-amz-trailer-signature"

_HEADER, _DATA, _DATA_CR, _DATA_LF, _TRAILER, _DONE = range(6)
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_CHUNK_SIG = re.compile(rb"chunk-signature=([0-9a-f]{64})")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _incomplete(detail: str) -> S3Error:
    return S3Error("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length "
                   "HTTP header (aws-chunked: " + detail + ").")


def _bad_trailer(detail: str) -> S3Error:
    return S3Error("InvalidRequest", detail)


class ChunkedDecoder:
    """Feed raw body bytes, get payload pieces back; call :meth:`finish` when the input ended.

    ``mode`` is the request's ``x-amz-content-sha256`` (must equal ``auth.payload_hash``),
    ``trailer_names`` the comma-split ``x-amz-trailer`` header, ``decoded_length`` the
    ``x-amz-decoded-content-length`` header when present.
    """

    __slots__ = ("_auth", "_signed", "_trailers_allowed", "_declared", "_decoded_length", "_state", "_line",
                 "_remaining", "_total", "_chunk_hash", "_chunk_sig", "_prev_sig", "_sts_prefix", "_key",
                 "_checksums", "_trailers", "_trailer_sig", "_trailer_bytes", "_trailer_lines")

    def __init__(self, auth: AuthResult, mode: str, trailer_names: Iterable[str] = (),
                 decoded_length: int | None = None) -> None:
        if mode not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
            raise S3Error("InvalidArgument", "Not an aws-chunked x-amz-content-sha256 value",
                          ArgumentName="x-amz-content-sha256", ArgumentValue=mode[:128])
        if mode != auth.payload_hash:
            raise S3Error("InvalidRequest", "x-amz-content-sha256 does not match the signed value")
        self._auth = auth
        self._signed = mode != STREAMING_UNSIGNED_TRAILER
        self._trailers_allowed = mode != STREAMING_SIGNED
        declared = []
        for name in trailer_names:
            name = name.strip().lower()
            if not name:
                continue
            if checksums.algorithm_from_header(name) is None:
                raise S3Error("InvalidArgument", f"Unsupported x-amz-trailer value: {name[:64]}",
                              ArgumentName="x-amz-trailer", ArgumentValue=name[:64])
            if name not in declared:
                declared.append(name)
        if declared and not self._trailers_allowed:
            raise S3Error("InvalidRequest", f"x-amz-trailer requires x-amz-content-sha256 "
                          f"{STREAMING_SIGNED_TRAILER} or {STREAMING_UNSIGNED_TRAILER}")
        if decoded_length is not None and decoded_length < 0:
            raise S3Error("InvalidArgument", "x-amz-decoded-content-length must be non-negative",
                          ArgumentName="x-amz-decoded-content-length")
        self._declared = tuple(declared)
        self._decoded_length = decoded_length
        self._state = _HEADER
        self._line = b""
        self._remaining = 0
        self._total = 0
        self._chunk_hash = hashlib.sha256() if self._signed else None
        self._chunk_sig = ""
        self._prev_sig = auth.signature
        self._sts_prefix = "AWS4-HMAC-SHA256-PAYLOAD\n" + auth.amz_date + "\n" + auth.scope + "\n"
        self._key = auth.signing_key
        # One running checksum per declared trailer, over the decoded payload (a single pass).
        self._checksums = [checksums.new_checksum(checksums.algorithm_from_header(n)) for n in declared]
        self._trailers: dict[str, str] = {}
        self._trailer_sig: str | None = None
        self._trailer_bytes = 0
        self._trailer_lines = 0

    # -- public ------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The terminal chunk and the trailer section were seen and verified."""
        return self._state == _DONE

    @property
    def decoded_bytes(self) -> int:
        return self._total

    @property
    def trailers(self) -> dict[str, str]:
        return dict(self._trailers)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
        """Consume ``data``; return the payload pieces it completed (possibly none). Pieces may be views
        of ``data``: do not mutate a bytearray input while they are in use."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        n = len(data)
        out: list[bytes | memoryview] = []
        pos = 0
        view = None
        while pos < n:
            state = self._state
            if state == _DATA:
                take = self._remaining
                if take > n - pos:
                    take = n - pos
                if take == n:
                    piece = data
                else:
                    if view is None:
                        view = memoryview(data)
                    piece = view[pos:pos + take]
                if self._chunk_hash is not None:
                    self._chunk_hash.update(piece)
                for c in self._checksums:
                    c.update(piece)
                out.append(piece)
                pos += take
                self._remaining -= take
                self._total += take
                if self._remaining == 0:
                    if self._signed:
                        self._verify_chunk()
                    self._state = _DATA_CR
            elif state == _DATA_CR:
                if data[pos] != 13:
                    raise _incomplete("chunk data not followed by CRLF")
                pos += 1
                self._state = _DATA_LF
            elif state == _DATA_LF:
                if data[pos] != 10:
                    raise _incomplete("chunk data not followed by CRLF")
                pos += 1
                self._state = _HEADER
            elif state == _DONE:
                raise _incomplete("data after the end of the aws-chunked payload")
            else:  # _HEADER or _TRAILER: one CRLF-terminated line, buffered across calls
                nl = data.find(b"\n", pos)
                if nl < 0:
                    if len(self._line) + n - pos > MAX_LINE:
                        raise _incomplete("line too long")
                    self._line += data[pos:]
                    break
                if len(self._line) + nl + 1 - pos > MAX_LINE:
                    raise _incomplete("line too long")
                line = self._line + data[pos:nl + 1] if self._line else data[pos:nl + 1]
                self._line = b""
                pos = nl + 1
                if len(line) < 2 or line[-2] != 13:
                    raise _incomplete("line not terminated by CRLF")
                if state == _HEADER:
                    self._chunk_header(bytes(line[:-2]))
                else:
                    self._trailer_line(bytes(line[:-2]))
        return out

    def finish(self) -> dict[str, str]:
        """Call once the input ended. Returns the trailers (name -> value, without the trailer signature)
        for the caller to forward as headers; raises if the payload was incomplete or invalid."""
        if (self._state == _TRAILER and not self._line
                and all(name in self._trailers for name in self._declared)
                and (self._trailer_sig is not None or not (self._signed and self._trailers_allowed))):
            # Tolerate a missing final empty line when everything else arrived (input ended at a line end).
            self._end_of_trailers()
        if self._state != _DONE:
            raise _incomplete("the terminating zero-length chunk was not received")
        if self._decoded_length is not None and self._total != self._decoded_length:
            raise _incomplete("decoded length differs from x-amz-decoded-content-length")
        return dict(self._trailers)

    # -- internals ---------------------------------------------------------------------------------

    def _chunk_header(self, line: bytes) -> None:
        size_part, semi, ext = line.partition(b";")
        size_part = size_part.rstrip(b" \t")
        if not _SIZE.fullmatch(size_part):
            raise _incomplete("invalid chunk size line")
        size = int(size_part, 16)
        if self._signed:
            m = _CHUNK_SIG.fullmatch(ext.strip(b" \t")) if semi else None
            if m is None:
                raise S3Error("SignatureDoesNotMatch", "The chunk signature is missing or malformed.")
            self._chunk_sig = m.group(1).decode("ascii")
        if self._decoded_length is not None and self._total + size > self._decoded_length:
            raise _incomplete("decoded length exceeds x-amz-decoded-content-length")
        if size:
            self._remaining = size
            self._state = _DATA
            return
        if self._signed:
            self._verify_chunk()
        if self._decoded_length is not None and self._total != self._decoded_length:
            raise _incomplete("decoded length differs from x-amz-decoded-content-length")
        self._state = _TRAILER

    def _verify_chunk(self) -> None:
        digest = self._chunk_hash.hexdigest()
        self._chunk_hash = hashlib.sha256()
        sts = self._sts_prefix + self._prev_sig + "\n" + EMPTY_SHA256 + "\n" + digest
        expected = hmac.digest(self._key, sts.encode("ascii"), "sha256").hex()
        if not hmac.compare_digest(expected, self._chunk_sig):
            raise S3Error("SignatureDoesNotMatch")
        self._prev_sig = expected

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._end_of_trailers()
            return
        self._trailer_bytes += len(line) + 2
        self._trailer_lines += 1
        if self._trailer_bytes > MAX_TRAILER_BYTES or self._trailer_lines > MAX_TRAILER_LINES:
            raise _bad_trailer("The aws-chunked trailer section is too large.")
        if not self._trailers_allowed:
            raise _incomplete("unexpected data after the terminating chunk")
        raw_name, colon, raw_value = line.partition(b":")
        try:
            name = raw_name.decode("ascii").strip().lower()
            value = raw_value.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _bad_trailer("The aws-chunked trailer is not well-formed.") from None
        if not colon or not name:
            raise _bad_trailer("The aws-chunked trailer is not well-formed.")
        if name == TRAILER_SIGNATURE:
            if not self._signed:
                raise _bad_trailer("x-amz-trailer-signature is not allowed with STREAMING-UNSIGNED-PAYLOAD-"
                                   "TRAILER.")
            if self._trailer_sig is not None:
                raise _bad_trailer("Duplicate x-amz-trailer-signature.")
            self._trailer_sig = value
            return
        if self._trailer_sig is not None:
            raise _bad_trailer("The trailer signature must follow the trailers.")
        if name not in self._declared:
            raise _bad_trailer(f"The trailer {name[:64]} was not declared in x-amz-trailer.")
        if name in self._trailers:
            raise _bad_trailer(f"Duplicate trailer {name}.")
        self._trailers[name] = value

    def _end_of_trailers(self) -> None:
        for name in self._declared:
            if name not in self._trailers:
                raise _bad_trailer(f"The trailer {name} declared in x-amz-trailer was not received.")
        if self._signed and self._trailers_allowed:
            sig = self._trailer_sig
            if sig is None or not _HEX64.fullmatch(sig):
                raise S3Error("SignatureDoesNotMatch", "The trailer signature is missing or malformed.")
            canonical = "".join(f"{name}:{self._trailers[name]}\n" for name in sorted(self._trailers))
            sts = ("AWS4-HMAC-SHA256-TRAILER\n" + self._auth.amz_date + "\n" + self._auth.scope + "\n"
                   + self._prev_sig + "\n" + hashlib.sha256(canonical.encode("ascii")).hexdigest())
            expected = hmac.digest(self._key, sts.encode("ascii"), "sha256").hex()
            if not hmac.compare_digest(expected, sig):
                raise S3Error("SignatureDoesNotMatch")
        for name, running in zip(self._declared, self._checksums):
            claimed = checksums.decode_b64(running.algorithm, self._trailers[name])
            if claimed is None:
                raise _bad_trailer(f"Value for {name} trailing header is invalid.")
            if not hmac.compare_digest(claimed, running.digest()):
                raise S3Error("BadDigest", f"The {running.algorithm.upper()} you specified did not match the "
                              "calculated checksum.")
        self._state = _DONE
