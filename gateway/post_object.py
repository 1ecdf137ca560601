"""PostObject: browser form uploads (``multipart/form-data`` POST to a bucket), authenticated by a
SigV4-signed POST policy, stored upstream as a PutObject whose body is streamed from the form.

The SigV4 POST signature and the policy's conditions are checked in :mod:`gateway.auth.post_policy`.
``proxy.handle`` sends every form POST to a bucket here before header authentication (the form
carries no Authorization header). In order:

1. the profile's rules for the operation (``PostObject not implemented`` where it is not, e.g. r2);
2. the form fields before the ``file`` part are read (each ≤ 64 KiB, all ≤ 256 KiB);
3. SigV4 POST authentication: ``x-amz-algorithm`` = AWS4-HMAC-SHA256, ``x-amz-credential``,
   ``x-amz-date``, ``policy`` and ``x-amz-signature`` = hex HMAC-SHA256(signing key of the
   credential's date/region/s3, the base64 policy text), compared in constant time; then the key's
   permission (``PostObject`` on the bucket). No policy is AccessDenied (no anonymous access);
   SigV2 forms (AWSAccessKeyId/signature) are refused as the header form is;
4. the policy: ``expiration`` in the future, every condition holds (``{"field": v}``, ``eq``,
   ``starts-with`` — Content-Type: each comma-separated value —, ``content-length-range``, the
   ``bucket``), and every form field except policy, x-amz-signature, file and ``x-ignore-*`` is
   named by a condition (AWS's "Extra input fields"). Failures are 403 AccessDenied "Invalid
   according to Policy: …"; a size outside content-length-range is 400 EntityTooLarge/Small;
5. the profile's form-field rules (❌ fields, allowed values), key and metadata limits — in the
   rules' mode (enforce refuses, audit logs and counts, off ignores);
6. the file: PutObject upstream, answered as S3 does (success_action_redirect → 303,
   success_action_status 200 / 201 (PostResponse XML) / 204, the default).

The file is never held whole in memory. Its length is known before a byte of it is sent: the
request's Content-Length minus what the form used up to the file's first byte minus the closing
delimiter (``\\r\\n--boundary--\\r\\n``, as browsers, curl, requests, Go, OkHttp and aiohttp end a
form). The file must be the form's last part — AWS requires that too; fields after it are ignored
by S3, and here they make the length wrong, so such a form is refused (400 MalformedPOSTRequest)
with nothing stored. content-length-range and the profile's size limit are checked against that
length before the upstream is asked anything. Then:

- up to 1 MiB: the part is read whole (bounded), its exact size re-checked, and sent as bytes;
- larger: streamed to the upstream with that Content-Length, 256 KiB at a time, the last piece
  held back until the part ended exactly there — a file of another length (a form that ends
  otherwise, an extra part after the file, a truncated body) aborts the upstream request before
  its last byte, so the upstream commits nothing, and the client gets 400.

Left out: the ``tagging`` field (S3's XML tag set) is not forwarded (provider-b refuses it);
x-amz-checksum-* fields are not forwarded (they would be stored unverified by some upstreams).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator
from urllib.parse import quote, urlsplit, urlunsplit, urlencode, parse_qsl

from aiohttp.helpers import parse_mimetype
from aiohttp.multipart import BodyPartReader, MultipartReader

from . import s3xml
from .auth.canonical import uri_encode
from .auth.post_policy import authenticate_form, check_policy
from .errors import S3Error
from .exchange import error_response
from .rfc2047 import encode_value
from .rules.enforce import Violation
from .server import Response, StreamResponse
from .upstream.responses import RESERVED_METADATA, upstream_error

if TYPE_CHECKING:
    from .exchange import Exchange

OPERATION = "PostObject"
MAX_FIELD_BYTES = 64 * 1024
MAX_PRE_DATA_BYTES = 256 * 1024
INLINE_MAX = 1024 * 1024
CHUNK = 256 * 1024

# form fields that authenticate the form: never conditions' business, never forwarded
_AUTH_FIELDS = frozenset({"policy", "x-amz-signature", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                          "x-amz-security-token", "awsaccesskeyid", "signature"})
_RESPONSE_FIELDS = frozenset({"success_action_status", "success_action_redirect", "redirect"})
_SYSTEM_FIELDS = ("content-type", "cache-control", "content-disposition", "content-encoding",
                  "content-language", "expires")
_FORWARDED_AMZ = ("x-amz-storage-class", "x-amz-website-redirect-location", "x-amz-server-side-encryption")
_SECRET_FIELDS = frozenset({"x-amz-security-token", "x-amz-server-side-encryption-customer-key"})


def _malformed(detail: str = "") -> S3Error:
    msg = "The body of your POST request is not well-formed multipart/form-data."
    return S3Error("MalformedPOSTRequest", msg + (f" ({detail})" if detail else ""), status=400)


class _CountingStream:
    """``request.content`` as MultipartReader reads it, counting the bytes it has consumed (what it
    pushes back with ``unread_data`` is uncounted), so the file's first byte has a known offset."""

    __slots__ = ("_stream", "pos")

    def __init__(self, stream) -> None:
        self._stream = stream
        self.pos = 0

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        line = await self._stream.readline(max_line_length=max_line_length)
        self.pos += len(line)
        return line

    async def read(self, n: int = -1) -> bytes:
        data = await self._stream.read(n)
        self.pos += len(data)
        return data

    def unread_data(self, data: bytes) -> None:
        self._stream.unread_data(data)
        self.pos -= len(data)

    def at_eof(self) -> bool:
        return self._stream.at_eof()


