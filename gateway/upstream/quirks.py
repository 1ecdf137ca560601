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

#: ``GET/HEAD ?partNumber=N`` answered with the whole object: the gateway records part sizes at
#: CompleteMultipartUpload and serves the part as a Range.
IGNORES_PART_NUMBER = frozenset({"ceph"})

#: ``If-Match`` / ``If-None-Match`` honoured on PutObject and CompleteMultipartUpload: the
#: conditions go upstream as they are (elsewhere the gateway checks them with a HEAD first).
CONDITIONAL_WRITES = frozenset({"aws", "minio"})

#: ``If-Match`` compared with the stored ETag without its quotes.
UNQUOTED_IF_MATCH = frozenset({"ceph"})

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
