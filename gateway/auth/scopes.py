"""What a temporary credential may do (R2's scoping model), checked before anything is forwarded.

A credential never exceeds its parent key: a request must be allowed to the parent (its permission
level and buckets, :mod:`.keys`) *and* to the credential:

- **bucket**: exactly the one bucket of the token, also as a copy's source; service-level requests
  (ListBuckets) are refused;
- **scope**: one of R2's four levels, with the meaning a key of that level has (:mod:`.keys`);
- **actions**: when listed, only those S3 operations (R2 names ListObjects ``ListObjectsV1``);
  with a scope as well, both must allow the operation;
- **paths**: when ``prefixPaths`` or ``objectPaths`` name anything, every key the request touches
  must start with a listed prefix or be a listed object: the object itself, a copy's source,
  each ``<Key>`` of a DeleteObjects body; a listing (ListObjects, ListObjectsV2,
  ListObjectVersions, ListMultipartUploads) must have a ``prefix`` inside a listed prefix.
  Bucket-level requests that touch no key (GetBucketLocation, HeadBucket, …) are left to the scope.

Anything outside is ``AccessDenied``; nothing has been sent upstream when it is raised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

from .. import s3xml
from ..errors import S3Error
from .keys import Key

if TYPE_CHECKING:
    from ..exchange import Exchange

#: Operations whose ``prefix`` query parameter bounds the keys they list.
LISTINGS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"})


class CredentialRefused(S3Error):
    """A temporary credential that is not accepted, or a request beyond its scope: 403
    AccessDenied for the client, ``reason`` (a short fixed word) for the metrics."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__("AccessDenied")
        self.reason = reason


@dataclass(slots=True, frozen=True)
class Grant:
    """What a token's claims allow."""
    bucket: str
    scope: str | None                    # one of R2's four levels, or None (actions alone)
    actions: frozenset[str] | None       # gateway operation names, or None (the scope alone)
    prefixes: tuple[str, ...]
    objects: frozenset[str]
    expires: float                       # ``exp``, POSIX seconds
    audiences: frozenset[str]            # ``aud``, lowercase

    @property
    def limits_keys(self) -> bool:
        return bool(self.prefixes or self.objects)

    def allows_key(self, key: str) -> bool:
        return key in self.objects or any(key.startswith(p) for p in self.prefixes)

    def allows_listing(self, prefix: str) -> bool:
        return any(prefix.startswith(p) for p in self.prefixes)


class TemporaryCredential:
    """A verified session token: the key a request signed with it is authorised as. It answers
    what :class:`~.keys.Key` answers (``authorize``, ``sees_bucket``, ``access_key_id`` — the
    parent's, as R2 reuses it), and checks the keys a request touches (``check_keys``)."""

    __slots__ = ("parent", "grant", "secret_access_key", "_refuse", "_scope_key", "limits_keys")
    kind: ClassVar[str] = "temporary"

    def __init__(self, parent: Key, grant: Grant, secret_access_key: str,
                 refuse: Callable[[str], CredentialRefused]) -> None:
        self.parent = parent
        self.grant = grant
        self.secret_access_key = secret_access_key
        self._refuse = refuse
        self._scope_key = Key(parent.access_key_id, "", grant.scope) if grant.scope is not None else None
        self.limits_keys = grant.limits_keys

    def __repr__(self) -> str:
        return f"TemporaryCredential({self.parent.access_key_id!r}, {self.grant.bucket!r}, {self.grant.scope!r})"

    @property
    def access_key_id(self) -> str:
        return self.parent.access_key_id

    @property
    def permission(self) -> str:
        return self.grant.scope or self.parent.permission

    def secret_for(self, access_key_id: str) -> str | None:
        """The derived secret, for the parent's access key id only (what SigV4 verifies with)."""
        return self.secret_access_key if access_key_id == self.parent.access_key_id else None

    def sees_bucket(self, bucket: str) -> bool:
        return bucket == self.grant.bucket and self.parent.sees_bucket(bucket)

    def authorize(self, op: str, bucket: str | None, copy_source_bucket: str | None = None,
                  creates_bucket: bool = False) -> None:
        """Raise AccessDenied unless both the parent and this credential allow ``op`` on ``bucket``."""
        grant = self.grant
        if bucket != grant.bucket or (copy_source_bucket is not None and copy_source_bucket != grant.bucket):
            raise self._refuse("bucket")
        try:
            self.parent.authorize(op, bucket, copy_source_bucket, creates_bucket)
        except S3Error:
            raise self._refuse("parent") from None
        if grant.actions is not None and op not in grant.actions:
            raise self._refuse("action")
        if self._scope_key is not None:
            try:
                self._scope_key.authorize(op, bucket, copy_source_bucket, creates_bucket)
            except S3Error:
                raise self._refuse("scope") from None

    def check_keys(self, ex: "Exchange") -> None:
        """Every key ``ex`` touches is inside the credential's paths (called once the request's
        XML body, if any, has been read: DeleteObjects names its keys there)."""
        grant = self.grant
        op = ex.op
        if op in LISTINGS and not grant.allows_listing(ex.query.get("prefix", "")):
            raise self._refuse("path")
        if ex.key is not None and not grant.allows_key(ex.key):
            raise self._refuse("path")
        if "x-amz-copy-source" in ex.headers and not grant.allows_key(ex.copy_source()[1]):
            raise self._refuse("path")
        if op == "DeleteObjects" and isinstance(ex.body, bytes) and ex.body.strip():
            keys = delete_keys(ex.body)
            if keys is None or not all(grant.allows_key(key) for key in keys):
                raise self._refuse("path")


def delete_keys(body: bytes) -> list[str] | None:
    """Every ``<Key>`` of a DeleteObjects document, wherever it is (a superset of what any parser
    reads as the objects to delete); None if a ``<Key>`` has elements inside (parsers differ on
    its text)."""
    keys = []
    for el in s3xml.parse(body, limit=max(len(body), 1)).iter():
        if isinstance(el.tag, str) and s3xml.local(el.tag) == "Key":
            if len(el):
                return None
            keys.append(el.text or "")
    return keys
