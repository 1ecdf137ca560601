"""One settings model: a YAML file, then ``R2GW_*`` environment overrides, then secret files; validated.

Every key has exactly one environment name, derived from its path in the model:
``upstream.secret_access_key`` ↔ ``R2GW_UPSTREAM_SECRET_ACCESS_KEY``. A secret may instead be read
from a file named by the same variable with ``_FILE`` appended (Kubernetes Secret mounts), or by a
``*_file`` key in YAML; access key ids may come from files the same way. ``R2GW_ACCESS_KEY_ID`` / ``R2GW_SECRET_ACCESS_KEY`` add one client key with
full rights. Unknown keys are errors. pydantic was chosen because it is the maintained standard for
typed validation in Python and names the failing key in its errors.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

ENV_PREFIX = "R2GW_"

Permission = Literal["admin-read-write", "admin-read-only", "object-read-write", "object-read-only"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return value


class TLS(_Model):
    """Optional HTTPS listener (in addition to the plain one unless ``listen`` is empty)."""
    cert: Path | None = None
    key: Path | None = None
    listen: str = "127.0.0.1:8443"

    _check_listen = field_validator("listen")(lambda cls, v: _hostport(v))

    @model_validator(mode="after")
    def _both_or_none(self) -> "TLS":
        if (self.cert is None) != (self.key is None):
            raise ValueError("tls.cert and tls.key go together")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert is not None


class Timeouts(_Model):
    """Upstream timeouts in seconds."""
    connect: float = Field(5.0, gt=0)
    read: float = Field(300.0, gt=0)


class Upstream(_Model):
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    # what the upstream is, for the quirks the gateway absorbs: auto guesses from the Server header
    dialect: Literal["auto", "aws", "minio", "ceph", "moto"] = "auto"
    max_connections: int = Field(256, ge=1)
    # the HTTP client to the upstream: the gateway's own lean HTTP/1.1 client (default) or aiohttp's
    # (gateway/upstream/pool.py: same behaviour, less CPU per request)
    transport: Literal["lean", "aiohttp"] = "lean"
    verify_tls: bool = True
    # a bucket of the gateway's own on the upstream (hidden from clients), for the records of what
    # the store lacks (part sizes, storage classes, checksums: gateway/upstream/records.py). Bucket
    # names are shared by all the accounts of a store (all of AWS S3; all users of one RGW): two
    # stores that are accounts of one store need two names, and on AWS S3 a name of your own
    internal_bucket: str = Field("r2gw-internal", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    # the storage classes (upstream names) this store keeps; unset: STANDARD only on Ceph RGW and
    # MinIO (their default placement), every class elsewhere. A class the store lacks is kept by the
    # gateway: the object is stored in STANDARD and answered in its class.
    storage_classes: list[str] | None = None
    timeouts: Timeouts = Timeouts()
    # no keys: credentials from the AWS chain (environment, this profile of the shared config
    # files, web identity (IRSA), EKS Pod Identity / container, instance metadata), refreshed
    aws_profile: str | None = None

    @model_validator(mode="after")
    def _credentials(self) -> "Upstream":
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("access_key_id and secret_access_key go together (neither: the AWS credential chain)")
        if self.aws_profile and self.access_key_id:
            raise ValueError("aws_profile is for a store without keys (credentials from the AWS chain)")
        return self

    @property
    def uses_aws_chain(self) -> bool:
        return self.endpoint is not None and not self.access_key_id

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/]+/?$", v):
            raise ValueError("must be http(s)://host[:port] with no path")
        return v.rstrip("/") if v else v


class MigrateFrom(_Model):
    """Where a bucket's objects are copied from on first read (and by ``r2-gateway migrate``)."""
    upstream: str = Field(min_length=1)     # a store name: ``default`` or a key of ``upstreams``
    bucket: str | None = None               # default: the destination bucket's own name
    # ListObjects shows the destination only (as R2's Sippy), or ``merged``: the source's objects
    # not copied yet too, in one sorted listing
    list: Literal["destination", "merged"] = "destination"