class _FileBody:
    """The file part as the upstream's PutObject body: exactly ``length`` bytes or an error."""

    def __init__(self, part: BodyPartReader, length: int) -> None:
        self._part = part
        self.length = length
        self.received = 0
        self.error: S3Error | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        held: bytes | None = None
        try:
            while True:
                chunk = await self._part.read_chunk(CHUNK)
                if not chunk:
                    break
                self.received += len(chunk)
                if self.received > self.length:
                    raise _malformed("the file is not the form's last part, or the form does not end "
                                     "with its closing delimiter")
                if held is not None:
                    yield held
                held = bytes(chunk)
            if self.received != self.length:
                raise _malformed("the file is not the form's last part, or the form does not end "
                                 "with its closing delimiter")
        except S3Error as e:
            self.error = e
            raise
        except Exception as e:  # the client went away, a broken form, a read timeout
            self.error = S3Error("IncompleteBody")
            raise self.error from e
        if held is not None:
            yield held


async def _read_field(part: BodyPartReader, budget: int) -> bytes:
    data = bytearray()
    limit = min(MAX_FIELD_BYTES, budget)
    while True:
        chunk = await part.read_chunk(8192)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise S3Error("MaxPostPreDataLengthExceededError",
                          "Your POST request fields preceding the upload file were too large.", status=400)


def _shown(name: str, value: str) -> str:
    if name in _SECRET_FIELDS:
        return "***"
    return value if len(value) <= 256 else value[:256] + "…"


def _profile_checks(ex: "Exchange", fields: dict[str, str], key: str, size: int) -> list[Violation]:
    """The profile's rules for the form: ❌ fields, allowed values, key, metadata and size limits."""
    profile = ex.gw.profile
    out: list[Violation] = []
    op = profile.spec.operations.get(OPERATION)
    for feature in (op.features if op is not None else ()):
        for name in feature.form_fields:
            lname = name.lower()
            if not feature.supported:
                if lname == "policy":
                    # Decision: the gateway allows no anonymous access; a form is authenticated by
                    # its signed policy, so a table that lists `policy` as unsupported cannot be
                    # followed here (the policy is required, see auth/post_policy.py).
                    continue
                prefix = lname[:-1] if lname.endswith("*") else None
                for fname, value in fields.items():
                    if fname == lname or (prefix is not None and fname.startswith(prefix)):
                        shown = _shown(fname, value)
                        out.append(Violation(f"{fname}={shown}", S3Error(
                            "NotImplemented", f"Form field '{fname}' with value '{shown}' not implemented")))
            elif lname in fields:
                value = fields[lname]
                if feature.values is not None and value not in feature.values:
                    out.append(_bad_value(profile, lname, value))
                elif feature.value_range is not None and not (
                        value.isdigit() and feature.value_range[0] <= int(value) <= feature.value_range[1]):
                    out.append(_bad_value(profile, lname, value))
    limits = profile.limits
    encoded = key.encode("utf-8", "surrogateescape")
    if len(encoded) > limits.max_key_bytes:
        out.append(Violation("key-length", S3Error(limits.key_error)))
    meta = sum(len(k) - 11 + len(v.encode("utf-8", "surrogateescape")) for k, v in fields.items()
               if k.startswith("x-amz-meta-"))
    if meta > limits.max_metadata_bytes:
        out.append(Violation("metadata-size", S3Error("MetadataTooLarge")))
    if limits.max_put_object_bytes is not None and size > limits.max_put_object_bytes:
        out.append(Violation("object-size", S3Error("EntityTooLarge")))
    return out


