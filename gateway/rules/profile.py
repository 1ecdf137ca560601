"""Load and validate a compatibility profile (``config/profiles/<name>.yaml``).

A profile is the compatibility table of one provider as data: every S3 operation (exactly the names
of :data:`gateway.operations.OPERATIONS`) marked implemented or not, and for each implemented one
the request headers and query parameters the provider's table marks ✅ or ❌, grouped as the table
groups them. Beside the operations: storage classes (and their upstream names), the checksum
algorithm × type matrix, limits, the values of ❌ headers that pass as harmless defaults, headers
common to every request, response headers to strip, and the provider's extensions.

Validation (pydantic v2, ``extra="forbid"``) names the bad key. On load the table is compiled into
one :class:`OpRules` per operation, so :func:`gateway.rules.enforce.check` does a dict lookup or two
for an ordinary request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..operations import ALIASES, METADATA_OPERATIONS, OBJECT, OPERATION_INFO, OPERATIONS, level_of

# shipped as package data (config/profiles in the repository is a link to it)
PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"

CHECKSUM_ALGORITHMS = frozenset({"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "SHA512", "MD5",
                                 "XXHASH64", "XXHASH3", "XXHASH128"})
EXTENSIONS = frozenset({
    "unicode_metadata",             # x-amz-meta-* values RFC 2047-decoded; limit on the decoded value
    "create_bucket_if_missing",     # cf-create-bucket-if-missing on PutObject / CreateMultipartUpload
    "conditional_put",              # If-Match / If-None-Match / If-(Un)Modified-Since on PutObject
    "merge_metadata_directive",     # x-amz-metadata-directive: MERGE on CopyObject
    "list_buckets_pagination",      # ListBuckets prefix/start-after/continuation-token/max-keys, cf-* headers
    "copy_destination_conditions",  # cf-copy-destination-if-* on CopyObject
})

_HEADER = re.compile(r"^[a-z0-9][a-z0-9-]*\*?$")


class ProfileError(ValueError):
    """A profile that does not load: the message names the file and the bad key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Model):
    """One row group of a provider's table: "❌ ACL: x-amz-acl, x-amz-grant-read, …"."""

    group: str
    supported: bool
    headers: tuple[str, ...] = ()          # lowercase; "prefix-*" matches every header so named
    query: tuple[str, ...] = ()            # query parameter names, as sent
    form_fields: tuple[str, ...] = ()      # PostObject form fields (checked by its handler)
    body: tuple[str, ...] = ()             # request XML elements (checked by the operation's handler)
    values: tuple[str, ...] | None = None  # allowed values of the body/form items, if the table says
    value_range: tuple[int, int] | None = None  # allowed integer range of the body/form items
    note: str | None = None
    extension: bool = False                # from the provider's extensions page, not the S3 table

    @field_validator("headers")
    @classmethod
    def _lowercase_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not _HEADER.match(name):
                raise ValueError(f"header {name!r}: write header names in lowercase ([a-z0-9-], optional trailing *)")
        return v


class Operation(_Model):
    implemented: bool
    note: str | None = None
    features: tuple[Feature, ...] = ()
    strip_response_headers: tuple[str, ...] = ()


class BucketName(_Model):
    min_length: int = Field(ge=1)
    max_length: int = Field(ge=1)
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        re.compile(v)
        return v


class Limits(_Model):
    max_key_bytes: int = Field(gt=0)
    key_error: Literal["KeyTooLongError", "InvalidObjectName"]
    max_metadata_bytes: int = Field(gt=0)
    max_put_object_bytes: int | None = Field(default=None, gt=0)
    max_object_bytes: int | None = Field(default=None, gt=0)
    max_parts: int | None = Field(default=None, gt=0)
    min_part_bytes: int | None = Field(default=None, gt=0)
    # R2: every part but the last has the same size, or CompleteMultipartUpload is InvalidPart
    uniform_parts: bool = False
    bucket_name: BucketName
    # R2: about one write per second to the same key (429 TooManyRequests beyond). Observed and
    # reported (gateway/report/detect.py); refused only with the gateway setting
    # limits.key_write_limit, per gateway process (gateway/rules/keys.py).
    min_write_interval_seconds: float | None = Field(default=None, gt=0)
    # R2: keys are Unicode-normalised (NFC); two keys differing only in form name one object. The
    # gateway normalises keys on the way in (gateway/rules/keys.py); a client using both forms of a
    # key is reported too (gateway/report/detect.py).
    key_normalization: Literal["NFC"] | None = None


