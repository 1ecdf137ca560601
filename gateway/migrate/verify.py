"""What can be known about an object's content from its ETag, and the digests computed while copying.

S3 ETags are the content's MD5 only for objects stored in one PUT without SSE-KMS / SSE-C; a
multipart object's ETag is ``md5(md5(part 1) ‖ … ‖ md5(part N))-N``, which depends on where the
parts were cut. So an ETag proves equal content only when both sides are plain MD5s (or are
multipart ETags over the same cuts); otherwise the copy is checked with digests of the bytes that
went through (:class:`Tap`). The verification levels in the report, strongest first:

``md5``     the source's ETag is the MD5 of its content, and the bytes read hash to it; the
            destination's ETag proves it stored those bytes (one PUT: it checked Content-MD5 too).
``etag``    a multipart source copied over the same part cuts: the destination's ETag equals the
            source's (every part's MD5 matched on both sides).
``parts``   the source offers no digest of its content (multipart over unknown cuts, or encrypted):
            its bytes are checked by their count only; the destination's ETag equals the MD5 (or the
            per-part MD5s) of the bytes read, so it stored exactly what was read.
``crc32``   the destination offers no MD5 ETag either: the CRC32 it reports for the object
            (``x-amz-checksum-crc32``, full-object), or else the CRC32 of the copy read back whole,
            equals the CRC32 of the bytes read from the source.
A ``+crc32`` suffix: ``--verify reread`` read the copy back as well, and its CRC32 matched.
"""
from __future__ import annotations

import base64
import hashlib
import re
import zlib

_PLAIN = re.compile(r"[0-9a-f]{32}")
_MULTIPART = re.compile(r"[0-9a-f]{32}-([0-9]{1,5})")

SYSTEM_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding",
                  "content-language", "expires")
_ENCRYPTED = ("x-amz-server-side-encryption-customer-algorithm",)


def plain_md5(etag: str) -> bool:
    return bool(_PLAIN.fullmatch(etag))


def multipart_count(etag: str) -> int | None:
    m = _MULTIPART.fullmatch(etag)
    return int(m.group(1)) if m else None


def etag_is_md5(etag: str, headers: dict[str, str]) -> bool:
    """Whether this response's ETag is the MD5 of the object's bytes (one PUT, no KMS / SSE-C)."""
    if not plain_md5(etag) or any(h in headers for h in _ENCRYPTED):
        return False
    return not headers.get("x-amz-server-side-encryption", "").startswith("aws:kms")


def same_content(a_size: int, a_etag: str, b_size: int, b_etag: str) -> bool | None:
    """True: equal content; False: different; None: the ETags cannot tell (equal sizes)."""
    if a_size != b_size:
        return False
    if a_etag and a_etag == b_etag:
        return True
    if plain_md5(a_etag) and plain_md5(b_etag):
        return False
    return None


def multipart_etag(digests: list[bytes]) -> str:
    return hashlib.md5(b"".join(digests)).hexdigest() + f"-{len(digests)}"


def md5_b64(hex_or_digest: str | bytes) -> str:
    raw = bytes.fromhex(hex_or_digest) if isinstance(hex_or_digest, str) else hex_or_digest
    return base64.b64encode(raw).decode()


def carried_headers(headers: dict[str, str]) -> dict[str, str]:
    """The metadata a copy keeps: the system headers above and every ``x-amz-meta-*``."""
    out = {h: headers[h] for h in SYSTEM_HEADERS if h in headers}
    out.update((k, v) for k, v in headers.items() if k.startswith("x-amz-meta-"))
    return out


def reported_crc32(headers: dict[str, str]) -> int | None:
    """The full-object CRC32 a store reports (``x-amz-checksum-crc32``), if it does."""
    value = headers.get("x-amz-checksum-crc32")
    if not value or headers.get("x-amz-checksum-type", "FULL_OBJECT").upper() != "FULL_OBJECT":
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return int.from_bytes(raw, "big") if len(raw) == 4 else None


class Tap:
    """Counts the bytes of one stream and digests them in order: CRC32 always (zlib: a few GB/s),
    MD5 on request."""

    __slots__ = ("size", "crc", "_md5", "on_bytes")

    def __init__(self, md5: bool = False, on_bytes=None) -> None:
        self.size = 0
        self.crc = 0
        self._md5 = hashlib.md5() if md5 else None
        self.on_bytes = on_bytes

    def moved(self, n: int) -> None:
        """``n`` bytes that went by without passing through the process (the kernel moved them):
        counted, not digested — the CRC32 is unknown from then on."""
        self.size += n
        self.crc = None
        if self.on_bytes is not None:
            self.on_bytes(n)

    def feed(self, data) -> None:
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)
        if self._md5 is not None:
            self._md5.update(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))

    @property
    def md5_hex(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    @property
    def crc_hex(self) -> str:
        return f"{self.crc:08x}" if self.crc is not None else ""