def _bad_value(profile, name: str, value: str) -> Violation:
    shown = _shown(name, value)
    if name == "x-amz-storage-class" and profile.storage_class_error != "NotImplemented":
        return Violation(f"{name}={shown}", S3Error(profile.storage_class_error))
    if name == "x-amz-storage-class":
        return Violation(f"{name}={shown}", S3Error(
            "NotImplemented", f"Form field '{name}' with value '{shown}' not implemented"))
    return Violation(f"{name}={shown}", S3Error("InvalidArgument", f"Invalid value for form field '{name}'",
                                                ArgumentName=name, ArgumentValue=shown))


def _upstream_headers(ex: "Exchange", fields: dict[str, str]) -> dict[str, str]:
    profile = ex.gw.profile
    headers: dict[str, str] = {}
    for name in _SYSTEM_FIELDS:
        if name in fields:
            headers[name] = fields[name]
    if "acl" in fields:
        headers["x-amz-acl"] = fields["acl"]
    for name, value in fields.items():
        if name.startswith("x-amz-meta-"):
            if name.isascii() and name not in RESERVED_METADATA:   # the gateway's own: never a client's
                headers[name] = encode_value(value)
        elif name.startswith(_FORWARDED_AMZ):
            headers[name] = value
    if "x-amz-storage-class" in headers:
        headers["x-amz-storage-class"] = profile.upstream_storage_class(headers["x-amz-storage-class"])
    return headers


def _location(ex: "Exchange", key: str) -> str:
    request = ex.request
    host = ex.headers.get("host", "")
    base = ex.raw_path.rstrip("/")
    return f"{request.scheme}://{host}{base}/{uri_encode(key, True)}"


async def handle(ex: "Exchange") -> StreamResponse:
    gw = ex.gw
    ex.op = OPERATION
    ex.query = {}
    gw.rules.apply(ex)  # "PostObject not implemented" where the profile says so
    try:
        return await _handle(ex)
    except S3Error as err:
        if err.code in ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidRequest"):
            gw.metrics.auth_failures.labels(err.code).inc()
        # the rest of the form is not read: answer, then close the connection
        resp = error_response(ex.method, err, ex.request_id, ex.raw_path)
        resp.force_close()
        return resp


