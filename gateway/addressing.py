"""Host header and raw request target → bucket and key, in path- or virtual-hosted-style.

The raw path is never normalised: ``..``, ``//``, ``%2F`` and ``+`` in a key are the key's own
characters and must reach the upstream unchanged. A bucket name, path-style or virtual-hosted,
must follow S3's naming rules (:func:`check_bucket`: 3–63 characters of ``a-z 0-9 . -``, a letter
or digit at each end), once percent-decoded: a decoded ``/`` (``/alpha%2Fkey``) or any other
character would make the upstream read another bucket, or another key, than the one the gateway
authorised. Pure functions, no I/O.
"""
from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from .errors import S3Error


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_bucket(name: str) -> str:
    """``name`` if it is a valid S3 bucket name, else 400 InvalidBucketName."""
    if _BUCKET_NAME.fullmatch(name) is None:
        raise S3Error("InvalidBucketName", BucketName=name[:255])
    return name


class Address(NamedTuple):
    """Where a request points (made on every request: a tuple, built in C, rather than a frozen
    dataclass, whose ``__init__`` sets each field through ``object.__setattr__``)."""
    bucket: str | None
    key: str | None
    virtual_host: bool = False


def parse_query(raw_query: str) -> dict[str, str]:
    """Raw query string → {name: value} (percent-decoded; a bare name has value "")."""
    out: dict[str, str] = {}
    if not raw_query:
        return out
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.setdefault(unquote(name), unquote(value))
    return out


def _host_bucket(host: str, domains: tuple[str, ...]) -> str | None:
    if not domains or not host:
        return None
    if host.startswith("["):  # IPv6 literal
        return None
    hostname = host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()
    for domain in domains:
        if hostname.endswith("." + domain):
            return hostname[: -len(domain) - 1]
    return None


def parse(host: str, raw_path: str, domains: tuple[str, ...] = ()) -> Address:
    """Split a request into bucket and key.

    ``raw_path`` is the path as it came on the request line (no query). With virtual-hosted
    style the whole path is the key; with path style the first segment is the bucket.
    """
    if not raw_path.startswith("/"):
        raise S3Error("InvalidRequest", "The request target must be an absolute path.")
    bucket = _host_bucket(host, domains)
    try:
        if bucket is not None:
            key = unquote(raw_path[1:], errors="strict") if len(raw_path) > 1 else None
            return Address(check_bucket(bucket), key or None, True)
        rest = raw_path[1:]
        if not rest:
            return Address(None, None)
        name, slash, key = rest.partition("/")
        bucket = unquote(name, errors="strict")
        key = unquote(key, errors="strict") if slash else ""
    except UnicodeDecodeError:  # percent-escapes that are not UTF-8
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", status=400) from None
    return Address(check_bucket(bucket), key or None)
