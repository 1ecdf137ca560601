"""Cloudflare's Temporary Credentials API, served by the gateway: ``POST
/accounts/{account_id}/r2/temp-access-credentials`` (also under ``/client/v4``, the API's base
path), so code that mints through Cloudflare's API can point at the gateway unchanged.

Same JSON in and out: ``{bucket, parentAccessKeyId, permission, ttlSeconds, prefixes?, objects?}``
(and ``actions?``, which R2 has for local signing only) → the Cloudflare API envelope
``{"result": {accessKeyId, secretAccessKey, sessionToken}, "success": true, "errors": [],
"messages": []}``. Credentials are minted as :func:`gateway.auth.temporary.mint` does (R2's
algorithm), for the configured audiences (else the host the call was sent to).

Off by default (``temporary_credentials.api``); served among the internal endpoints
(:mod:`.internal`), only to callers with the configured bearer token (compared in constant
time). A SigV4-signed request to the same path stays S3's. Answers are never cached
(``Cache-Control: no-store``); the log names parent, bucket and permission, never a secret.
"""
from __future__ import annotations

import asyncio
import hmac
import re
from typing import TYPE_CHECKING

import orjson

from .auth.temporary import SCOPES, mint
from .observability import log
from .server import Request, Response

if TYPE_CHECKING:
    from .app import Gateway

PATH = re.compile(r"(?:/client/v4)?/accounts/([A-Za-z0-9_-]{1,64})/r2/temp-access-credentials")
MAX_BODY_BYTES = 64 * 1024
# (HTTP status, error code, message): Cloudflare's codes for authentication (10000) and an account
# that cannot be routed to (7003); 1001 is the gateway's own, for a request it cannot mint from
ERRORS = {
    "authentication": (403, 10000, "Authentication error"),
    "account": (404, 7003, "Could not route to {path}, perhaps your object identifier is invalid?"),
    "invalid": (400, 1001, "{detail}"),
}
_FIELDS = frozenset({"bucket", "parentAccessKeyId", "permission", "ttlSeconds", "prefixes", "objects", "actions"})


def envelope(result=None, errors=()) -> bytes:
    return orjson.dumps({"result": result, "success": not errors, "errors": list(errors), "messages": []})


def _answer(status: int, body: bytes) -> Response:
    return Response(status=status, body=body, content_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _error(kind: str, **fmt: str) -> Response:
    status, code, message = ERRORS[kind]
    return _answer(status, envelope(errors=[{"code": code, "message": message.format(**fmt)}]))


class _Invalid(Exception):
    pass


def _strings(body: dict, name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"{name}: a list of strings")
    return value


def parse_body(raw: bytes) -> dict:
    """The request's JSON, checked field by field (the message names the field)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Invalid("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _Invalid("the body is not a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _Invalid(f"unknown field(s): {', '.join(unknown)}")
    for name in ("bucket", "parentAccessKeyId", "permission"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise _Invalid(f"{name}: required, a string")
    if body["permission"] not in SCOPES:
        raise _Invalid(f"permission: one of {', '.join(SCOPES)}")
    ttl = body.get("ttlSeconds")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl != int(ttl):
        raise _Invalid("ttlSeconds: required, a whole number of seconds")
    return {"bucket": body["bucket"], "parent": body["parentAccessKeyId"], "scope": body["permission"],
            "ttl_seconds": int(ttl), "prefixes": _strings(body, "prefixes"), "objects": _strings(body, "objects"),
            "actions": _strings(body, "actions")}


class MintEndpoint:
    def __init__(self, gateway: "Gateway") -> None:
        self.gw = gateway
        tc = gateway.settings.temporary_credentials
        self._token = tc.api.token.get_secret_value().encode()
        self._account_id = tc.account_id
        self._audiences = list(tc.audiences)
        self._read_timeout = gateway.settings.limits.client_read_timeout

    def match(self, request: Request):
        """This endpoint's handler for a POST to its path that is not SigV4-signed, else None."""
        if request.method != "POST" or "/r2/temp-access-credentials" not in request.raw_path:
            return None
        if request.header_dict.get("authorization", "").startswith("AWS4-"):
            return None
        return self.handle if PATH.fullmatch(request.raw_path) else None

    def _authenticated(self, request: Request) -> bool:
        scheme, _, token = request.header_dict.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    async def _read(self, request: Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise _Invalid(f"the body is larger than {MAX_BODY_BYTES} bytes")
        parts, size = [], 0
        async with asyncio.timeout(self._read_timeout):
            while True:
                data = await request.content.readany()
                if not data:
                    return b"".join(parts)
                size += len(data)
                if size > MAX_BODY_BYTES:
                    raise _Invalid(f"the body is larger than {MAX_BODY_BYTES} bytes")
                parts.append(data)

    async def handle(self, request: Request) -> Response:
        if not self._authenticated(request):
            log.warning("temporary_credentials_refused", reason="authentication")
            return _error("authentication")
        account_id = PATH.fullmatch(request.raw_path).group(1)
        if self._account_id is not None and account_id != self._account_id:
            log.warning("temporary_credentials_refused", reason="account")
            return _error("account", path=request.raw_path)
        try:
            body = parse_body(await self._read(request))
            parent = self.gw.keys.get(body["parent"])
            if parent is None:
                raise _Invalid("parentAccessKeyId: no such access key")
            audience = self._audiences or [request.header_dict.get("host", "").lower()]
            minted = mint(parent, bucket=body["bucket"], scope=body["scope"], ttl_seconds=body["ttl_seconds"],
                          audience=audience[0] if len(audience) == 1 else audience, account_id=account_id,
                          actions=body["actions"], prefixes=body["prefixes"], objects=body["objects"])
        except (_Invalid, ValueError) as e:
            log.warning("temporary_credentials_refused", reason="invalid", detail=str(e))
            return _error("invalid", detail=str(e))
        except TimeoutError:
            return _error("invalid", detail="the body did not arrive in time")
        log.info("temporary_credentials_minted", parent=parent.access_key_id, bucket=body["bucket"],
                 permission=body["scope"], ttl_seconds=body["ttl_seconds"])
        return _answer(200, envelope({"accessKeyId": minted.access_key_id,
                                      "secretAccessKey": minted.secret_access_key,
                                      "sessionToken": minted.session_token}))


def install(gateway: "Gateway") -> None:
    """Serve the endpoint among the gateway's internal endpoints, if the configuration enables it."""
    if gateway.settings.temporary_credentials.api.enabled:
        gateway.internal.add_matcher(MintEndpoint(gateway).match)
