"""Client keys and R2's API-token permission model: admin/object × read-write/read-only, buckets.

- admin-read-write: every operation.
- admin-read-only: every read operation (Get*/Head*/List*), on every bucket.
- object-read-write: object operations (read and write) and bucket listings, optionally on chosen
  buckets only; no bucket administration (create/delete bucket, CORS, lifecycle, …).
- object-read-only: object reads and listings, optionally on chosen buckets only.
The copy source of CopyObject/UploadPartCopy is authorised as a read of the source bucket.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import S3Error

# operations an object-* key may use (besides ListBuckets, which it sees filtered)
OBJECT_OPERATIONS = frozenset({
    "GetObject", "HeadObject", "PutObject", "DeleteObject", "DeleteObjects", "CopyObject",
    "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload",
    "AbortMultipartUpload", "ListMultipartUploads", "ListParts", "ListObjects", "ListObjectsV2",
    "HeadBucket", "GetBucketLocation", "PostObject", "RestoreObject", "GetObjectAttributes",
    "ListObjectVersions", "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging",
    "GetObjectAcl", "PutObjectAcl",
})
_READ_PREFIXES = ("Get", "Head", "List", "Select")


def is_read(op: str) -> bool:
    return op.startswith(_READ_PREFIXES)


@dataclass(slots=True, frozen=True)
class Key:
    access_key_id: str
    secret_access_key: str
    permission: str = "admin-read-write"
    buckets: frozenset[str] | None = None
    # what the access line says; a temporary credential (auth/scopes.py) also limits object keys
    kind: ClassVar[str] = "key"
    limits_keys: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"Key({self.access_key_id!r}, {self.permission!r})"

    @property
    def admin(self) -> bool:
        return self.permission.startswith("admin-")

    @property
    def writable(self) -> bool:
        return self.permission.endswith("read-write")

    def sees_bucket(self, bucket: str) -> bool:
        return self.buckets is None or bucket in self.buckets

    def authorize(self, op: str, bucket: str | None, copy_source_bucket: str | None = None,
                  creates_bucket: bool = False) -> None:
        """Raise AccessDenied unless this key may run ``op`` on ``bucket`` (and read the source)."""
        if self.permission == "admin-read-write":
            return
        read = is_read(op)
        if not read and not self.writable:
            raise S3Error("AccessDenied")
        if not self.admin:
            if op != "ListBuckets" and op not in OBJECT_OPERATIONS:
                raise S3Error("AccessDenied")
            if creates_bucket:  # cf-create-bucket-if-missing creates a bucket: bucket administration
                raise S3Error("AccessDenied")
            if bucket is not None and not self.sees_bucket(bucket):
                raise S3Error("AccessDenied")
            if copy_source_bucket is not None and not self.sees_bucket(copy_source_bucket):
                raise S3Error("AccessDenied")


class KeyStore:
    """access key id → Key; ``secret_for`` is what the SigV4 verifier looks keys up with."""

    def __init__(self, keys: list[Key]) -> None:
        self._keys = {k.access_key_id: k for k in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def ids(self) -> list[str]:
        return list(self._keys)

    def get(self, access_key_id: str) -> Key | None:
        return self._keys.get(access_key_id)

    def secret_for(self, access_key_id: str) -> str | None:
        k = self._keys.get(access_key_id)
        return k.secret_access_key if k else None
