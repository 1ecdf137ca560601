"""Method + bucket + key + query + headers → the S3 operation's name, as the S3 API reference spells it.

The classifier is a table: ``TABLE[(method, level)]`` is an ordered list of ``(subresource, target)``
pairs, first one the most specific. ``subresource`` is a query-parameter name whose *presence*
selects the operation (``?tagging``, ``?uploadId=…``); ``None`` is the plain operation of that
method and level. A target is an operation name, or a small rule (:class:`_Pick`) that looks at one
more query parameter or header (``?analytics&id=…`` is Get…, ``?analytics`` alone is List…;
``x-amz-copy-source`` turns PutObject into CopyObject), or a refusal (:class:`_Refuse`).

Decisions:
- A request the table cannot name is refused, never forwarded: :func:`classify` raises
  ``S3Error("MethodNotAllowed")`` (405, with ``Method`` and ``ResourceType`` as AWS sends them).
  A sentinel name such as ``"UnknownPOST"`` could be forwarded by a caller in audit or off mode; an
  exception cannot be ignored by accident.
- Query parameters that are not subresources (``prefix``, ``versionId``, ``partNumber`` on GET,
  ``x-id`` that the JS SDK adds, presigned-URL parameters, …) never change the operation.
- A known subresource in the wrong place (``DELETE /b?versioning``, ``GET /b/k?cors``) is refused:
  falling through to the plain operation would turn it into DeleteBucket or GetObject.
- ``PUT /b/k?uploadId=…`` without ``partNumber`` (or ``partNumber`` without ``uploadId``), a
  ``list-type`` other than 2, and ``?select`` without ``select-type=2`` are refused with
  ``InvalidArgument``: the upstream could read them as something else.
- ``OPTIONS`` on a bucket or object is ``OptionsObject`` (the CORS preflight, "OPTIONS object" in
  the S3 REST reference), whatever its query: a browser's preflight carries the query of the
  request it asks about.
- ``WriteGetObjectResponse`` is recognised by its required ``x-amz-request-route`` header, so it is
  named whether the addressing parsed its path as a bucket or as a key.
- Deprecated operations that share their request with a current one (GetBucketLifecycle, …) are
  not separate names: see :data:`ALIASES`.
- A bucket with an empty key (``/bucket/``) is bucket level; ``bucket is None`` is service level.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

from .errors import S3Error

SERVICE, BUCKET, OBJECT = "service", "bucket", "object"
_RESOURCE_TYPE = {SERVICE: "SERVICE", BUCKET: "BUCKET", OBJECT: "OBJECT"}

Query = Mapping[str, str]
Headers = Mapping[str, str]


class _Pick:
    """Choose between two targets with one more test on the query or the headers."""

    __slots__ = ("test", "yes", "no")

    def __init__(self, test: Callable[[Query, Headers], bool], yes: "Target", no: "Target") -> None:
        self.test, self.yes, self.no = test, yes, no

    def __call__(self, query: Query, headers: Headers) -> str:
        t = self.yes if self.test(query, headers) else self.no
        return t if t.__class__ is str else t(query, headers)

    def names(self) -> set[str]:
        return _names(self.yes) | _names(self.no)


class _Refuse:
    """A request that has a shape but no name: answered with an error, never forwarded."""

    __slots__ = ("code", "message", "fields")

    def __init__(self, code: str, message: str | None = None, **fields: str) -> None:
        self.code, self.message, self.fields = code, message, fields

    def __call__(self, query: Query, headers: Headers) -> str:
        raise S3Error(self.code, self.message, **self.fields)


Target = Union[str, _Pick, _Refuse]


def _names(t: Target) -> set[str]:
    if isinstance(t, str):
        return {t}
    return t.names() if isinstance(t, _Pick) else set()


# -- tests a _Pick can make ------------------------------------------------------------------------
def _query_has(name: str) -> Callable[[Query, Headers], bool]:
    return lambda q, h: name in q


def _query_is(name: str, value: str) -> Callable[[Query, Headers], bool]:
    return lambda q, h: q.get(name) == value


def _header_has(name: str) -> Callable[[Query, Headers], bool]:
    return lambda q, h: name in h


def _is_form_upload(q: Query, h: Headers) -> bool:
    return h.get("content-type", "").lower().startswith("multipart/form-data")


def _if_query(name: str, yes: Target, no: Target) -> _Pick:
    return _Pick(_query_has(name), yes, no)


def _if_header(name: str, yes: Target, no: Target) -> _Pick:
    return _Pick(_header_has(name), yes, no)


def _bad_argument(message: str) -> _Refuse:
    return _Refuse("InvalidArgument", message)


# Bucket configuration subresources that have a Get, a Put and often a Delete.
_BUCKET_CONFIG = (
    # subresource, Get…, Put…, Delete… (None: no such operation)
    ("accelerate", "GetBucketAccelerateConfiguration", "PutBucketAccelerateConfiguration", None),
    ("acl", "GetBucketAcl", "PutBucketAcl", None),
    ("cors", "GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
    ("encryption", "GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption"),
    ("lifecycle", "GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle"),
    ("logging", "GetBucketLogging", "PutBucketLogging", None),
    ("notification", "GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration", None),
    ("object-lock", "GetObjectLockConfiguration", "PutObjectLockConfiguration", None),
    ("ownershipControls", "GetBucketOwnershipControls", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls"),
    ("policy", "GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    ("policyStatus", "GetBucketPolicyStatus", None, None),
    ("publicAccessBlock", "GetPublicAccessBlock", "PutPublicAccessBlock", "DeletePublicAccessBlock"),
    ("replication", "GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication"),
    ("requestPayment", "GetBucketRequestPayment", "PutBucketRequestPayment", None),
    ("tagging", "GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
    ("versioning", "GetBucketVersioning", "PutBucketVersioning", None),
    ("website", "GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    ("abac", "GetBucketAbac", "PutBucketAbac", None),
    ("metadataConfiguration", "GetBucketMetadataConfiguration", None, "DeleteBucketMetadataConfiguration"),
    ("metadataTable", "GetBucketMetadataTableConfiguration", None, "DeleteBucketMetadataTableConfiguration"),
)
# Configurations addressed by ?<name>&id=…: GET with id is Get…, GET without is List….
_BUCKET_ID_CONFIG = (
    ("analytics", "Analytics"),
    ("intelligent-tiering", "IntelligentTiering"),
    ("inventory", "Inventory"),
    ("metrics", "Metrics"),
)

_WGOR = "WriteGetObjectResponse"

TABLE: dict[tuple[str, str], list[tuple[str | None, Target]]] = {
    ("GET", SERVICE): [
        ("max-directory-buckets", "ListDirectoryBuckets"),
        (None, "ListBuckets"),
    ],
    ("GET", BUCKET): [
        *[(sub, get) for sub, get, _, _ in _BUCKET_CONFIG if get],
        *[(sub, _if_query("id", f"GetBucket{n}Configuration", f"ListBucket{n}Configurations"))
          for sub, n in _BUCKET_ID_CONFIG],
        ("location", "GetBucketLocation"),
        ("session", "CreateSession"),
        ("uploads", "ListMultipartUploads"),
        ("versions", "ListObjectVersions"),
        ("list-type", _Pick(_query_is("list-type", "2"), "ListObjectsV2",
                            _bad_argument("Invalid List Type specified; only list-type=2 is supported."))),
        (None, "ListObjects"),
    ],
    ("PUT", BUCKET): [
        *[(sub, put) for sub, _, put, _ in _BUCKET_CONFIG if put],
        *[(sub, f"PutBucket{n}Configuration") for sub, n in _BUCKET_ID_CONFIG],
        ("metadataAnnotationTable", "UpdateBucketMetadataAnnotationTableConfiguration"),
        ("metadataInventoryTable", "UpdateBucketMetadataInventoryTableConfiguration"),
        ("metadataJournalTable", "UpdateBucketMetadataJournalTableConfiguration"),
        (None, "CreateBucket"),
    ],
    ("DELETE", BUCKET): [
        *[(sub, delete) for sub, _, _, delete in _BUCKET_CONFIG if delete],
        *[(sub, f"DeleteBucket{n}Configuration") for sub, n in _BUCKET_ID_CONFIG],
        (None, "DeleteBucket"),
    ],
    ("POST", BUCKET): [
        ("delete", "DeleteObjects"),
        ("metadataConfiguration", "CreateBucketMetadataConfiguration"),
        ("metadataTable", "CreateBucketMetadataTableConfiguration"),
        (None, _if_header("x-amz-request-route", _WGOR,
                          _Pick(_is_form_upload, "PostObject",
                                _Refuse("MethodNotAllowed", Method="POST", ResourceType="BUCKET")))),
    ],
    ("HEAD", BUCKET): [(None, "HeadBucket")],
    ("OPTIONS", BUCKET): [(None, "OptionsObject")],
    ("GET", OBJECT): [
        ("uploadId", "ListParts"),
        ("acl", "GetObjectAcl"),
        ("attributes", "GetObjectAttributes"),
        ("legal-hold", "GetObjectLegalHold"),
        ("retention", "GetObjectRetention"),
        ("tagging", "GetObjectTagging"),
        ("torrent", "GetObjectTorrent"),
        ("annotation", _if_query("annotationName", "GetObjectAnnotation", "ListObjectAnnotations")),
        (None, "GetObject"),
    ],
    ("PUT", OBJECT): [
        ("uploadId", _if_query("partNumber", _if_header("x-amz-copy-source", "UploadPartCopy", "UploadPart"),
                               _bad_argument("A part upload needs both partNumber and uploadId."))),
        ("partNumber", _bad_argument("A part upload needs both partNumber and uploadId.")),
        ("acl", "PutObjectAcl"),
        ("legal-hold", "PutObjectLegalHold"),
        ("retention", "PutObjectRetention"),
        ("tagging", "PutObjectTagging"),
        ("annotation", "PutObjectAnnotation"),
        ("renameObject", "RenameObject"),
        ("encryption", "UpdateObjectEncryption"),
        (None, _if_header("x-amz-copy-source", "CopyObject", "PutObject")),
    ],
    ("DELETE", OBJECT): [
        ("uploadId", "AbortMultipartUpload"),
        ("tagging", "DeleteObjectTagging"),
        ("annotation", "DeleteObjectAnnotation"),
        (None, "DeleteObject"),
    ],
    ("POST", OBJECT): [
        ("uploadId", "CompleteMultipartUpload"),
        ("uploads", "CreateMultipartUpload"),
        ("restore", "RestoreObject"),
        ("select", _Pick(_query_is("select-type", "2"), "SelectObjectContent",
                         _bad_argument("SelectObjectContent needs select-type=2."))),
        (None, _if_header("x-amz-request-route", _WGOR,
                          _Refuse("MethodNotAllowed", Method="POST", ResourceType="OBJECT"))),
    ],
    ("HEAD", OBJECT): [(None, "HeadObject")],
    ("OPTIONS", OBJECT): [(None, "OptionsObject")],
}

# Deprecated operation names whose request is byte-for-byte the one of a current operation; the
# classifier answers with the current name, and profiles list only the current one.
ALIASES: dict[str, str] = {
    "GetBucketLifecycle": "GetBucketLifecycleConfiguration",
    "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
    "GetBucketNotification": "GetBucketNotificationConfiguration",
    "PutBucketNotification": "PutBucketNotificationConfiguration",
}

# Query names that select a subresource somewhere. Present where the (method, level) has no use
# for them, they make the request unnamable (refused), instead of falling through to the plain op.
# Ordinary parameters that some operation also reads (partNumber, list-type, id, versionId, …) are
# not in this set.
SUBRESOURCES: frozenset[str] = frozenset(
    sub for entries in TABLE.values() for sub, _ in entries
    if sub is not None and sub not in ("list-type", "partNumber", "max-directory-buckets"))


def _operation_info() -> dict[str, tuple[tuple[str, str], ...]]:
    info: dict[str, set[tuple[str, str]]] = {}
    for (method, level), entries in TABLE.items():
        for _, target in entries:
            for name in _names(target):
                info.setdefault(name, set()).add((method, level))
    return {name: tuple(sorted(where)) for name, where in sorted(info.items())}


# name → the (method, level) pairs that reach it; e.g. "GetObjectTagging" → (("GET", "object"),)
OPERATION_INFO: dict[str, tuple[tuple[str, str], ...]] = _operation_info()
# Every name classify() can return. A profile must list exactly these.
OPERATIONS: frozenset[str] = frozenset(OPERATION_INFO)


# Operations whose request carries user metadata (x-amz-meta-*) to store with the object.
METADATA_OPERATIONS: frozenset[str] = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})


def level_of(op: str) -> str:
    """``"service"``, ``"bucket"`` or ``"object"``: the level of the request that names ``op``."""
    return OPERATION_INFO[op][0][1]


# -- the hot path ----------------------------------------------------------------------------------
def _compile() -> dict[str, list[tuple[dict[str, tuple[int, Target]], Target] | None]]:
    """TABLE → {method: [per level: (subresource → (rank, target), default target) or None]}.

    Rank is the position in the ordered list (lower wins); a misplaced subresource has rank -1, so
    it wins over everything and the request is refused.
    """
    compiled: dict[str, list] = {}
    for (method, level), entries in TABLE.items():
        index: dict[str, tuple[int, Target]] = {}
        default: Target | None = None
        for rank, (sub, target) in enumerate(entries):
            if sub is None:
                default = target
            else:
                index.setdefault(sub, (rank, target))
        if method != "OPTIONS":
            refuse = _Refuse("MethodNotAllowed", Method=method, ResourceType=_RESOURCE_TYPE[level])
            for sub in SUBRESOURCES - index.keys():
                index[sub] = (-1, refuse)
        assert default is not None, (method, level)
        levels = compiled.setdefault(method, [None, None, None])
        levels[(SERVICE, BUCKET, OBJECT).index(level)] = (index, default)
    return compiled


_COMPILED = _compile()


def classify(method: str, bucket: str | None, key: str | None, query: Query, headers: Headers) -> str:
    """The operation's name. ``headers`` keys are lowercase; ``query`` maps raw parameter names to
    values (a bare ``?tagging`` has value ""). Raises S3Error for a request it cannot name."""
    level = 0 if not bucket else (2 if key else 1)
    levels = _COMPILED.get(method)
    if levels is None:
        upper = method.upper()
        levels = _COMPILED.get(upper) if upper != method else None
        if levels is None:
            raise S3Error("MethodNotAllowed", Method=method, ResourceType=("SERVICE", "BUCKET", "OBJECT")[level])
        method = upper
    entry = levels[level]
    if entry is None:
        raise S3Error("MethodNotAllowed", Method=method, ResourceType=("SERVICE", "BUCKET", "OBJECT")[level])
    index, target = entry
    if query:
        best = 1 << 30
        for name in query:
            hit = index.get(name)
            if hit is not None and hit[0] < best:
                best, target = hit
    if target.__class__ is str:
        return target
    return target(query, headers)
