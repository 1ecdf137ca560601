"""Checksums of multipart uploads, kept by the gateway where the upstream drops them
(``quirks.NO_CHECKSUM_STORE``), as S3 and R2 answer them.

- CreateMultipartUpload with ``x-amz-checksum-algorithm`` (and ``x-amz-checksum-type``; by default
  the profile's type for the algorithm: CRC64NVME → FULL_OBJECT, the others → COMPOSITE): the
  record ``uploads/<id>/0.<algorithm>.<type>`` is written, the object will carry the metadata
  ``x-amz-meta-r2gw-checksum: <algorithm> <type>``, and the answer names both.
- UploadPart to such an upload must carry that algorithm's checksum (header or trailer), else
  ``400 InvalidRequest``; once the upstream stored the part, its record
  ``uploads/<id>/p.<part>.<size>.<etag>.<checksum, base64url>`` is written (empty: everything is in
  the name, so one listing reads every part) and the answer carries the checksum.
- ListParts adds ``ChecksumAlgorithm``, ``ChecksumType`` and each part's checksum.
- CompleteMultipartUpload: the parts named in the request are matched with their records (number
  and ETag); a part checksum given in the request must be the recorded one (``InvalidPart``). The
  object's checksum is COMPOSITE (the checksum of the parts' digests, ``<base64>-<parts>``) or
  FULL_OBJECT (the parts' CRCs combined with their sizes, gateway/checksums.py ``full_object``; no
  byte is read again). It is answered in the result and kept in ``checksums/<bucket>/<key>``, tied
  to the new ETag (see checksums_kept.py). An upload with a part the gateway holds no record for
  (a part copied natively upstream by UploadPartCopy) completes without an object checksum.
- The upload's records are removed on Complete and Abort (an abandoned upload's records stay,
  a few hundred bytes each, and are never read again).

``<id>`` is the SHA-256 of bucket and upload id: ids are the upstream's, names stay short.
"""
from __future__ import annotations

import base64
import hashlib

from lxml import etree

from .. import s3xml
from ..checksums import ALGORITHMS, composite, decode_b64, full_object, supports_full_object
from ..errors import S3Error
from ..observability import log
from ..upstream import records
from ..upstream.responses import CHECKSUM_METADATA
from .checksums_kept import (COMPOSITE, FULL_OBJECT, answer_headers, keeps_checksums, object_record,
                             sent_checksum, sent_value, unquote)

_ELEMENT = {alg: "Checksum" + alg.upper() for alg in ALGORITHMS}


def _prefix(ex, upload_id: str | None = None) -> str:
    if upload_id is None:
        upload_id = ex.query.get("uploadId", "")
    upload = f"{ex.bucket}\0{upload_id}".encode("utf-8", "surrogateescape")
    return f"uploads/{hashlib.sha256(upload).hexdigest()}/"


def _b64url(value: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(value)).decode().rstrip("=")


def _from_b64url(value: str) -> str:
    return base64.b64encode(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))).decode()


class _Upload:
    """What the records say of one upload: its algorithm and type, and its parts'
    (part number, ETag) → (size, checksum)."""

    def __init__(self, names: list[str], prefix: str) -> None:
        self.names = names
        self.algorithm = self.type = None
        self.parts: dict[tuple[int, str], tuple[int, str]] = {}
        for name in names:
            fields = name[len(prefix):].split(".")
            if fields[0] == "0" and len(fields) == 3 and fields[1] in ALGORITHMS:
                self.algorithm, self.type = fields[1], fields[2]
            elif fields[0] == "p" and len(fields) == 5 and fields[1].isdigit() and fields[2].isdigit():
                try:
                    self.parts[(int(fields[1]), fields[3])] = (int(fields[2]), _from_b64url(fields[4]))
                except ValueError:
                    continue


async def _upload(ex, only_algorithm: bool = False) -> _Upload:
    prefix = _prefix(ex)
    return _Upload(await records.list_names(ex, prefix + "0." if only_algorithm else prefix), prefix)


