"""What each upstream S3 implementation does differently, as named sets of dialects (in the manner of
s3proxy's ``Quirks.java``). Code asks ``upstream.has(quirks.NAME)``; teaching the gateway a new
store's behaviour is a line here, not an ``if dialect == ...`` elsewhere.

Dialects (``upstream.dialect`` in the config, or guessed from the first answer's headers):
``aws`` (AWS S3), ``minio``, ``ceph`` (Ceph RGW), ``moto`` (the embedded upstream), ``s3`` (other).
"""
from __future__ import annotations

DIALECTS = ("aws", "minio", "ceph", "moto", "s3")

#: ``x-amz-copy-source`` URL-decoded a second time on UploadPartCopy and on a PUT carrying
#: ``x-amz-copy-source-range`` (RGW 16.2): the gateway escapes its '%' once more.
DOUBLE_DECODES_COPY_SOURCE = frozenset({"ceph"})

#: ``GET/HEAD ?partNumber=N`` answered with the whole object (RGW 16), or wrongly (moto 5: the part's
#: own ETag, no Content-Range, 500 or the whole object past the last part): the gateway records part
#: sizes at CompleteMultipartUpload and serves the part as a Range.
IGNORES_PART_NUMBER = frozenset({"ceph", "moto"})

#: ``If-Match`` / ``If-None-Match`` honoured on PutObject and CompleteMultipartUpload: the
#: conditions go upstream as they are (elsewhere the gateway checks them with a HEAD first).
CONDITIONAL_WRITES = frozenset({"aws", "minio"})

#: ``If-Match`` compared with the stored ETag without its quotes.
UNQUOTED_IF_MATCH = frozenset({"ceph"})

#: The first path segment routes a request to another API than S3 (RGW: ``/admin`` is the admin ops
#: API, which takes S3 signatures — user keys, usage, logs —, ``/swift`` and ``/auth`` Swift): no
#: client request may go there, whatever bucket it names (see :data:`OTHER_API_ENTRIES`).
OTHER_APIS_IN_PATH = frozenset({"ceph"})
#: … and those segments (RGW's defaults for rgw_admin_entry, rgw_swift_url_prefix, rgw_swift_auth_entry).
OTHER_API_ENTRIES = frozenset({"admin", "swift", "auth"})

#: ``If-None-Match: *`` on PutObject refuses (412) a key that exists when the write commits, so of
#: two concurrent create-only writes one wins and a plain write landing during one is never
#: overwritten. Measured on RGW 16.2 and moto 5.2 for unversioned buckets (on a versioned bucket
#: RGW 16 lets concurrent create-only writes all succeed); elsewhere the gateway HEADs first.
CREATE_ONLY_PUT = frozenset({"aws", "minio", "ceph", "moto"})

#: ``If-None-Match: *`` honoured on CompleteMultipartUpload (RGW 16 ignores it and overwrites):
#: elsewhere a create-only multipart copy HEADs the key just before completing.
CONDITIONAL_COMPLETE = frozenset({"aws", "minio", "moto"})

#: Only ``STANDARD`` kept (Ceph RGW's default placement answers ``400 InvalidArgument`` to any other
#: ``x-amz-storage-class``; MinIO keeps STANDARD and REDUCED_REDUNDANCY): a class the store lacks is
#: kept by the gateway (gateway/extensions/storage_class.py). ``upstream.storage_classes`` in the
#: config overrides this for a store whose placement has more classes.
STANDARD_CLASS_ONLY = frozenset({"ceph", "minio"})

#: ListParts and ListMultipartUploads report ``STANDARD`` whatever the upload's class (RGW 16, moto
#: 5): the gateway records an upload's class when it is another, and answers it.
UPLOAD_CLASS_NOT_LISTED = frozenset({"ceph", "moto"})

#: ``x-amz-checksum-*`` not kept (RGW 16 accepts and drops them; moto keeps a PutObject's but has
#: none for multipart uploads, and ``s3`` is an unknown store): the gateway keeps the checksums a
#: client sent and answers them as S3 does (gateway/extensions/checksums_kept.py).
NO_CHECKSUM_STORE = frozenset({"ceph", "moto", "s3"})

#: CopyObject with SSE-C on either side not done right (RGW 16: 501 NotImplemented from an SSE-C
#: source; a plain source copied to an SSE-C destination is stored unencrypted): the gateway copies.
NO_SSE_C_COPY = frozenset({"ceph"})

#: UploadPartCopy from an SSE-C source refused unless the destination has the same key (RGW 16:
#: ``InvalidArgument`` to a plain upload, a key-MD5 mismatch to another key): the gateway copies.
NO_SSE_C_PART_COPY = frozenset({"ceph"})
