"""Checksums kept and returned as R2 keeps them, on upstreams that drop them (``quirks.NO_CHECKSUM_STORE``:
Ceph RGW 16 accepts ``x-amz-checksum-*`` and forgets it). The gateway verifies every checksum a
client sends (gateway/payload.py); this stage keeps the verified value with the object:

- PutObject: as upstream metadata written with the object itself (``x-amz-meta-r2gw-checksum:
  <algorithm> FULL_OBJECT <value>``, a reserved name no client may set or see), so the checksum
  lives and dies with the bytes it describes: an object overwritten directly on the upstream has
  none. A checksum sent as an aws-chunked trailer is known only once the body ended: the metadata
  then names the algorithm alone, and the value goes to the record ``checksums/<bucket>/<sha256 of
  key>`` in the internal bucket, tied to the ETag the upstream answered (a record whose ETag is not
  the object's is never shown).
- GetObject / HeadObject with ``x-amz-checksum-mode: ENABLED``: ``x-amz-checksum-<algorithm>`` and
  ``x-amz-checksum-type`` from the metadata (and the record, only when the metadata points to one).
  A ranged read carries none, as on S3. Without the checksum mode nothing is looked up.
- PutObject's answer carries the checksum and its type.

Multipart uploads: gateway/extensions/multipart_checksums.py. On upstreams that keep checksums
(AWS S3, MinIO) the requests go through unchanged.
"""
from __future__ import annotations

import hashlib

from ..checksums import ALGORITHMS, algorithm_from_header
from ..upstream import dialects, quirks, records
from ..upstream.responses import CHECKSUM_METADATA

FULL_OBJECT, COMPOSITE = "FULL_OBJECT", "COMPOSITE"


async def keeps_checksums(ex) -> bool:
    """Whether the gateway keeps checksums for this upstream (its dialect learnt first if need be)."""
    upstream = ex.upstream
    await dialects.learn_dialect(upstream)
    return upstream.has(quirks.NO_CHECKSUM_STORE)


def sent_checksum(headers) -> tuple[str, str | None] | None:
    """The checksum the request carries: (algorithm, base64 value) from ``x-amz-checksum-<alg>``,
    (algorithm, None) when ``x-amz-trailer`` announces it after the body, else None."""
    for alg in ALGORITHMS:
        value = headers.get("x-amz-checksum-" + alg)
        if value is not None:
            return alg, value.strip()
    trailer = headers.get("x-amz-trailer")
    if trailer:
        for name in trailer.split(","):
            alg = algorithm_from_header(name)
            if alg is not None:
                return alg, None
    return None


def sent_value(ex, alg: str, value: str | None) -> str | None:
    """The value once the body has been read (and verified): the header's, else the trailer's."""
    if value is not None:
        return value
    return ex.ingest.trailers.get("x-amz-checksum-" + alg) if ex.ingest is not None else None


def answer_headers(ex, alg: str, value: str, checksum_type: str) -> None:
    ex.response_headers["x-amz-checksum-" + alg] = value
    ex.response_headers["x-amz-checksum-type"] = checksum_type


def unquote(etag: str | None) -> str:
    return (etag or "").strip().strip('"')


def object_record(bucket: str, key: str) -> str:
    return f"checksums/{bucket}/{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()}"


async def put_object(ex, proceed):
    sent = sent_checksum(ex.headers)
    if sent is None or not await keeps_checksums(ex):
        return await proceed(ex)
    alg, value = sent
    ex.upstream_headers[CHECKSUM_METADATA] = f"{alg} {FULL_OBJECT} {value}" if value else f"{alg} {FULL_OBJECT}"
    ex.add_answer_hook(_put_answered)
    return await proceed(ex)


async def _put_answered(ex, resp, body):
    alg, announced = sent_checksum(ex.headers)
    value = sent_value(ex, alg, announced)
    if value is None:
        return None
    if announced is None:  # a trailer: the metadata names the algorithm, the record keeps the value
        await records.put_json(ex, object_record(ex.bucket, ex.key), {
            "etag": unquote(resp.headers.get("ETag")), "algorithm": alg, "type": FULL_OBJECT, "value": value})
    answer_headers(ex, alg, value, FULL_OBJECT)
    return None


async def read_object(ex, proceed):
    if ex.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and await keeps_checksums(ex):
        ex.add_answer_hook(_read_answered)
    return await proceed(ex)


async def _read_answered(ex, resp, body):
    kept = resp.headers.get(CHECKSUM_METADATA)
    if not kept or "range" in ex.upstream_headers:
        return None
    fields = kept.split()
    if len(fields) < 2 or fields[0] not in ALGORITHMS or fields[1] not in (FULL_OBJECT, COMPOSITE):
        return None
    alg, checksum_type = fields[0], fields[1]
    if len(fields) > 2:
        answer_headers(ex, alg, fields[2], checksum_type)
        return None
    record = await records.get_json(ex, object_record(ex.bucket, ex.key))
    if record and record.get("etag") == unquote(resp.headers.get("ETag")) and record.get("algorithm") == alg \
            and isinstance(record.get("value"), str):
        answer_headers(ex, alg, record["value"], record.get("type", checksum_type))
    return None


def register(ext) -> None:
    ext.register(put_object, "PutObject")
    ext.register(read_object, "GetObject", "HeadObject")