def _default_type(ex, alg: str) -> str:
    types = (getattr(ex.gw.profile, "checksums", None) or {}).get(alg.upper())
    if types:
        return types[0]
    return FULL_OBJECT if alg == "crc64nvme" else COMPOSITE


async def create(ex, proceed):
    requested = ex.headers.get("x-amz-checksum-algorithm")
    if requested is None or not await keeps_checksums(ex):
        return await proceed(ex)
    alg = requested.strip().lower()
    if alg not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {requested!r} is not supported.")
    checksum_type = ex.headers.get("x-amz-checksum-type", "").strip().upper() or _default_type(ex, alg)
    if checksum_type not in (FULL_OBJECT, COMPOSITE) or (checksum_type == FULL_OBJECT
                                                        and not supports_full_object(alg)):
        raise S3Error("InvalidRequest", f"The {checksum_type} checksum type cannot be used with the "
                      f"{alg} checksum algorithm.")
    ex.upstream_headers[CHECKSUM_METADATA] = f"{alg} {checksum_type}"
    ex.notes = {"algorithm": alg, "type": checksum_type}
    ex.add_answer_hook(_created, body=True)
    return await proceed(ex)


async def _created(ex, resp, body):
    upload_id = s3xml.find_text(s3xml.parse(body, limit=max(len(body), 1)), "UploadId")
    if not upload_id:
        return None
    alg, checksum_type = ex.notes["algorithm"], ex.notes["type"]
    await records.put(ex, f"{_prefix(ex, upload_id)}0.{alg}.{checksum_type}")
    ex.response_headers["x-amz-checksum-algorithm"] = alg.upper()
    ex.response_headers["x-amz-checksum-type"] = checksum_type
    return None


async def upload_part(ex, proceed):
    if not await keeps_checksums(ex):
        return await proceed(ex)
    sent = sent_checksum(ex.headers)
    upload = await _upload(ex, only_algorithm=True)
    if upload.algorithm is None:
        if sent is not None:
            ex.add_answer_hook(_part_echoed)
        return await proceed(ex)
    if sent is None:
        raise S3Error("InvalidRequest", f"The upload was created using a {upload.algorithm} checksum: "
                      f"each part needs x-amz-checksum-{upload.algorithm}.")
    if sent[0] != upload.algorithm:
        raise S3Error("InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: "
                      f"{upload.algorithm}, actual checksum Type: {sent[0]}")
    ex.add_answer_hook(_part_recorded)
    return await proceed(ex)


async def _part_echoed(ex, resp, body):
    alg, announced = sent_checksum(ex.headers)
    value = sent_value(ex, alg, announced)
    if value is not None:
        ex.response_headers["x-amz-checksum-" + alg] = value
    return None


async def _part_recorded(ex, resp, body):
    alg, announced = sent_checksum(ex.headers)
    value = sent_value(ex, alg, announced)
    if value is None or decode_b64(alg, value) is None:
        return None
    size = ex.ingest.length if ex.ingest is not None else 0
    await record_part(ex, size, resp.headers.get("ETag"), value)
    ex.response_headers["x-amz-checksum-" + alg] = value
    return None


async def upload_algorithm(ex) -> str | None:
    """The checksum algorithm the request's upload was created with, where the gateway keeps them."""
    if not await keeps_checksums(ex):
        return None
    return (await _upload(ex, only_algorithm=True)).algorithm


async def record_part(ex, size: int, etag: str, value: str) -> None:
    """Keep the checksum of a part the gateway itself stored (a part copy made by sse_c_copy.py)."""
    number = int(ex.query.get("partNumber", "0"))
    await records.put(ex, f"{_prefix(ex)}p.{number}.{size}.{unquote(etag)}.{_b64url(value)}")


async def list_parts(ex, proceed):
    if await keeps_checksums(ex):
        ex.add_answer_hook(_parts_listed, body=True)
    return await proceed(ex)


