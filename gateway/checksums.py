"""The flexible checksums S3 accepts (``x-amz-checksum-<algorithm>``), computed incrementally.

Every algorithm gives the same bytes as botocore's ``httpchecksum`` classes (CRC32 via zlib, CRC32C and
CRC64NVME via awscrt, SHA1/SHA256 via hashlib): big-endian digests, base64 on the wire.

    c = new_checksum("crc32c")
    c.update(b"...")           # bytes, bytearray or memoryview
    c.digest_b64()             # "sOO8/Q=="
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Protocol

#: The algorithms S3 (and R2) accept, lowercase, in S3's priority order.
ALGORITHMS: tuple[str, ...] = ("crc64nvme", "crc32c", "crc32", "sha1", "sha256")

#: Digest length in bytes per algorithm.
DIGEST_SIZES: dict[str, int] = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}

HEADER_PREFIX = "x-amz-checksum-"


class Checksum(Protocol):
    algorithm: str

    def update(self, data: bytes | bytearray | memoryview) -> None: ...

    def digest(self) -> bytes: ...

    def digest_b64(self) -> str: ...


class _Crc:
    __slots__ = ("algorithm", "_fn", "_value", "_size", "_mask")

    def __init__(self, algorithm: str, fn, size: int) -> None:
        self.algorithm = algorithm
        self._fn = fn
        self._value = 0
        self._size = size
        self._mask = (1 << (8 * size)) - 1

    def update(self, data) -> None:
        self._value = self._fn(data, self._value) & self._mask

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")

    def digest_b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _Hash:
    __slots__ = ("algorithm", "_h")

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._h = hashlib.new(algorithm)

    def update(self, data) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def digest_b64(self) -> str:
        return base64.b64encode(self._h.digest()).decode("ascii")


_CRT = None


def preload() -> None:
    """Load awscrt's checksums now (the gateway, at start), not on the first CRC32C or CRC64NVME."""
    _crt()


def _crt():
    # awscrt's native module costs ~40 ms to load: a bulk copy that meets no CRC32C/CRC64NVME skips it
    global _CRT
    if _CRT is None:
        from awscrt import checksums
        _CRT = checksums
    return _CRT


def new_checksum(algorithm: str) -> Checksum:
    """A fresh running checksum for ``algorithm`` (case-insensitive). ``ValueError`` if unknown."""
    alg = algorithm.lower()
    if alg == "crc32":
        return _Crc(alg, zlib.crc32, 4)
    if alg == "crc32c":
        return _Crc(alg, _crt().crc32c, 4)
    if alg == "crc64nvme":
        return _Crc(alg, _crt().crc64nvme, 8)
    if alg in ("sha1", "sha256"):
        return _Hash(alg)
    raise ValueError(f"unsupported checksum algorithm: {algorithm!r}")


def header_name(algorithm: str) -> str:
    """``"crc32"`` -> ``"x-amz-checksum-crc32"``."""
    return HEADER_PREFIX + algorithm.lower()


def algorithm_from_header(name: str) -> str | None:
    """``"x-amz-checksum-crc32"`` (any case) -> ``"crc32"``; None if not a known checksum header.

    ``x-amz-checksum-algorithm``/``-type``/``-mode`` are not checksum values and give None.
    """
    name = name.strip().lower()
    if not name.startswith(HEADER_PREFIX):
        return None
    alg = name[len(HEADER_PREFIX):]
    return alg if alg in DIGEST_SIZES else None


def decode_b64(algorithm: str, value: str) -> bytes | None:
    """The digest bytes of a base64 checksum value, or None if it is not valid base64 of the right size."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == DIGEST_SIZES.get(algorithm.lower(), -1) else None


def compute_b64(algorithm: str, data: bytes) -> str:
    """One-shot helper: the base64 checksum of ``data``."""
    c = new_checksum(algorithm)
    c.update(data)
    return c.digest_b64()


# -- checksums of a multipart object -----------------------------------------------------------------
#: reflected polynomials of the CRCs (all three: initial value and final XOR all ones)
_POLYNOMIALS = {"crc32": (0xEDB88320, 32), "crc32c": (0x82F63B78, 32), "crc64nvme": (0x9A6C9329AC4BC9B5, 64)}
_X8_POWERS: dict[str, list[int]] = {}   # x^(8·2^k) mod P, k = 0…63, per algorithm (pure data, built once)


def _mul(a: int, b: int, poly: int, width: int) -> int:
    """a·b modulo the reflected polynomial (bit ``width-1`` is x^0)."""
    top = 1 << (width - 1)
    product = 0
    while a:
        if a & top:
            product ^= b
        a = (a << 1) & ((1 << width) - 1)
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return product


def _x8_powers(algorithm: str) -> list[int]:
    powers = _X8_POWERS.get(algorithm)
    if powers is None:
        poly, width = _POLYNOMIALS[algorithm]
        p = 1 << (width - 1 - 8)          # x^8
        powers = []
        for _ in range(64):
            powers.append(p)
            p = _mul(p, p, poly, width)
        _X8_POWERS[algorithm] = powers
    return powers


def combine_crc(algorithm: str, crc1: bytes, crc2: bytes, length2: int) -> bytes:
    """CRC(A ‖ B) from CRC(A), CRC(B) and len(B), without the data (zlib's ``crc32_combine``,
    for any of the three CRCs): CRC(A) is multiplied by x^(8·len B) modulo the polynomial."""
    poly, width = _POLYNOMIALS[algorithm]
    size = width // 8
    a, b = int.from_bytes(crc1, "big"), int.from_bytes(crc2, "big")
    powers = _x8_powers(algorithm)
    k = 0
    while length2:
        if length2 & 1:
            a = _mul(powers[k], a, poly, width)
        length2 >>= 1
        k += 1
    return (a ^ b).to_bytes(size, "big")


def full_object(algorithm: str, parts: list[tuple[bytes, int]]) -> bytes:
    """The CRC of a whole object from its parts' (CRC, size), in part order."""
    crc, _ = parts[0]
    for part_crc, size in parts[1:]:
        crc = combine_crc(algorithm, crc, part_crc, size)
    return crc


def composite(algorithm: str, part_digests: list[bytes]) -> str:
    """S3's COMPOSITE checksum: the checksum of the parts' digests concatenated, then ``-<parts>``."""
    c = new_checksum(algorithm)
    c.update(b"".join(part_digests))
    return f"{c.digest_b64()}-{len(part_digests)}"


def supports_full_object(algorithm: str) -> bool:
    return algorithm.lower() in _POLYNOMIALS
