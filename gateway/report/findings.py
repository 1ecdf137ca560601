"""The readiness findings as rows: one per (finding, operation, client key, user agent, bucket), with
a count, first and last seen, and the first request's line as the example. Pure data: filled by the
live gateway (``live``) or from access logs (``offline``) through the same ``add``, saved and merged
as plain JSON.

Bounded: at most ``max_rows`` rows. Past that, a new combination folds into the row of its finding
and operation with ``(other)`` for key, user agent and bucket; and past ``max_rows`` + 256 such
rows, into one ``(other)`` row. Findings are counted whatever happens; only their detail is lost.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

OTHER = "(other)"
_FOLD_ROWS = 256
_UA_KEY_BYTES = 200
# botocore's per-call list of the SDK features a request used ("m/Z,b,D"): it differs from call to
# call of one application, so it is left out of the user agent a finding is keyed by
_VOLATILE_UA = re.compile(r"\s+m/\S*")


def finding_id(feature: str) -> str:
    """``x-amz-acl=public-read`` → ``x-amz-acl``: the feature without the client's value."""
    return feature.partition("=")[0]


def user_agent_key(ua: str | None) -> str:
    """The user agent a finding is keyed by: the request's, without botocore's per-call features."""
    if not ua:
        return ""
    if " m/" in ua:
        ua = _VOLATILE_UA.sub("", ua)
    return ua[:_UA_KEY_BYTES]


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(slots=True)
class Row:
    finding: str
    operation: str
    access_key_id: str | None
    user_agent: str
    bucket: str | None
    count: int
    first: float
    last: float
    example: dict | None = None

    @property
    def key(self) -> tuple:
        return (self.finding, self.operation, self.access_key_id, self.user_agent, self.bucket)

    def to_state(self) -> dict:
        return {"finding": self.finding, "operation": self.operation, "access_key_id": self.access_key_id,
                "user_agent": self.user_agent, "bucket": self.bucket, "count": self.count,
                "first": self.first, "last": self.last, "example": self.example}

    @classmethod
    def from_state(cls, d: dict) -> "Row":
        return cls(str(d["finding"]), str(d["operation"]), d.get("access_key_id"), str(d.get("user_agent") or ""),
                   d.get("bucket"), int(d["count"]), float(d["first"]), float(d["last"]), d.get("example"))


class Findings:
    """Every finding seen, as rows (bounded)."""

    __slots__ = ("rows", "max_rows", "since", "folded")

    def __init__(self, max_rows: int = 2000) -> None:
        self.rows: dict[tuple, Row] = {}
        self.max_rows = max_rows
        self.since: float | None = None    # when the first finding was seen
        self.folded = 0                    # findings whose detail was folded into an (other) row

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, finding: str, operation: str, access_key_id: str | None, user_agent: str | None,
            bucket: str | None, when: float, count: int = 1, first: float | None = None) -> Row:
        """Count ``count`` occurrences; returns the row (its ``example`` is None when it is new)."""
        ua = user_agent_key(user_agent)
        key = (finding, operation, access_key_id, ua, bucket)
        rows = self.rows
        row = rows.get(key)
        if row is None:
            if len(rows) >= self.max_rows:
                self.folded += count
                key = (finding, operation, OTHER, OTHER, OTHER)
                if key not in rows and len(rows) >= self.max_rows + _FOLD_ROWS:
                    key = (OTHER, OTHER, OTHER, OTHER, OTHER)
                row = rows.get(key)
            if row is None:
                row = rows[key] = Row(*key, count=0, first=when if first is None else first, last=when)
        row.count += count
        if first is not None and first < row.first:
            row.first = first
        if when > row.last:
            row.last = when
        if self.since is None or row.first < self.since:
            self.since = row.first
        return row

    def merge(self, other: "Findings") -> None:
        for row in other.rows.values():
            before = self.rows.get(row.key)
            earlier = before is not None and row.first < before.first
            mine = self.add(row.finding, row.operation, row.access_key_id, row.user_agent, row.bucket,
                            row.last, row.count, row.first)
            if mine.example is None or (earlier and row.example is not None):
                mine.example = row.example
        self.folded += other.folded

    def sorted_rows(self) -> list[Row]:
        """Most frequent first; then by finding, operation, key, user agent, bucket."""
        return sorted(self.rows.values(), key=lambda r: (-r.count, r.finding, r.operation, r.access_key_id or "",
                                                         r.user_agent, r.bucket or ""))

    # -- kept across restarts -------------------------------------------------------------------
    def to_state(self) -> dict:
        return {"version": 1, "since": self.since, "folded": self.folded,
                "rows": [r.to_state() for r in self.rows.values()]}

    @classmethod
    def from_state(cls, data: dict, max_rows: int = 2000) -> "Findings":
        """Findings saved by ``to_state``; raises ValueError on anything else."""
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("rows"), list):
            raise ValueError("not a readiness state (version 1)")
        out = cls(max_rows)
        loaded = cls(max(max_rows, len(data["rows"])))
        try:
            for d in data["rows"]:
                row = Row.from_state(d)
                loaded.rows[row.key] = row
                if loaded.since is None or row.first < loaded.since:
                    loaded.since = row.first
            loaded.folded = int(data.get("folded") or 0)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"a row of the readiness state is malformed: {e}") from None
        out.merge(loaded)
        return out
