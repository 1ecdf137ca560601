"""What a finding means: its kind and title, what R2 says (the profile's row for it, or the text of
``hints.yaml`` for findings that are no row of the profile) and the client-side fixes
(``hints.yaml``). Data in, data out; nothing here sees a request."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from ..operations import BUCKET, OBJECT, SERVICE, level_of
from ..rules.profile import Feature, Profile

HINTS_PATH = Path(__file__).with_name("hints.yaml")
_LEVEL_ANCHORS = {SERVICE: "service-level-operations", BUCKET: "bucket-level-operations",
                  OBJECT: "object-level-operations"}
_CHECKSUM_FINDINGS = ("x-amz-checksum-", "x-amz-sdk-checksum-algorithm", "x-amz-trailer")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fix(_Model):
    client: str
    fix: str
    link: str | None = None


class Hint(_Model):
    kind: Literal["refused", "gateway-only", "differs"] = "refused"
    title: str | None = None
    r2: str | None = None
    fixes: tuple[Fix, ...] = ()


class Hints(_Model):
    findings: dict[str, Hint]


@lru_cache(maxsize=4)
def load_hints(path: str = str(HINTS_PATH)) -> Hints:
    return Hints.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def hint_for(hints: Hints, finding: str) -> Hint:
    """The hint of ``finding``: its own entry, else the longest ``prefix*`` entry that matches."""
    exact = hints.findings.get(finding)
    if exact is not None:
        return exact
    best, best_len = None, -1
    for key, hint in hints.findings.items():
        if key.endswith("*") and finding.startswith(key[:-1]) and len(key) > best_len:
            best, best_len = hint, len(key)
    return best or Hint()


def _items(f: Feature) -> list[str]:
    return [*f.headers, *(f"?{q}" for q in f.query), *f.form_fields, *f.body]


def _matches(item: str, name: str) -> bool:
    return item == name or (item.endswith("*") and name.startswith(item[:-1]))


def slug(text: str) -> str:
    """An HTML id made of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def _says(profile: Profile, text: str, where: str, anchor: str) -> dict:
    name = profile.name
    return {"profile": name, "text": text, "where": f"config/profiles/{name}.yaml: {where}",
            "doc": f"docs/compat-{name}.md#{anchor}", "anchor": "r2-" + slug(where)}


def r2_says(profile: Profile, finding: str, operation: str, hint: Hint) -> dict | None:
    """The profile's row about ``finding`` on ``operation`` (what R2 says), as text and a reference."""
    spec = profile.spec
    op = spec.operations.get(operation)
    level = _LEVEL_ANCHORS.get(level_of(operation), "limits") if op is not None else "limits"
    if op is not None and finding == operation:
        state = "implemented" if op.implemented else "not implemented"
        return _says(profile, f"{operation}: {state}" + (f" ({op.note})" if op.note else ""),
                     f"operations.{operation}", level)
    limits = spec.limits
    if finding == "x-amz-storage-class":
        return _says(profile, "Storage classes: " + ", ".join(spec.storage_classes)
                     + f"; any other value, the empty one included, is refused ({spec.storage_class_error})",
                     "storage_classes", "storage-classes")
    if op is not None:
        for f in (*spec.common_request_headers, *op.features):
            items = _items(f)
            if any(_matches(i, finding) for i in items):
                mark = "supported" if f.supported else "not supported"
                harmless = spec.harmless_header_values.get(finding) or spec.harmless_query_values.get(finding[1:])
                text = f"{operation} · {f.group} ({mark}): " + ", ".join(items)
                if harmless and not f.supported:
                    text += " (passing values: " + ", ".join(harmless) + ")"
                if f.note:
                    text += f" — {f.note}"
                return _says(profile, text, f"operations.{operation}.{f.group}", level)
    if finding.startswith(_CHECKSUM_FINDINGS):
        matrix = "; ".join(f"{alg} {'/'.join(types)}" for alg, types in spec.checksums.items())
        return _says(profile, f"Checksums: {matrix}; other algorithms and types are refused",
                     "checksums", "checksums")
    limit_rows = {
        "key-length": f"Object key ≤ {limits.max_key_bytes} bytes (UTF-8), else {limits.key_error}",
        "metadata-size": f"User metadata (x-amz-meta-* names and values) ≤ {limits.max_metadata_bytes} bytes, "
                         "else MetadataTooLarge",
        "object-size": f"Single PutObject ≤ {limits.max_put_object_bytes} bytes, else EntityTooLarge",
        "part-number": f"Parts of a multipart upload ≤ {limits.max_parts}",
        "part-sizes": f"Part size ≥ {limits.min_part_bytes} bytes, all parts but the last the same size "
                      "(the last no larger), else InvalidPart",
        "bucket-name": f"Bucket name {limits.bucket_name.min_length}–{limits.bucket_name.max_length} characters "
                       f"matching {limits.bucket_name.pattern}, else InvalidBucketName",
    }
    if limits.min_write_interval_seconds:
        limit_rows["write-rate"] = (f"Writes to one key: about one per {limits.min_write_interval_seconds:g} s, "
                                    "else TooManyRequests")
    if limits.key_normalization:
        limit_rows["nfc-collision"] = (f"Keys are normalised ({limits.key_normalization}): two keys differing "
                                       "only in form are one object")
    if finding in limit_rows:
        return _says(profile, limit_rows[finding], f"limits.{finding}", "limits")
    if finding in spec.bridged:
        return _says(profile, (hint.r2 or f"{finding}: refused by the provider, accepted by the gateway"),
                     "bridged", "refused-by-the-provider-accepted-by-the-gateway")
    if hint.r2:
        return {"profile": profile.name, "text": hint.r2, "where": "gateway/report/hints.yaml: " + finding,
                "doc": None, "anchor": "r2-" + slug(finding)}
    return None


def describe(profile: Profile, finding: str, operation: str) -> dict:
    """Everything the report shows about one finding besides its counts."""
    hint = hint_for(load_hints(), finding)
    if hint.title:
        title = hint.title
    elif finding == operation:
        title = f"{operation} (operation)"
    elif finding.startswith("?"):
        title = f"query parameter {finding[1:]} on {operation}"
    elif finding.startswith(("x-", "content-", "cf-")):
        title = f"header {finding} on {operation}"
    else:
        title = f"{finding} on {operation}"
    return {"kind": hint.kind, "title": title, "r2_says": r2_says(profile, finding, operation, hint),
            "fixes": [fx.model_dump() for fx in hint.fixes]}
