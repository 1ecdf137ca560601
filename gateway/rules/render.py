"""A profile as a compatibility table: Markdown for people, JSON for programs.

``docs/compat-r2.md`` is ``render_markdown(load_profile("r2"))``; a unit test keeps it so.
Regenerate it with ``python -m gateway.rules.render r2 > docs/compat-r2.md``.
"""
from __future__ import annotations

import json
import sys

from ..operations import ALIASES, BUCKET, OBJECT, SERVICE, level_of
from .profile import Feature, Profile, load_profile, profile_path

_YES, _NO, _EXT = "✅", "❌", "⭐"
_CHECKSUM_TYPES = ("FULL_OBJECT", "COMPOSITE")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _items(f: Feature) -> list[str]:
    return ([f"`{h}`" for h in f.headers] + [f"`?{q}`" for q in f.query]
            + [f"form `{x}`" for x in f.form_fields] + [f"`<{b}>`" for b in f.body])


def _feature(f: Feature) -> str:
    mark = (_EXT if f.extension else "") + (_YES if f.supported else _NO)
    text = f"{mark} {f.group}"
    items = _items(f)
    if items:
        text += ": " + ", ".join(items)
    extra = []
    if f.values is not None:
        extra.append("values " + ", ".join(f.values))
    if f.value_range is not None:
        extra.append(f"{f.value_range[0]}–{f.value_range[1]}")
    if f.note:
        extra.append(f.note)
    if extra:
        text += " (" + "; ".join(extra) + ")"
    return _cell(text)


def _yaml_relpath(profile: Profile) -> str:
    path = profile_path(profile.name)
    return f"config/profiles/{path.name}" if path.exists() else f"{profile.name}.yaml"