async def _handle(ex: "Exchange") -> StreamResponse:
    gw = ex.gw
    request = ex.request
    total = request.content_length
    if total is None:
        raise S3Error("MissingContentLength")
    try:
        boundary = parse_mimetype(ex.headers["content-type"]).parameters["boundary"]
        stream = _CountingStream(request.content)
        reader = MultipartReader(request.headers, stream)  # type: ignore[arg-type]
    except (KeyError, ValueError, AssertionError):
        raise _malformed("no boundary") from None

    # -- the fields before the file -----------------------------------------------------------
    fields: dict[str, str] = {}
    file_part: BodyPartReader | None = None
    budget = MAX_PRE_DATA_BYTES
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or not part.name:
                raise _malformed("a part without a name")
            name = part.name.lower()
            if name == "file":
                file_part = part
                break
            raw = await _read_field(part, budget)
            budget -= len(raw)
            if name in fields:
                raise S3Error("InvalidArgument", f"Form field '{name}' given twice", ArgumentName=name)
            fields[name] = raw.decode("utf-8", "surrogateescape")
    except S3Error:
        raise
    except Exception:
        raise _malformed() from None
    file_start = stream.pos
    ex.bytes_in = file_start

    # -- who, and may they ----------------------------------------------------------------------
    policy, auth = authenticate_form(fields, ex.gw.keys.secret_for)
    ex.auth = auth
    ex.client_key = gw.keys.get(auth.access_key_id)
    ex.client_key.authorize(OPERATION, ex.bucket)
    if file_part is None:
        raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.",
                      ArgumentName="file", ArgumentValue="0")
    key = fields.get("key")
    if not key:
        raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, "
                      "please check the order of the fields.", ArgumentName="key", ArgumentValue="")
    length_range = check_policy(policy, fields, ex.bucket)
    if "${filename}" in key:
        filename = (file_part.filename or "").replace("\\", "/").rpartition("/")[2]
        key = key.replace("${filename}", filename)
    ex.key = key

    # -- the file's length, before the upstream is asked anything -------------------------------
    closing = len(boundary.encode()) + 8  # \r\n--boundary--\r\n
    length = total - file_start - closing
    if length < 0:
        raise _malformed("shorter than its Content-Length says")

    def check_size(size: int) -> None:
        if length_range is not None:
            if size > length_range[1]:
                raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                              ProposedSize=str(size), MaxSizeAllowed=str(length_range[1]))
            if size < length_range[0]:
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                              ProposedSize=str(size), MinSizeAllowed=str(length_range[0]))

    check_size(length)
    gw.rules.report(ex, _profile_checks(ex, fields, key, length))
    headers = _upstream_headers(ex, fields)

    # -- the file, streamed -------------------------------------------------------------------
    if length <= INLINE_MAX:
        data = bytearray()
        try:
            while True:
                chunk = await file_part.read_chunk(CHUNK)
                if not chunk:
                    break
                data += chunk
                if len(data) > INLINE_MAX + 65536:
                    raise _malformed("the file is not the form's last part")
        except S3Error:
            raise
        except Exception:
            raise _malformed() from None
        check_size(len(data))
        body: bytes | _FileBody = bytes(data)
        length = len(data)
    else:
        body = _FileBody(file_part, length)
    resp = await ex.call_upstream("PUT", ex.bucket_path(ex.bucket, key), "", headers, body)
    ex.bytes_in = file_start + length
    ex.upstream_status = resp.status
    try:
        if resp.status >= 400:
            raise await upstream_error(ex, resp)
        etag = resp.headers.get("ETag", "")
        out_headers = {"x-amz-request-id": ex.request_id}
        for name in ("ETag", "x-amz-version-id", "x-amz-expiration", "x-amz-server-side-encryption"):
            if name in resp.headers:
                out_headers[name] = resp.headers[name]
    finally:
        resp.release()
    location = _location(ex, key)
    out_headers["Location"] = location
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        u = urlsplit(redirect)
        if u.scheme in ("http", "https") and u.netloc:
            query = parse_qsl(u.query, keep_blank_values=True) + [("bucket", ex.bucket), ("key", key),
                                                                   ("etag", etag)]
            out_headers["Location"] = urlunsplit((u.scheme, u.netloc, u.path, urlencode(query, quote_via=quote), ""))
            return _finish(ex, Response(status=303, headers=out_headers))
    status = fields.get("success_action_status", "204")
    if status == "201":
        body_xml = s3xml.document("PostResponse", [s3xml.element("Location", location),
                                                  s3xml.element("Bucket", ex.bucket),
                                                  s3xml.element("Key", key), s3xml.element("ETag", etag)])
        out_headers["Content-Type"] = "application/xml"
        return _finish(ex, Response(status=201, body=body_xml, headers=out_headers))
    return _finish(ex, Response(status=200 if status == "200" else 204, headers=out_headers))


def _finish(ex: "Exchange", resp: Response) -> Response:
    rules = ex.gw.response_rules
    if rules is not None:
        rules.apply(OPERATION, resp.headers)
    return resp