class MigrateOnRead(_Model):
    """Copies made on first read that do not happen in the reading request itself (a Range GET, a
    large object, a client that hung up): a bounded queue served by a few background copies."""
    queue: int = Field(256, ge=0, le=100_000)          # waiting copies; more are dropped (next read retries)
    concurrency: int = Field(4, ge=1, le=256)          # background copies at once
    # objects up to this size are written in the reading request's own pass (the body the client
    # receives is streamed into the destination at the same time); larger ones in the background
    inline_max_bytes: int = Field(5 * 1024**3, ge=0, le=5 * 1024**3)
    # what such a copy may hold that the destination has not taken yet (the reader never waits for
    # the destination): per copy, and for all of them; beyond, the copy moves to the background
    inline_buffer_bytes: int = Field(64 * 1024**2, ge=1024**2)
    inline_memory_bytes: int = Field(256 * 1024**2, ge=1024**2)
    multipart_threshold_bytes: int = Field(64 * 1024**2, ge=5 * 1024**2)
    part_size_bytes: int = Field(16 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)


class BucketRoute(_Model):
    """One routing rule: buckets matching ``match`` (a name, or a glob: ``*``, ``?``, ``[...]``) live
    on store ``upstream``; rules are tried in order, the first match wins, no match is ``default``."""
    match: str = Field(min_length=1)
    upstream: str = "default"
    migrate_from: MigrateFrom | None = None


class ClientKey(_Model):
    access_key_id: str = Field(min_length=1)
    secret_access_key: SecretStr
    permission: Permission = "admin-read-write"
    # only the object-* permissions may be limited to buckets (R2's token model)
    buckets: list[str] | None = None

    @model_validator(mode="after")
    def _scoping(self) -> "ClientKey":
        if self.buckets is not None and not self.permission.startswith("object-"):
            raise ValueError("only object-read-write and object-read-only keys may list buckets")
        return self


class Limits(_Model):
    """The client side's limits (docs/security.md): one header field (and the request line), the
    whole header section and its number of fields; how long a head may take from connecting (or
    from the previous answer), how long a silent keep-alive connection stays, how long a client may
    pause sending a body or reading an answer; how many connections are served at once."""
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    max_header_section_bytes: int = Field(32 * 1024, ge=1024)
    max_header_fields: int = Field(100, ge=10)
    keepalive_timeout: float = Field(75.0, gt=0)
    client_read_timeout: float = Field(60.0, gt=0)
    client_send_timeout: float = Field(60.0, gt=0)
    max_connections: int = Field(4096, ge=1)
    max_xml_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    clock_skew_seconds: int = Field(900, ge=0)
    # enforce the profile's per-key write limit (R2: about 1 write/s to one key, 429 TooManyRequests),
    # counted by each gateway process on its own (gateway/rules/keys.py)
    key_write_limit: bool = False


class Metrics(_Model):
    enabled: bool = True
    # empty: serve /metrics on the main listener; host:port: a listener of its own
    listen: str = ""


class Report(_Model):
    """The readiness report (gateway/report/): findings kept in memory, served beside /metrics."""
    enabled: bool = True
    # where the findings are kept across restarts (written atomically, every save_seconds and at
    # shutdown); none: in memory only
    state_file: Path | None = None
    save_seconds: float = Field(60.0, gt=0)
    # rows kept (finding × operation × client key × user agent × bucket); beyond, rows fold into
    # one per finding and operation
    max_rows: int = Field(2000, ge=10, le=100_000)


