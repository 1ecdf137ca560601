"""RestoreObject: the profile's rules for the request's XML body, then passed through.

The profile's RestoreObject features that name ``body`` elements (dotted paths under
``RestoreRequest``: ``Days``, ``GlacierJobParameters.Tier``) are checked here, in the rules' mode
(enforce refuses, audit logs and counts, off ignores):

- an unsupported element present → 501 ``Element '<path>' with value '<v>' not implemented``
  (the header message's shape: R2 and provider-b publish no wording for this);
- a supported element outside its ``value_range`` or ``values`` → 400 InvalidArgument
  (provider-b: Days 1–7). provider-b's table scopes ``GlacierJobParameters.Tier=Standard`` to
  DEEP_ARCHIVE objects: for that element only, a value outside the list HEADs the object and is
  refused only if the object's class (the client's name) is DEEP_ARCHIVE.

Whatever the upstream answers is then relayed (Ceph RGW answers 501 NotImplemented for objects
that are not in a cloud tier: it is passed through as S3 XML). A profile with no body rules for
RestoreObject (r2, where the operation is unimplemented) makes this a no-op.
"""
from __future__ import annotations

from .. import s3xml
from ..errors import S3Error
from ..rules.enforce import Violation

OPERATION = "RestoreObject"
# element → the client storage class the table restricts it to (provider-b: "For DEEP_ARCHIVE, …")
_CLASS_SCOPED = {"GlacierJobParameters.Tier": "DEEP_ARCHIVE"}


def _find(root, path: str):
    node = root
    for name in path.split("."):
        for child in node:
            if isinstance(child.tag, str) and s3xml.local(child.tag) == name:
                node = child
                break
        else:
            return None
    return node


def _shown(value: str) -> str:
    return value if len(value) <= 256 else value[:256] + "…"


async def restore(ex, proceed):
    op = ex.gw.profile.spec.operations.get(OPERATION)
    features = [f for f in op.features if f.body] if op is not None else []
    if not features or ex.gw.rules.mode == "off":
        return await proceed(ex)
    body = ex.body if isinstance(ex.body, bytes) else b""
    if not body.strip():
        return await proceed(ex)
    root = s3xml.parse(body)
    if s3xml.local(root.tag) != "RestoreRequest":
        raise S3Error("MalformedXML")
    violations: list[Violation] = []
    scoped: list[tuple[str, str, tuple[str, ...]]] = []
    for feature in features:
        for path in feature.body:
            node = _find(root, path)
            if node is None:
                continue
            value = (node.text or "").strip()
            if not feature.supported:
                shown = _shown(value)
                violations.append(Violation(f"{path}={shown}", S3Error(
                    "NotImplemented", f"Element '{path}' with value '{shown}' not implemented")))
                continue
            ok = True
            if feature.value_range is not None:
                low, high = feature.value_range
                ok = value.isdigit() and low <= int(value) <= high
                message = f"{path} must be an integer between {low} and {high}, inclusive"
            if ok and feature.values is not None and value not in feature.values:
                if path in _CLASS_SCOPED:
                    scoped.append((path, value, feature.values))
                    continue
                ok = False
                message = f"{path} must be one of {', '.join(feature.values)}"
            if not ok:
                violations.append(Violation(f"{path}={_shown(value)}", S3Error(
                    "InvalidArgument", message, ArgumentName=path, ArgumentValue=_shown(value))))
    if scoped and not violations:
        status, headers = await ex.head(ex.bucket, ex.key)
        if status == 404:
            raise S3Error("NoSuchKey", Key=ex.key)
        upstream_class = headers.get("x-amz-storage-class", "STANDARD")
        client_class = ex.gw.profile.client_storage_class(upstream_class)
        for path, value, allowed in scoped:
            cls = _CLASS_SCOPED[path]
            if client_class == cls:
                violations.append(Violation(f"{path}={_shown(value)}", S3Error(
                    "InvalidArgument", f"{path} must be one of {', '.join(allowed)} for {cls} objects",
                    ArgumentName=path, ArgumentValue=_shown(value))))
    ex.gw.rules.report(ex, violations)
    return await proceed(ex)


def register(ext) -> None:
    ext.register(restore, OPERATION)
