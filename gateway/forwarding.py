"""What of a client's request headers goes upstream: an allow-list, as data.

The upstream executes what it reads, so it may read only what the gateway checked. A request header
is forwarded when it is one the S3 API defines for requests (:data:`STANDARD` — the HTTP headers S3
reads — and :data:`AMZ` / :data:`AMZ_PREFIXES`) and, for every ``x-amz-*`` header, when the client
signed it. Everything else is dropped: hop-by-hop headers, the client's authentication (the gateway
signs anew), what the gateway re-creates (``Content-Length``, ``x-amz-content-sha256``,
``x-amz-date``), R2's ``cf-*`` extension headers (the gateway acts on them itself), proxies' and
SDKs' bookkeeping, the gateway's own ``x-amz-meta-r2gw-*`` metadata
(:data:`~.upstream.responses.RESERVED_METADATA`), and any header S3 does not define.

A header *name* that an S3 server could read as another one is refused before anything goes
upstream (:func:`check_names`): Ceph RGW (and every CGI-style server) reads ``x_amz_copy_source``
as ``x-amz-copy-source``, so a name with ``_`` that folds onto a header S3 or the gateway reads —
``x-amz-*``, ``content-*``, ``if-*``, ``cf-*``, ``range``, ``host``, … — answers ``400
InvalidArgument`` (AWS's code for a header it cannot accept, with ``ArgumentName``). Underscores
after ``x-amz-meta-`` are part of a metadata name (AWS keeps them), and are allowed. Other names
with ``_`` are dropped like any unknown header. Names with characters outside the HTTP token set
(spaces, ``:``, controls) never get this far: the server's parser (llhttp) refuses the request
with 400 BadRequest. Names are lowercase here, and repeated headers arrive joined by ``,`` into one
value: that one value is what is checked, signed and forwarded, so the upstream cannot see a second
spelling.

``Range`` is forwarded on GET and HEAD only, and only when it is one byte range S3 honours
(``bytes=first-last``, ``bytes=first-``, ``bytes=-suffix``): S3 ignores any other value (another
unit, garbage, ``last < first``, several ranges) and answers 200 with the whole object, where some
upstreams (Ceph RGW) answer 416 or a partial 206.
"""
from __future__ import annotations

import re
from typing import Mapping

from .errors import S3Error
from .upstream.responses import RESERVED_METADATA

#: HTTP request headers that S3 reads (system metadata, conditions, range, CORS preflight).
STANDARD: frozenset[str] = frozenset({
    "cache-control", "content-disposition", "content-encoding", "content-language", "content-md5",
    "content-type", "expires", "range", "if-match", "if-none-match", "if-modified-since",
    "if-unmodified-since", "origin", "access-control-request-method", "access-control-request-headers",
})

#: The ``x-amz-*`` request headers of the S3 API reference (forwarded when signed).
AMZ: frozenset[str] = frozenset({
    # ACLs, ownership, object lock
    "x-amz-acl", "x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp",
    "x-amz-grant-write", "x-amz-grant-write-acp", "x-amz-object-ownership",
    "x-amz-bucket-object-lock-enabled", "x-amz-bucket-object-lock-token",
    "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold",
    "x-amz-bypass-governance-retention", "x-amz-mfa",
    # copies
    "x-amz-copy-source", "x-amz-copy-source-range", "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match", "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-unmodified-since", "x-amz-metadata-directive", "x-amz-tagging-directive",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
    # encryption
    "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context", "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    # object settings
    "x-amz-storage-class", "x-amz-tagging", "x-amz-website-redirect-location",
    # checksums
    "x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1",
    "x-amz-checksum-sha256", "x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode",
    "x-amz-sdk-checksum-algorithm",
    # ownership and payment assertions
    "x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner", "x-amz-request-payer",
    # multipart, attributes, conditional deletes and appends
    "x-amz-mp-object-size", "x-amz-object-attributes", "x-amz-max-parts", "x-amz-part-number-marker",
    "x-amz-optional-object-attributes", "x-amz-if-match-last-modified-time", "x-amz-if-match-size",
    "x-amz-if-match-initiated-time", "x-amz-write-offset-bytes",
    # bucket administration
    "x-amz-confirm-remove-self-bucket-access", "x-amz-skip-destination-validation",
    "x-amz-create-session-mode", "x-amz-client-token",
    # RenameObject
    "x-amz-rename-source", "x-amz-rename-source-if-match", "x-amz-rename-source-if-none-match",
    "x-amz-rename-source-if-modified-since", "x-amz-rename-source-if-unmodified-since",
    # WriteGetObjectResponse
    "x-amz-request-route", "x-amz-request-token",
})

#: ``x-amz-*`` families: user metadata and WriteGetObjectResponse's forwarded answer headers.
AMZ_PREFIXES: tuple[str, ...] = ("x-amz-meta-", "x-amz-fwd-")

#: A name with ``_`` whose ``-`` spelling starts like one of these is refused (see module doc).
_LOOKALIKE_PREFIXES = ("x-amz-", "content-", "if-", "cf-", "x-forwarded-", "proxy-", "access-control-")
#: …or is one of these.
_LOOKALIKE_NAMES = STANDARD | {
    "authorization", "host", "connection", "keep-alive", "transfer-encoding", "te", "trailer",
    "upgrade", "expect", "date", "cookie", "forwarded", "x-real-ip", "user-agent", "accept",
    "accept-encoding",
}

_RANGE = re.compile(r"bytes=(?:([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19}))", re.I | re.A)


def check_names(headers: Mapping[str, str]) -> None:
    """Refuse (400 InvalidArgument) a header name an S3 server could read as one S3 defines."""
    for name in headers:
        if "_" in name and not name.startswith("x-amz-meta-"):
            folded = name.replace("_", "-")
            if folded in _LOOKALIKE_NAMES or folded.startswith(_LOOKALIKE_PREFIXES):
                raise S3Error("InvalidArgument", f"Header name '{name[:64]}' is not valid: it could be "
                              f"read as '{folded[:64]}'.", ArgumentName=name[:64])


def byte_range(value: str) -> str | None:
    """The ``Range`` value to forward (``bytes=…``, one range S3 honours), or None to drop it."""
    m = _RANGE.fullmatch(value.strip())
    if m is None:
        return None
    first, last, suffix = m.groups()
    if suffix is not None:
        return f"bytes=-{suffix}"
    if last and int(last) < int(first):
        return None
    return f"bytes={first}-{last}"


def forwarded(headers: Mapping[str, str], signed: tuple[str, ...], method: str) -> dict[str, str]:
    """The request headers that go upstream, from the client's (lowercase names, one value each)
    and the names it signed."""
    out = {}
    for k, v in headers.items():
        if k in STANDARD:
            if k == "content-encoding":
                v = ",".join(p for p in (s.strip() for s in v.split(",")) if p and p != "aws-chunked")
                if not v:
                    continue
            elif k == "range":
                if method != "GET" and method != "HEAD":
                    continue
                v = byte_range(v)
                if v is None:
                    continue
            out[k] = v
        elif k.startswith("x-amz-") and k in signed and (k in AMZ or k.startswith(AMZ_PREFIXES)) \
                and k not in RESERVED_METADATA:   # the gateway's own metadata: never a client's to set
            out[k] = v
    return out
