"""HTTP preconditions evaluated against an object's current state (pure; no I/O).

Used for R2's conditional PutObject, ``cf-copy-destination-if-*`` and the copy-source conditions
an upstream fails to enforce. A missing object fails ``If-Match`` and ``If-Modified-Since`` and
passes ``If-None-Match`` and ``If-Unmodified-Since`` (nothing was modified after the date).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from ..errors import S3Error


@dataclass(slots=True, frozen=True)
class ObjectState:
    exists: bool
    etag: str | None = None          # unquoted
    last_modified: datetime | None = None


@dataclass(slots=True, frozen=True)
class Conditions:
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None

    @classmethod
    def from_headers(cls, headers: dict[str, str], prefix: str = "") -> "Conditions":
        return cls(headers.get(prefix + "if-match"), headers.get(prefix + "if-none-match"),
                   headers.get(prefix + "if-modified-since"), headers.get(prefix + "if-unmodified-since"))

    def __bool__(self) -> bool:
        return any((self.if_match, self.if_none_match, self.if_modified_since, self.if_unmodified_since))

    @property
    def by_time(self) -> bool:
        return bool(self.if_modified_since or self.if_unmodified_since)


def unquote_etag(etag: str) -> str:
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def _etags(value: str) -> list[str]:
    return [unquote_etag(v) for v in value.split(",") if v.strip()]


def _date(value: str) -> datetime:
    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        d = None
    if d is None:
        raise S3Error("InvalidArgument", f"Invalid date: {value!r}")
    return d


def holds(cond: Conditions, state: ObjectState) -> bool:
    """True when every given condition holds for ``state``."""
    if cond.if_match is not None:
        if not state.exists:
            return False
        tags = _etags(cond.if_match)
        if "*" not in tags and state.etag not in tags:
            return False
    if cond.if_none_match is not None and state.exists:
        tags = _etags(cond.if_none_match)
        if "*" in tags or state.etag in tags:
            return False
    if cond.if_unmodified_since is not None and state.exists and state.last_modified is not None:
        # S3 semantics: when If-Match is present and true, If-Unmodified-Since is ignored
        if cond.if_match is None and state.last_modified > _date(cond.if_unmodified_since):
            return False
    if cond.if_modified_since is not None:
        if not state.exists:
            return False
        # when If-None-Match is present and true, If-Modified-Since is ignored
        if cond.if_none_match is None and state.last_modified is not None \
                and state.last_modified <= _date(cond.if_modified_since):
            return False
    return True


def state_from_head(status: int, headers) -> ObjectState:
    if status == 404:
        return ObjectState(False)
    if status >= 300:
        raise S3Error("InternalError" if status >= 500 else "AccessDenied" if status == 403 else "InvalidRequest",
                      status=status if status >= 400 else 500)
    lm = headers.get("Last-Modified")
    return ObjectState(True, unquote_etag(headers.get("ETag", "")), parsedate_to_datetime(lm) if lm else None)