_AUDIENCE = re.compile(r"([a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


class TemporaryCredentialsAPI(_Model):
    """Cloudflare's ``POST /accounts/{account_id}/r2/temp-access-credentials`` among the internal
    endpoints, for callers with the bearer ``token`` (or ``token_file``; ``R2GW_..._TOKEN_FILE``)."""
    enabled: bool = False
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _token(self) -> "TemporaryCredentialsAPI":
        if self.enabled and (self.token is None or len(self.token.get_secret_value()) < 16):
            raise ValueError("the endpoint needs a bearer token of at least 16 characters (token or token_file)")
        return self


class TemporaryCredentials(_Model):
    """R2's temporary credentials (session tokens derived from the keys, gateway/auth/temporary.py)."""
    # off: every request with a session token is refused
    enabled: bool = True
    # the gateway's host names (host[:port], as clients reach it) a token's aud must name one of;
    # empty: the host the request was sent to (and, virtual-hosted, its domain)
    audiences: list[str] = []
    # a token's sub must be this account id when set; minted tokens carry it
    account_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # verified tokens kept (each is verified with its JWT once, then until it expires from here)
    cache_size: int = Field(10000, ge=0, le=1_000_000)
    api: TemporaryCredentialsAPI = TemporaryCredentialsAPI()

    @field_validator("audiences")
    @classmethod
    def _audiences(cls, v: list[str]) -> list[str]:
        for a in v:
            if not _AUDIENCE.fullmatch(a.lower()):
                raise ValueError(f"{a!r}: an audience is a host name with an optional :port (no scheme, no path)")
        return [a.lower() for a in v]


class Settings(_Model):
    listen: str = "127.0.0.1:8080"
    tls: TLS = TLS()
    upstream: Upstream = Upstream()
    # more stores by name (same keys as ``upstream``); ``default`` names ``upstream`` itself
    upstreams: dict[str, Upstream] = {}
    # which store holds which bucket (gateway/routing.py)
    buckets: list[BucketRoute] = []
    migrate_on_read: MigrateOnRead = MigrateOnRead()
    # R2GW_ACCESS_KEY_ID / R2GW_SECRET_ACCESS_KEY: one client key with full rights
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    keys: list[ClientKey] = []
    profile: str = "r2"
    mode: Literal["enforce", "audit", "off"] = "enforce"
    # client storage class -> the upstream's, laid over the profile's storage_class_map
    # (e.g. {IA: STANDARD_IA}); R2GW_STORAGE_CLASS_MAP takes YAML/JSON: '{IA: STANDARD_IA}'
    storage_class_map: dict[str, str] = {}
    # base domains for virtual-hosted-style addressing: <bucket>.<domain>
    virtual_host_domains: list[str] = []
    limits: Limits = Limits()
    metrics: Metrics = Metrics()
    temporary_credentials: TemporaryCredentials = TemporaryCredentials()
    drain_timeout: float = Field(30.0, ge=0)
    workers: int = Field(1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # big GET bodies relayed socket to socket inside the kernel (Linux splice; plain TCP both ends)
    splice: bool = True
    # access lines are written in batches: at most this long after the first of a batch (0: at once)
    access_log_flush_seconds: float = Field(0.1, ge=0, le=10)
    # gateway: the gateway's own fields; r2: records shaped like R2's Data Access Logs (docs/observability.md)
    access_log_format: Literal["gateway", "r2"] = "gateway"
    report: Report = Report()
    # R2 billing preview: r2gw_r2_operations_total{bucket, class} (Class A / Class B operations)
    billing_metrics: bool = False

    _check_listen = field_validator("listen")(lambda cls, v: v if v == "" else _hostport(v))

    @model_validator(mode="after")
    def _keys(self) -> "Settings":
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        ids = [k.access_key_id for k in self.client_keys()]
        if len(ids) != len(set(ids)):
            raise ValueError("two client keys share an access_key_id")
        if (self.upstream.endpoint is None) and (self.upstream.access_key_id or self.upstream.secret_access_key
                                                 or self.upstream.aws_profile):
            raise ValueError("upstream credentials given without upstream.endpoint")
        return self

    @model_validator(mode="after")
    def _stores(self) -> "Settings":
        for name, up in self.upstreams.items():
            if name == "default" or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
                raise ValueError(f"upstreams.{name}: a store name is [a-z0-9_-] (and not 'default')")
            if up.endpoint is None:
                raise ValueError(f"upstreams.{name}.endpoint is required (only the default store may be embedded)")
        known = {"default", *self.upstreams}
        for i, rule in enumerate(self.buckets):
            if rule.upstream not in known:
                raise ValueError(f"buckets.{i}.upstream: no store named {rule.upstream!r}")
            source = rule.migrate_from
            if source is not None:
                if source.upstream not in known:
                    raise ValueError(f"buckets.{i}.migrate_from.upstream: no store named {source.upstream!r}")
                if source.upstream == rule.upstream and (source.bucket is None or source.bucket == rule.match):
                    raise ValueError(f"buckets.{i}.migrate_from: the source is the destination itself")
        return self

    def shared_internal_buckets(self) -> list[str]:
        """Warnings for stores on one endpoint, with other keys and one internal bucket: if the keys
        are two accounts (two RGW users; bucket names are theirs in common), the bucket is the
        first one's and the other's records are refused (403). Keys of one account (subusers, IAM
        users) share it rightly: a warning, never a refusal. Keyless stores are not compared."""
        seen: dict[tuple[str, str], tuple[str, str]] = {}
        out = []
        for name, up in (("default", self.upstream), *self.upstreams.items()):
            if up.endpoint is None or not up.access_key_id:
                continue
            where = (up.endpoint.rstrip("/").lower(), up.internal_bucket)
            other = seen.setdefault(where, (name, up.access_key_id))
            if other[1] != up.access_key_id:
                out.append(f"stores {other[0]!r} and {name!r} use other keys on {up.endpoint} with one internal "
                           f"bucket {up.internal_bucket!r}: if they are two accounts, give them their own "
                           f"internal_bucket (bucket names are shared)")
        return out

    def store(self, name: str) -> Upstream:
        """A store's settings by name (``default`` is ``upstream``)."""
        return self.upstream if name == "default" else self.upstreams[name]

    def client_keys(self) -> list[ClientKey]:
        keys = list(self.keys)
        if self.access_key_id and self.secret_access_key:
            keys.insert(0, ClientKey(access_key_id=self.access_key_id,
                                     secret_access_key=self.secret_access_key))
        return keys


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the key and why."""


def _leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_leaf_paths(ann, prefix + (name,)))
        else:
            out[prefix + (name,)] = field
    return out


def env_names() -> dict[str, tuple[str, ...]]:
    """Every environment variable the gateway reads → the config key it sets."""
    names = {ENV_PREFIX + "_".join(path).upper(): path for path in _leaf_paths(Settings)}
    return names


# settings that may be read from a file (a Kubernetes Secret mount): secrets and access key ids
_FILE_LEAVES = {path for path, f in _leaf_paths(Settings).items()
                if "SecretStr" in str(f.annotation) or path[-1] == "access_key_id"}


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = tree.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path)}: {part} is not a mapping")
        tree = node
    tree[path[-1]] = value


def _read_secret_file(key: str, path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise ConfigError(f"{key}: cannot read secret file {path}: {e.strerror}") from None


def _resolve_secret_files(tree: dict, prefix: tuple[str, ...] = ()) -> None:
    for k in list(tree):
        v = tree[k]
        if isinstance(v, dict):
            _resolve_secret_files(v, prefix + (k,))
        elif isinstance(v, list):
            for i, item in enumerate(v):
                if isinstance(item, dict):
                    _resolve_secret_files(item, prefix + (k, str(i)))
        elif k.endswith("_file") and k[:-5] in ("secret_access_key", "access_key_id", "token"):
            tree[k[:-5]] = _read_secret_file(".".join(prefix + (k,)), v)
            del tree[k]


def _yaml_env_value(path: tuple[str, ...], raw: str) -> Any:
    field = _leaf_paths(Settings)[path]
    if str(field.annotation).startswith("dict"):
        return yaml.safe_load(raw) if raw.strip() else {}
    if "list" in str(field.annotation):
        return [] if not raw.strip() else (yaml.safe_load(raw) if raw.lstrip().startswith("[") else
                                           [p.strip() for p in raw.split(",") if p.strip()])
    if raw == "" and "None" in str(field.annotation):
        return None
    return yaml.safe_load(raw) if field.annotation in (bool, int, float) else raw


def load(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), apply R2GW_* overrides and *_FILE secrets, validate."""
    environ = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"{path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        tree = loaded or {}
    _resolve_secret_files(tree)
    names = env_names()
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        if name.endswith("_FILE") and name[:-5] in names and names[name[:-5]] in _FILE_LEAVES:
            _set(tree, names[name[:-5]], _read_secret_file(name, value))
        elif name in names:
            _set(tree, names[name], _yaml_env_value(names[name], value))
        elif name.endswith("_FILE") and name[:-5] in names:
            raise ConfigError(f"{name}: only secrets and access key ids may be read from files")
        else:
            raise ConfigError(f"{name}: unknown setting (known: see `r2-gateway check-config --env`)")
    try:
        return Settings.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from None


def _describe(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{loc}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
