"""A profile's rules on object keys, applied to each request before it goes upstream:

- ``limits.key_normalization`` (R2 2025: NFC): keys are Unicode-normalised on the way in, so that two
  spellings of one name ("é" as one code point or as "e" + U+0301) name one object, as on R2. It
  applies to the request's key (every object operation: PUT, GET, HEAD, DELETE, multipart), the
  copy source, the keys of a DeleteObjects body, and the ``prefix`` / ``start-after`` / ``marker``
  / ``key-marker`` of listings. Keys come back as stored. An ASCII key is normalised already: it
  costs one ``str.isascii()``.
- ``limits.min_write_interval_seconds`` (R2: about one write per second to the same key; ``429
  TooManyRequests``), refused only when the gateway setting ``limits.key_write_limit`` is on (off
  by default; the readiness report observes it either way). Writes are the operations that write
  or remove the request's key (``report.detect.WRITES``: PutObject, CopyObject,
  CompleteMultipartUpload, DeleteObject; PostObject's key is its form's, not counted here). The
  count is kept in the memory of each gateway process: with N replicas (or workers) a key can take
  up to N writes a second; nothing is shared between them.

:func:`build` returns None when the profile and settings ask for neither, so the pipeline's hook
costs one attribute test per request.
"""
from __future__ import annotations

import base64
import hashlib
import time
import unicodedata
from collections import OrderedDict
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .. import s3xml
from ..auth.canonical import uri_encode
from ..errors import S3Error
from ..report.detect import WRITES
from .profile import Profile

if TYPE_CHECKING:
    from ..exchange import Exchange

_LIST_OPERATIONS = frozenset({"ListObjects", "ListObjectsV2", "ListMultipartUploads", "ListObjectVersions"})
_LIST_PARAMS = frozenset({"prefix", "start-after", "marker", "key-marker"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})


class KeyWrites:
    """At most one admitted write per key per ``interval`` seconds, in this process.

    Admissions are kept in arrival order, so the expired ones are always at the front: each check
    drops them first (amortised O(1); the table holds only the last second's keys)."""

    __slots__ = ("interval", "operations", "_admitted", "_clock")

    def __init__(self, interval: float, operations, clock=time.monotonic) -> None:
        self.interval = interval
        self.operations = frozenset(operations)
        self._admitted: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._clock = clock

    def admit(self, bucket: str, key: str) -> None:
        now = self._clock()
        admitted = self._admitted
        while admitted:
            first = next(iter(admitted.values()))
            if now - first < self.interval:
                break
            admitted.popitem(last=False)
        name = (bucket, key)
        if name in admitted:
            raise S3Error("TooManyRequests", "Reduce your rate of writes to this key: at most about one "
                          "per second.", Key=key[:256])
        admitted[name] = now

    def __len__(self) -> int:
        return len(self._admitted)


class KeyRules:
    __slots__ = ("form", "writes")

    def __init__(self, form: str | None, writes: KeyWrites | None) -> None:
        self.form = form
        self.writes = writes

    def apply(self, ex: "Exchange") -> None:
        """Normalise the request's keys (``ex.key``, its copy source, listing parameters, a
        DeleteObjects body) and count the write; called once ``ex.upstream_headers`` is built."""
        form = self.form
        if form is not None:
            key = ex.key
            if key is not None and not key.isascii():
                ex.key = unicodedata.normalize(form, key)
            op = ex.op
            if op in _COPIES:
                _copy_source(ex, form)
            elif op in _LIST_OPERATIONS and ex.query:
                _list_params(ex, form)
            elif op == "DeleteObjects" and isinstance(ex.body, bytes) and ex.body:
                _delete_body(ex, form)
        writes = self.writes
        if writes is not None and ex.op in writes.operations and ex.key is not None:
            writes.admit(ex.bucket, ex.key)


def build(profile: Profile, enforce_write_limit: bool) -> KeyRules | None:
    """The key rules of ``profile`` (the write limit only if the gateway enforces it); None if none."""
    limits = profile.limits
    interval = limits.min_write_interval_seconds if enforce_write_limit else None
    writes = KeyWrites(interval, WRITES) if interval is not None else None
    if limits.key_normalization is None and writes is None:
        return None
    return KeyRules(limits.key_normalization, writes)


def _copy_source(ex: "Exchange", form: str) -> None:
    raw = ex.headers.get("x-amz-copy-source")
    if not raw or (raw.isascii() and "%" not in raw):
        return
    bucket, key, version = ex.copy_source()
    if key.isascii():
        return
    normal = unicodedata.normalize(form, key)
    if normal == key:
        return
    source = ex.bucket_path(bucket, normal) + (f"?versionId={uri_encode(version, False)}" if version else "")
    ex.headers["x-amz-copy-source"] = source       # what the stages read (Exchange.copy_source)
    ex.upstream_headers["x-amz-copy-source"] = source


def _list_params(ex: "Exchange", form: str) -> None:
    changed = {}
    for name in _LIST_PARAMS:
        value = ex.query.get(name)
        if value is not None and not value.isascii():
            normal = unicodedata.normalize(form, value)
            if normal != value:
                changed[name] = normal
    if not changed:
        return
    ex.query.update(changed)
    parts = []
    for part in ex.upstream_query().split("&"):   # canonical: sorted by name, values encoded
        name = unquote(part.partition("=")[0])
        parts.append(f"{part.partition('=')[0]}={uri_encode(changed[name], False)}" if name in changed else part)
    ex.query_override = "&".join(parts)


def _delete_body(ex: "Exchange", form: str) -> None:
    body = ex.body
    if body.isascii() and b"&#" not in body:
        return           # no character that NFC could change (nor one written as a reference)
    root = s3xml.parse(body)
    quiet = None
    objects: list[tuple[str, str | None]] = []
    changed = False
    for child in root:
        name = s3xml.local(child.tag) if isinstance(child.tag, str) else ""
        if name == "Quiet":
            quiet = child.text or ""
        elif name == "Object":
            key = s3xml.find_text(child, "Key") or ""
            normal = unicodedata.normalize(form, key)
            changed |= normal != key
            objects.append((normal, s3xml.find_text(child, "VersionId")))
    if not changed:
        return
    parts = [s3xml.element("Quiet", quiet)] if quiet is not None else []
    for key, version in objects:
        parts.append("<Object>" + s3xml.element("Key", key)
                     + (s3xml.element("VersionId", version) if version is not None else "") + "</Object>")
    ex.body = s3xml.document("Delete", parts)
    # the client's digest covered the body it sent (verified on arrival); the upstream gets this one's
    headers = ex.upstream_headers
    for name in [h for h in headers if h.startswith("x-amz-checksum-") or h == "x-amz-sdk-checksum-algorithm"]:
        del headers[name]
    headers["content-md5"] = base64.b64encode(hashlib.md5(ex.body).digest()).decode()