async def _parts_listed(ex, resp, body):
    upload = await _upload(ex)
    if upload.algorithm is None:
        return None
    root = s3xml.parse(body, limit=max(len(body), 1))
    ns = root.tag.rpartition("}")[0] + "}" if root.tag.startswith("{") else ""
    element = _ELEMENT[upload.algorithm]
    for part in root:
        if not isinstance(part.tag, str) or s3xml.local(part.tag) != "Part":
            continue
        number = int(s3xml.find_text(part, "PartNumber") or 0)
        found = upload.parts.get((number, unquote(s3xml.find_text(part, "ETag"))))
        if found is not None:
            etree.SubElement(part, ns + element).text = found[1]
    etree.SubElement(root, ns + "ChecksumAlgorithm").text = upload.algorithm.upper()
    etree.SubElement(root, ns + "ChecksumType").text = upload.type
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _requested(body: bytes, alg: str) -> list[tuple[int, str, str | None]]:
    """(part number, ETag, the checksum the request gives for it) for each part named."""
    out = []
    for part in s3xml.parse(body):
        if isinstance(part.tag, str) and s3xml.local(part.tag) == "Part":
            try:
                number = int(s3xml.find_text(part, "PartNumber") or "")
            except ValueError:
                raise S3Error("MalformedXML") from None
            out.append((number, unquote(s3xml.find_text(part, "ETag")), s3xml.find_text(part, _ELEMENT[alg])))
    return out


async def complete(ex, proceed):
    if not isinstance(ex.body, bytes) or not await keeps_checksums(ex):
        return await proceed(ex)
    upload = await _upload(ex)
    if upload.algorithm is None:
        return await proceed(ex)
    alg = upload.algorithm
    chosen = []
    for number, etag, given in _requested(ex.body, alg):
        found = upload.parts.get((number, etag))
        if found is None:
            log.info("multipart_checksum_unknown_part", part=number)
            chosen = None
            break
        if given is not None and given.strip() != found[1]:
            raise S3Error("InvalidPart", f"The checksum given for part {number} is not the part's checksum.")
        chosen.append(found)
    value = None
    if chosen:
        if upload.type == FULL_OBJECT:
            raw = full_object(alg, [(base64.b64decode(c), size) for size, c in chosen])
            value = base64.b64encode(raw).decode()
        else:
            value = composite(alg, [base64.b64decode(c) for _, c in chosen])
        given = ex.headers.get("x-amz-checksum-" + alg)
        if given is not None and given.strip() != value and given.strip() != value.partition("-")[0]:
            raise S3Error("BadDigest", "The checksum you specified did not match the object's checksum.")
    ex.notes = {"value": value, "algorithm": alg, "type": upload.type, "names": upload.names}
    ex.add_answer_hook(_completed, body=True)
    return await proceed(ex)


async def _completed(ex, resp, body):
    notes = ex.notes
    alg, value, checksum_type = notes["algorithm"], notes["value"], notes["type"]
    new = None
    if value is not None:
        root = s3xml.parse(body, limit=max(len(body), 1))
        etag = unquote(s3xml.find_text(root, "ETag"))
        await records.put_json(ex, object_record(ex.bucket, ex.key),
                               {"etag": etag, "algorithm": alg, "type": checksum_type, "value": value})
        ns = root.tag.rpartition("}")[0] + "}" if root.tag.startswith("{") else ""
        etree.SubElement(root, ns + _ELEMENT[alg]).text = value
        etree.SubElement(root, ns + "ChecksumType").text = checksum_type
        new = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    await records.delete_names(ex, notes["names"])
    return new


async def abort(ex, proceed):
    if await keeps_checksums(ex):
        ex.add_answer_hook(_aborted)
    return await proceed(ex)


async def _aborted(ex, resp, body):
    upload = await _upload(ex)
    await records.delete_names(ex, upload.names)
    return None


def register(ext) -> None:
    ext.register(create, "CreateMultipartUpload")
    ext.register(upload_part, "UploadPart")
    ext.register(list_parts, "ListParts")
    ext.register(complete, "CompleteMultipartUpload")
    ext.register(abort, "AbortMultipartUpload")
