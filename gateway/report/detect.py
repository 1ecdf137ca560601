"""What R2 would do differently with a request the gateway lets through: findings that are observed,
never refused. They are appended to the request's ``features`` (so they reach the access line and
the report like the rules' violations), from the profile's data:

- ``aws-chunked``: an upload in the aws-chunked form (``x-amz-content-sha256: STREAMING-…``), which
  R2 refuses and the gateway accepts (profile ``bridged``);
- ``write-rate``: a second write to one key within ``limits.min_write_interval_seconds`` (R2: about
  one write per second to a key, else 429 TooManyRequests);
- ``nfc-collision``: a key used in two Unicode forms that are one under NFC (``limits.key_normalization``:
  R2 names one object by both, as the gateway does once it has normalised the key: rules/keys.py);
- and, for a request refused at authentication (``auth_findings``): ``sigv2`` (Signature Version 2)
  and ``presign-expiry`` (a presigned URL valid for more than 7 days), with the key id it named.

The per-key memories are bounded: old entries are dropped first.
"""
from __future__ import annotations

import time
import unicodedata
from typing import Mapping
from urllib.parse import unquote

# the operations that write (or remove) the object named by the request's key
WRITES = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload", "DeleteObject", "PostObject"})
MAX_PRESIGN_SECONDS = 604800
_MAX_WRITES = 8192          # keys remembered for the write rate (pruned to the recent ones beyond)
_MAX_FORMS = 8192           # non-ASCII keys remembered for NFC collisions (oldest dropped beyond)


class Observers:
    __slots__ = ("interval", "nfc", "chunked", "_writes", "_forms")

    def __init__(self, interval: float | None, nfc: bool, chunked: bool) -> None:
        self.interval = interval
        self.nfc = nfc
        self.chunked = chunked
        self._writes: dict[tuple[str, str], float] = {}
        self._forms: dict[tuple[str, str], str] = {}

    @classmethod
    def for_profile(cls, profile) -> "Observers | None":
        """The observers ``profile`` asks for; None when it asks for none."""
        limits = profile.limits
        interval = limits.min_write_interval_seconds
        nfc = limits.key_normalization == "NFC"
        chunked = "aws-chunked" in profile.spec.bridged
        if interval is None and not nfc and not chunked:
            return None
        return cls(interval, nfc, chunked)

    def observe(self, ex) -> None:
        key = ex.key
        if key is not None:
            if self.interval is not None and ex.op in WRITES:
                self._write(ex, key)
            if self.nfc and not key.isascii():
                self._normal_form(ex, key)
        auth = ex.auth
        if self.chunked and auth is not None and auth.payload_hash[:10] == "STREAMING-":
            ex.features.append("aws-chunked=" + auth.payload_hash)

    def _write(self, ex, key: str) -> None:
        now = time.monotonic()
        writes = self._writes
        k = (ex.bucket or "", key)
        last = writes.get(k)
        writes[k] = now
        if last is not None and now - last < self.interval:
            ex.features.append("write-rate")
        if len(writes) > _MAX_WRITES:
            keep = {k: t for k, t in writes.items() if now - t < self.interval}
            self._writes = keep if len(keep) <= _MAX_WRITES // 2 else {}

    def _normal_form(self, ex, key: str) -> None:
        forms = self._forms
        k = (ex.bucket or "", unicodedata.normalize("NFC", key))
        seen = forms.get(k)
        if seen is None:
            if len(forms) >= _MAX_FORMS:
                del forms[next(iter(forms))]
            forms[k] = key
        elif seen != key:
            ex.features.append("nfc-collision")


def _query_params(raw_query: str) -> dict[str, str]:
    out = {}
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        out.setdefault(unquote(name), unquote(value))
    return out


def auth_findings(headers: Mapping[str, str], raw_query: str) -> tuple[list[str], str | None]:
    """For a request refused at authentication: (findings, the access key id it named)."""
    authorization = headers.get("authorization", "").strip()
    if authorization.startswith("AWS "):
        return ["sigv2"], authorization[4:].rpartition(":")[0][:128] or None
    if not raw_query:
        return [], None
    if "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query:
        return ["sigv2"], _query_params(raw_query).get("AWSAccessKeyId", "")[:128] or None
    if "X-Amz-Expires=" in raw_query:
        params = _query_params(raw_query)
        expires = params.get("X-Amz-Expires", "")
        if expires.isdigit() and int(expires) > MAX_PRESIGN_SECONDS:
            key_id = params.get("X-Amz-Credential", "").partition("/")[0][:128] or None
            return [f"presign-expiry={int(expires)}"], key_id
    return [], None
