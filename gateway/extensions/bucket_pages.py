"""ListBuckets pages, as pure functions over a sorted list of ``(name, creation date)`` — one store's
buckets or several stores' merged: what a request asks for (:func:`parse`), the page
(:func:`paginate`), and the answer (:func:`render`).

Two pagination dialects share one endpoint:

- R2's: ``prefix``, ``start-after``, ``continuation-token``, ``max-keys`` (default and at most
  1000) from the query or the ``cf-*`` headers (headers win). The answer has ``IsTruncated``,
  ``NextContinuationToken``, ``KeyCount``, ``MaxKeys``, ``StartAfter``, ``Prefix``, and
  ``ContinuationToken`` = *the token the request supplied*; ``cf-is-truncated`` and
  ``cf-next-continuation-token`` as headers.
- AWS's (2024): ``max-buckets`` (1 to 10,000), ``continuation-token``, ``prefix``,
  ``bucket-region``; the answer's ``ContinuationToken`` is *the next page's* token, ``Prefix``
  echoes, each bucket has its ``BucketRegion``. boto3's ``list_buckets(MaxBuckets=…)`` and its
  paginator read that ``ContinuationToken``.

The one element the two define differently is ``ContinuationToken``, so the tokens say which
dialect issued them: R2's are the base64url of the last name returned, AWS's the same behind a
``~`` (never a base64url character). A request is in AWS's form when it has ``max-buckets`` or
``bucket-region``, or continues with a ``~`` token in the query. The answer to a request that
supplied no R2 token carries AWS's ``ContinuationToken`` when there is more (a bare ``GET /``
satisfies both: R2 clients read ``NextContinuationToken``, SDK paginators ``ContinuationToken``);
every answer carries R2's elements and headers. Tokens hold no state: any replica continues any
listing.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

from ..errors import S3Error
from ..s3xml import element

MAX_KEYS = 1000            # R2: default and maximum page
MAX_BUCKETS = 10_000       # AWS: max-buckets upper bound
_AWS_TOKEN = "~"


class Bucket(NamedTuple):
    name: str
    created: str           # CreationDate as the store wrote it


@dataclass(frozen=True, slots=True)
class PageRequest:
    aws: bool                     # AWS's form (BucketRegion per bucket); R2's otherwise
    prefix: str
    after: str | None             # names strictly after this one (token or start-after)
    limit: int
    r2_token: str | None          # an R2 token the request supplied (echoed as ContinuationToken)
    start_after: str | None
    region: str | None            # bucket-region: only buckets in this region


@dataclass(frozen=True, slots=True)
class Page:
    buckets: list[Bucket]
    truncated: bool
    last: str | None              # the last name returned, when there is more


def encode_token(name: str, aws: bool = False) -> str:
    token = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    return _AWS_TOKEN + token if aws else token


def decode_token(token: str) -> str:
    raw = token[1:] if token.startswith(_AWS_TOKEN) else token
    try:
        name = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = ""
    if not name:
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName="continuation-token")
    return name


def _count(raw: str, name: str, low: int, high: int | None = None) -> int:
    """A count parameter: from ``low`` to ``high`` (or any larger value, clamped, when ``high`` is None)."""
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        raise S3Error("InvalidArgument", f"{name} must be an integer from {low}"
                      + (f" to {high}" if high is not None else ""), ArgumentName=name)
    return int(raw)


def parse(query: Mapping[str, str], headers: Mapping[str, str]) -> PageRequest:
    """What a ListBuckets request asks for (``headers`` lowercase). Raises InvalidArgument."""
    def r2(name: str) -> str | None:
        return headers.get("cf-" + name, query.get(name))

    token = r2("continuation-token") or None
    aws_token = token is not None and token.startswith(_AWS_TOKEN) and "cf-continuation-token" not in headers
    aws = "max-buckets" in query or "bucket-region" in query or aws_token
    if "max-buckets" in query:
        limit = _count(query["max-buckets"], "max-buckets", 1, MAX_BUCKETS)
    else:
        raw = r2("max-keys")
        limit = MAX_KEYS if raw in (None, "") else min(_count(raw, "max-keys", 0), MAX_KEYS)
    start_after = r2("start-after") or None
    after = decode_token(token) if token else start_after
    return PageRequest(aws=aws, prefix=r2("prefix") or "", after=after, limit=limit,
                       r2_token=token if token and not aws_token else None, start_after=start_after,
                       region=query.get("bucket-region") or None)


def paginate(buckets: Sequence[tuple[str, str]], req: PageRequest, region: str | None = None,
             region_aliases: Sequence[str] = ()) -> Page:
    """The page ``req`` asks for, from ``buckets`` sorted by name (the caller has left out what the
    client may not see). ``region`` is where every bucket is (the profile's region)."""
    if req.region is not None and region is not None and req.region != region \
            and req.region not in region_aliases:
        return Page([], False, None)
    prefix, after = req.prefix, req.after
    selected = [Bucket(n, d) for n, d in buckets
                if n.startswith(prefix) and (after is None or n > after)]
    page = selected[:req.limit]
    truncated = len(selected) > req.limit
    return Page(page, truncated, page[-1].name if truncated and page else None)


def render(page: Page, req: PageRequest, owner_xml: str, region: str | None) -> tuple[list[str], dict[str, str]]:
    """The ``ListAllMyBucketsResult`` children and the ``cf-*`` headers of a page."""
    body = [owner_xml, "<Buckets>"]
    in_region = element("BucketRegion", region) if req.aws and region else ""
    body += [f"<Bucket>{element('Name', b.name)}{element('CreationDate', b.created)}{in_region}</Bucket>"
             for b in page.buckets]
    body.append("</Buckets>")
    r2_next = encode_token(page.last) if page.last is not None else None
    body.append(element("IsTruncated", "true" if page.truncated else "false"))
    if r2_next:
        body.append(element("NextContinuationToken", r2_next))
    if req.r2_token is not None:
        body.append(element("ContinuationToken", req.r2_token))      # R2: the token supplied
    elif page.last is not None:
        body.append(element("ContinuationToken", encode_token(page.last, aws=True)))   # AWS: the next
    if req.start_after:
        body.append(element("StartAfter", req.start_after))
    if req.prefix:
        body.append(element("Prefix", req.prefix))
    body.append(element("KeyCount", len(page.buckets)))
    body.append(element("MaxKeys", req.limit))
    headers = {"cf-is-truncated": "true" if page.truncated else "false"}
    if r2_next:
        headers["cf-next-continuation-token"] = r2_next
    return body, headers
