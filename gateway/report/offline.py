"""The readiness report from access logs (``r2-gateway report --from ACCESS_LOG``): the findings a
gateway in audit or enforce mode wrote into its access lines (``features``, with ``request`` and
the user agent), read back through the same ``Findings.add`` as the live report, so the two agree.

Both access-log shapes are read (``gateway`` and ``r2``); other lines (start-up banner, other log
events, lines cut short) are skipped. For lines of a gateway whose rules were off, the operations
the profile does not implement are still found from each line's ``operation``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

import orjson

from .findings import Findings, finding_id


def _ts(value) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _fields(rec: dict) -> dict | None:
    """An access record's fields, whichever shape it has; None for any other line."""
    if rec.get("event") == "request":
        return {"when": _ts(rec.get("timestamp")), "operation": rec.get("operation"),
                "key_id": rec.get("access_key_id") or rec.get("claimed_key_id"), "user_agent": rec.get("user_agent"),
                "bucket": rec.get("bucket"), "features": rec.get("features"), "request": rec.get("request"),
                "status": rec.get("status"), "error_code": rec.get("error_code"), "request_id": rec.get("request_id")}
    extra = rec.get("r2gw")
    if "action" in rec and isinstance(extra, dict):
        actor = rec.get("actor") or {}
        resource = rec.get("resource") or {}
        return {"when": _ts(rec.get("timestamp")), "operation": rec.get("action"),
                "key_id": actor.get("accessKeyId") or extra.get("claimedKeyId"), "user_agent": extra.get("userAgent"),
                "bucket": resource.get("bucket"), "features": extra.get("features"), "request": extra.get("request"),
                "status": rec.get("status"), "error_code": rec.get("errorCode"), "request_id": rec.get("requestId")}
    return None


def from_lines(lines: Iterable[bytes | str], profile=None, max_rows: int = 2000) -> tuple[Findings, int]:
    """(findings, access records read) from access-log lines."""
    findings = Findings(max_rows)
    records = 0
    for raw in lines:
        raw = raw.strip()
        if not raw[:1] in (b"{", "{"):
            continue
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        f = _fields(rec) if isinstance(rec, dict) else None
        if f is None or f["when"] is None or not isinstance(f["operation"], str):
            continue
        records += 1
        features = [x for x in f["features"] or () if isinstance(x, str)]
        op = f["operation"]
        if profile is not None and not features and op in profile.op_rules and not profile.implemented(op):
            features = [op]
        for feature in features:
            row = findings.add(finding_id(feature), op, f["key_id"], f["user_agent"], f["bucket"], f["when"])
            if row.example is None:
                row.example = {"request": f["request"], "feature": feature, "status": f["status"],
                               "error_code": f["error_code"], "request_id": f["request_id"],
                               "user_agent": f["user_agent"]}
    return findings, records