def render_markdown(profile: Profile) -> str:
    spec = profile.spec
    ops = spec.operations
    out: list[str] = []
    w = out.append
    w(f"<!-- Generated from {_yaml_relpath(profile)} by `python -m gateway.rules.render {profile.name}`. "
      "Do not edit by hand. -->")
    w(f"# {spec.title}")
    w("")
    implemented = sum(o.implemented for o in ops.values())
    w(f"Profile `{profile.name}`: {implemented} of {len(ops)} S3 operations implemented. "
      f"Sources: {', '.join(f'`{s}`' for s in spec.sources)}.")
    w("")
    w(f"{_YES} implemented / supported · {_NO} not implemented: the gateway answers 501 NotImplemented "
      f"(`<Operation> not implemented`, `Header '<name>' with value '<value>' not implemented`) unless the "
      f"value is one of the harmless values below · {_EXT} provider extension. "
      "Headers and parameters not listed are forwarded as they are.")
    w("")
    if spec.region is not None:
        w("## Region")
        w("")
        aliases = ", ".join(f"`{a}`" if a else "empty" for a in spec.region.aliases)
        w(f"`{spec.region.name}`" + (f"; {aliases} alias to it." if aliases else "."))
        w("")
    if spec.extensions:
        w("## Extensions")
        w("")
        for e in spec.extensions:
            w(f"- `{e}`")
        w("")
    w("## Storage classes")
    w("")
    w("| Storage class | Upstream class |")
    w("| --- | --- |")
    for c in spec.storage_classes:
        w(f"| `{c}` | `{profile.upstream_storage_class(c)}` |")
    w("")
    if spec.storage_class_error == "NotImplemented":
        w("Any other value, the empty one included: `Header 'x-amz-storage-class' with value '<value>' not implemented`.")
    else:
        w(f"Any other value: `{spec.storage_class_error}`.")
    w("")
    w("## Checksums")
    w("")
    if spec.checksums:
        w("| Algorithm | " + " | ".join(f"`{t}`" for t in _CHECKSUM_TYPES) + " |")
        w("| --- | " + " | ".join("---" for _ in _CHECKSUM_TYPES) + " |")
        for alg, types in spec.checksums.items():
            w(f"| `{alg}` | " + " | ".join(_YES if t in types else _NO for t in _CHECKSUM_TYPES) + " |")
        w("")
        w("Other algorithms are refused wherever they appear (`x-amz-checksum-<algorithm>`, "
          "`x-amz-checksum-algorithm`, `x-amz-sdk-checksum-algorithm`, `x-amz-trailer`).")
    else:
        w("No checksum algorithm: every `x-amz-checksum-*` header is refused.")
    w("")
    w("## Limits")
    w("")
    lim = spec.limits
    w("| Limit | Value |")
    w("| --- | --- |")
    w(f"| Object key | ≤ {lim.max_key_bytes} bytes (UTF-8), else `{lim.key_error}` |")
    w(f"| User metadata (`x-amz-meta-*` names and values) | ≤ {lim.max_metadata_bytes} bytes, else `MetadataTooLarge` |")
    if lim.max_put_object_bytes:
        w(f"| Single PutObject | ≤ {lim.max_put_object_bytes} bytes, else `EntityTooLarge` |")
    if lim.max_object_bytes:
        w(f"| Object | ≤ {lim.max_object_bytes} bytes |")
    if lim.max_parts:
        w(f"| Parts of a multipart upload | ≤ {lim.max_parts} |")
    if lim.min_part_bytes:
        w(f"| Part size (all but the last) | ≥ {lim.min_part_bytes} bytes"
          + (", all the same size (the last no larger), else `InvalidPart`" if lim.uniform_parts else "") + " |")
    if lim.min_write_interval_seconds:
        w(f"| Writes to one key | about one per {lim.min_write_interval_seconds:g} s, else `TooManyRequests` "
          "(reported; refused with the gateway setting `limits.key_write_limit`, counted by each gateway "
          "process) |")
    if lim.key_normalization:
        w(f"| Key normalisation | {lim.key_normalization}, on the way in (the request's key, the copy source, "
          "DeleteObjects' keys, listing `prefix` / `start-after` / `marker` / `key-marker`): two spellings of "
          "one name are one object; keys are listed as stored |")
    b = lim.bucket_name
    w(f"| Bucket name | {b.min_length}–{b.max_length} characters matching `{_cell(b.pattern)}`, "
      "else `InvalidBucketName` (CreateBucket) |")
    w("")
    w("## Values of ❌ headers that pass")
    w("")
    if spec.harmless_header_values or spec.harmless_query_values:
        w("| Header / parameter | Passing values |")
        w("| --- | --- |")
        for name, values in spec.harmless_header_values.items():
            w(f"| `{name}` | " + ", ".join(f"`{v}`" for v in values) + " |")
        for name, values in spec.harmless_query_values.items():
            w(f"| `?{name}` | " + ", ".join(f"`{v}`" for v in values) + " |")
    else:
        w("None.")
    w("")
    w("Any other ❌ header or parameter is refused whatever its value, an empty one included.")
    w("")
    if spec.common_request_headers:
        w("## Common request headers")
        w("")
        for f in spec.common_request_headers:
            w(f"- {_feature(f)}")
        w("")
    if spec.bridged:
        w("## Refused by the provider, accepted by the gateway")
        w("")
        w("Reported in the readiness report (`/report`), never refused: "
          + ", ".join(f"`{b}`" for b in spec.bridged) + ".")
        w("")
    if spec.strip_response_headers:
        w("## Response headers not sent")
        w("")
        w(", ".join(f"`{h}`" for h in spec.strip_response_headers))
        w("")
    titles = {SERVICE: "Service-level operations", BUCKET: "Bucket-level operations", OBJECT: "Object-level operations"}
    for level in (SERVICE, BUCKET, OBJECT):
        names = [n for n in ops if level_of(n) == level]
        names = [n for n in names if ops[n].implemented] + sorted(n for n in names if not ops[n].implemented)
        w(f"## {titles[level]}")
        w("")
        w("| Operation | | Features |")
        w("| --- | --- | --- |")
        for n in names:
            op = ops[n]
            cells = [_feature(f) for f in op.features]
            if op.strip_response_headers:
                cells.append("response headers not sent: " + ", ".join(f"`{h}`" for h in op.strip_response_headers))
            if op.note:
                cells.append(_cell(op.note))
            w(f"| {n} | {_YES if op.implemented else _NO} | {'<br>'.join(cells)} |")
        w("")
    w("## Deprecated operation names")
    w("")
    w("These share their request with a current operation and are answered as that one "
      "(a provider's table may mark the old name differently: the request cannot tell them apart):")
    w("")
    for old, new in ALIASES.items():
        w(f"- {old} → {new} ({_YES if ops[new].implemented else _NO})")
    return "\n".join(out) + "\n"


def render_json(profile: Profile) -> str:
    data = profile.spec.model_dump(mode="json", by_alias=True, exclude={"groups"})
    for name, op in data["operations"].items():
        op["level"] = level_of(name)
    data["aliases"] = dict(ALIASES)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    names = [a for a in args if a != "--json"] or ["r2"]
    profile = load_profile(names[0])
    sys.stdout.write(render_json(profile) if as_json else render_markdown(profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