class Region(_Model):
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class OpRules:
    """What check() needs for one operation, compiled from the profile."""

    implemented: bool
    # ❌ headers: (name, values that pass, lowercased); prefixes for "name-*" entries
    refuse_headers: tuple[tuple[str, frozenset[str]], ...] = ()
    refuse_prefixes: tuple[tuple[str, frozenset[str]], ...] = ()
    any_prefix: tuple[str, ...] = ()  # the prefixes alone, for one str.startswith(tuple)
    refuse_query: tuple[tuple[str, frozenset[str]], ...] = ()
    refused_names: frozenset[str] = frozenset()  # exact ❌ header names (the generic checks skip them)
    storage_class: bool = False   # x-amz-storage-class is ✅: its value must be an allowed class
    scan: bool = False            # walk the headers (bodies: checksums, metadata; ❌ prefixes)
    metadata: bool = False        # x-amz-meta-* size limit applies
    object_level: bool = False    # key length limit applies


class ProfileSpec(_Model):
    """The profile file's schema."""

    schema_version: Literal[1] = Field(alias="schema")
    name: str
    title: str
    sources: tuple[str, ...]
    region: Region | None = None
    extensions: tuple[str, ...] = ()
    storage_classes: tuple[str, ...] = Field(min_length=1)
    storage_class_map: dict[str, str]
    storage_class_error: Literal["NotImplemented", "InvalidStorageClass"]
    checksums: dict[str, tuple[Literal["FULL_OBJECT", "COMPOSITE"], ...]]
    limits: Limits
    harmless_header_values: dict[str, tuple[str, ...]] = {}
    harmless_query_values: dict[str, tuple[str, ...]] = {}
    common_request_headers: tuple[Feature, ...] = ()
    strip_response_headers: tuple[str, ...] = ()
    # what the provider itself refuses and the gateway accepts (reported as readiness findings,
    # never refused): aws-chunked, the streaming upload form the AWS SDKs use by default
    bridged: tuple[Literal["aws-chunked"], ...] = ()
    # row groups shared by several operations, written once and referenced with YAML aliases
    groups: dict[str, Feature] = {}
    operations: dict[str, Operation]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("operations")
    @classmethod
    def _every_operation(cls, ops: dict[str, Operation]) -> dict[str, Operation]:
        problems = []
        for name in sorted(ops.keys() - OPERATIONS):
            hint = f" (a deprecated alias of {ALIASES[name]}: list that one)" if name in ALIASES else ""
            problems.append(f"unknown operation {name!r}{hint}")
        missing = sorted(OPERATIONS - ops.keys())
        if missing:
            problems.append("missing operation(s): " + ", ".join(missing))
        if problems:
            raise ValueError("; ".join(problems))
        return ops

    @field_validator("extensions")
    @classmethod
    def _known_extensions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - EXTENSIONS)
        if unknown:
            raise ValueError(f"unknown extension(s) {unknown}; known: {sorted(EXTENSIONS)}")
        return v

    @field_validator("checksums")
    @classmethod
    def _known_algorithms(cls, v: dict) -> dict:
        unknown = sorted(set(v) - CHECKSUM_ALGORITHMS)
        if unknown:
            raise ValueError(f"unknown checksum algorithm(s) {unknown}; known: {sorted(CHECKSUM_ALGORITHMS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ProfileSpec":
        unknown = sorted(set(self.storage_class_map) - set(self.storage_classes))
        if unknown:
            raise ValueError(f"storage_class_map: {unknown} not in storage_classes")
        refused: set[str] = set()
        for where, features in [("common_request_headers", self.common_request_headers),
                                *((f"operations.{n}", o.features) for n, o in self.operations.items())]:
            ok = {h for f in features if f.supported for h in f.headers}
            no = {h for f in features if not f.supported for h in f.headers}
            both = sorted(ok & no)
            if both:
                raise ValueError(f"{where}: header(s) {both} marked both supported and not supported")
            refused |= no
        dead = sorted(set(self.harmless_header_values) - refused)
        if dead:
            raise ValueError(f"harmless_header_values: {dead} not marked ❌ anywhere (nothing to let pass)")
        refused_q = {q for o in self.operations.values() for f in o.features if not f.supported for q in f.query}
        dead = sorted(set(self.harmless_query_values) - refused_q)
        if dead:
            raise ValueError(f"harmless_query_values: {dead} not marked ❌ anywhere (nothing to let pass)")
        return self


def _compile(spec: ProfileSpec) -> dict[str, OpRules]:
    harmless_h = {k: frozenset(x.strip().lower() for x in v) for k, v in spec.harmless_header_values.items()}
    harmless_q = {k: frozenset(x.strip().lower() for x in v) for k, v in spec.harmless_query_values.items()}
    none: frozenset[str] = frozenset()
    rules: dict[str, OpRules] = {}
    for name, op in spec.operations.items():
        if not op.implemented:
            rules[name] = OpRules(implemented=False)
            continue
        features = (*spec.common_request_headers, *op.features)
        refused = [h for f in features if not f.supported for h in f.headers]
        exact = tuple(dict.fromkeys(h for h in refused if not h.endswith("*")))
        prefixes = tuple(dict.fromkeys(h[:-1] for h in refused if h.endswith("*")))
        query = tuple(dict.fromkeys(q for f in features if not f.supported for q in f.query))
        methods = {m for m, _ in OPERATION_INFO[name]}
        rules[name] = OpRules(
            implemented=True,
            refuse_headers=tuple((h, harmless_h.get(h, none)) for h in exact),
            refuse_prefixes=tuple((p, harmless_h.get(p + "*", none)) for p in prefixes),
            any_prefix=prefixes,
            refuse_query=tuple((q, harmless_q.get(q, none)) for q in query),
            refused_names=frozenset(exact),
            storage_class=any(f.supported and "x-amz-storage-class" in f.headers for f in features),
            scan=bool(prefixes) or bool(methods & {"PUT", "POST"}),
            metadata=name in METADATA_OPERATIONS,
            object_level=level_of(name) == OBJECT,
        )
    return rules


class Profile:
    """A validated profile, compiled for the hot path. The file's fields are on ``spec`` and, for
    reading, on the profile itself (``profile.operations`` is ``profile.spec.operations``)."""

    __slots__ = ("spec", "name", "extension_set", "checksums", "limits", "storage_class_set",
                 "storage_class_error", "op_rules", "_bucket_re", "_strip")

    def __init__(self, spec: ProfileSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.extension_set = frozenset(spec.extensions)
        self.checksums = spec.checksums
        self.limits = spec.limits
        self.storage_class_set = frozenset(spec.storage_classes)
        self.storage_class_error = spec.storage_class_error
        self.op_rules = _compile(spec)
        self._bucket_re = re.compile(spec.limits.bucket_name.pattern)
        self._strip: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        for name, op in spec.operations.items():
            strip = (*spec.strip_response_headers, *op.strip_response_headers)
            self._strip[name] = (frozenset(s for s in strip if not s.endswith("*")),
                                 tuple(s[:-1] for s in strip if s.endswith("*")))

    def __getattr__(self, name: str):
        # only reached for what is not a slot: the file's other fields
        if name == "spec":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.spec, name)

    def __repr__(self) -> str:
        return f"<Profile {self.name}>"

    def rules(self, op: str) -> OpRules | None:
        return self.op_rules.get(op)

    @property
    def session_tokens(self) -> bool:
        """Whether the provider reads ``X-Amz-Security-Token`` (temporary credentials): not when its
        table marks the header ❌ among the common request headers."""
        return not any(not f.supported and "x-amz-security-token" in f.headers
                       for f in self.spec.common_request_headers)

    def implemented(self, op: str) -> bool:
        r = self.op_rules.get(op)
        return r is not None and r.implemented

    def valid_bucket_name(self, name: str) -> bool:
        b = self.limits.bucket_name
        return b.min_length <= len(name) <= b.max_length and self._bucket_re.fullmatch(name) is not None

    def response_headers_to_strip(self, op: str) -> tuple[frozenset[str], tuple[str, ...]]:
        """(exact names, name prefixes) of response headers this provider does not send for ``op``;
        the response stage drops the upstream's headers that match."""
        return self._strip.get(op, (frozenset(), ()))

    # -- storage classes ---------------------------------------------------------------------------
    def upstream_storage_class(self, client_class: str) -> str:
        """The upstream's name for a storage class the client asked for (identity if unmapped)."""
        return self.spec.storage_class_map.get(client_class, client_class)

    def client_storage_class(self, upstream_class: str) -> str:
        """The client's name for a storage class the upstream reported (first mapping wins)."""
        for client, upstream in self.spec.storage_class_map.items():
            if upstream == upstream_class:
                return client
        return upstream_class

    def with_storage_class_map(self, mapping: dict[str, str]) -> "Profile":
        """This profile with ``mapping`` laid over its storage_class_map (the gateway config's hook)."""
        data = self.spec.model_dump(by_alias=True)
        data["storage_class_map"] = {**self.spec.storage_class_map, **mapping}
        try:
            return Profile(ProfileSpec.model_validate(data))
        except ValidationError as e:
            raise ProfileError(f"profile {self.name!r}: {_explain(e)}") from None


# -- loading ---------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ProfileError(f"line {key_node.start_mark.line + 1}: key {key!r} given twice "
                                   f"(first on line {seen[key] + 1})")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)



def _explain(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def profile_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.is_absolute() or p.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return p
    return PROFILES_DIR / f"{name_or_path}.yaml"


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (``r2`` → config/profiles/r2.yaml) or by path. Raises ProfileError."""
    path = profile_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"no profile {name_or_path!r} ({path}); known: {', '.join(list_profiles())}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except ProfileError as e:
        raise ProfileError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile is a mapping")
    try:
        return Profile(ProfileSpec.model_validate(data))
    except ValidationError as e:
        raise ProfileError(f"{path}: {_explain(e)}") from None
