"""R2's temporary credentials: short-lived S3 credentials derived from a configured key, checked
without state (any replica with the same keys accepts them).

The algorithm is R2's ("Temporary credentials", local signing):

1. a JWT, HS256, signed with the parent key's secret access key, claims ``iss`` (the parent's
   access key id), ``sub`` (account id), ``aud`` (the endpoint's host), ``iat``, ``exp`` (at most
   604,800 s after ``iat``), ``bucket``, ``scope`` (R2's four permission levels) and optionally
   ``actions`` (S3 operation names) and ``paths`` (``prefixPaths``, ``objectPaths``);
2. the temporary secret access key is the lowercase hex SHA-256 of the signed JWT;
3. the access key id is the parent's; the session token is ``base64("jwt/" + JWT)``, sent as
   ``X-Amz-Security-Token`` (header, or query parameter of a presigned URL).

:class:`Verifier` turns a session token into a :class:`TemporaryCredential` (the JWT checked with
PyJWT, once: verified tokens are cached, bounded, until they expire); the request's SigV4 signature
is then verified with the derived secret as for any key. What a credential may do is in
:mod:`.scopes`. Every refusal is ``AccessDenied`` (403, R2's code and wording); the reason goes to
the metrics, never a token or a secret.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import time
import warnings
from collections import OrderedDict
from typing import Callable, Iterable, NamedTuple

import jwt

from .keys import Key, KeyStore
from .scopes import CredentialRefused, Grant, TemporaryCredential

#: R2's permission levels, as a token's ``scope`` and the API's ``permission`` name them.
SCOPES = ("object-read-only", "object-read-write", "admin-read-only", "admin-read-write")
#: The S3 operations a token's ``actions`` may list (R2's names).
ACTIONS = frozenset({
    "HeadObject", "GetObject", "GetBucketLocation", "ListObjectsV1", "ListObjectsV2", "ListMultipartUploads",
    "ListParts", "PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "CreateMultipartUpload",
    "UploadPart", "UploadPartCopy", "AbortMultipartUpload", "CompleteMultipartUpload",
})
#: R2's action name → the gateway's operation name (gateway/operations.py), where they differ.
ACTION_OPERATIONS = {"ListObjectsV1": "ListObjects"}
MAX_TTL_SECONDS = 604800
TOKEN_PREFIX = "jwt/"
_ALGORITHM = "HS256"



# -- the codec ---------------------------------------------------------------------------------------

def session_token(signed_jwt: str) -> str:
    """``base64("jwt/" + JWT)``."""
    return base64.b64encode((TOKEN_PREFIX + signed_jwt).encode("ascii")).decode("ascii")


def jwt_of(token: str) -> str:
    """The JWT a session token carries; ``CredentialRefused("malformed")`` if it carries none."""
    try:
        raw = base64.b64decode(token.strip(), validate=True)
        text = raw.decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CredentialRefused("malformed") from None
    if not text.startswith(TOKEN_PREFIX) or text.count(".") != 2:
        raise CredentialRefused("malformed")
    return text[len(TOKEN_PREFIX):]


def derived_secret(signed_jwt: str) -> str:
    """The temporary secret access key: lowercase hex SHA-256 of the signed JWT."""
    return hashlib.sha256(signed_jwt.encode("ascii")).hexdigest()


# -- minting -------------------------------------------------------------------------------------------

class Minted(NamedTuple):
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: int          # POSIX seconds

    def __repr__(self) -> str:
        return f"Minted({self.access_key_id!r}, expires_at={self.expires_at})"


_COVERS = {  # a permission → the scopes it may hand out (never more than itself)
    "admin-read-write": frozenset(SCOPES),
    "admin-read-only": frozenset({"admin-read-only", "object-read-only"}),
    "object-read-write": frozenset({"object-read-write", "object-read-only"}),
    "object-read-only": frozenset({"object-read-only"}),
}


def mint(parent: Key, *, bucket: str, scope: str, ttl_seconds: int, audience: str | list[str],
         account_id: str, actions: Iterable[str] | None = None, prefixes: Iterable[str] | None = None,
         objects: Iterable[str] | None = None, now: float | None = None) -> Minted:
    """Temporary credentials of ``parent`` by R2's algorithm. Raises ``ValueError`` (its message
    fit to show) for what R2 would refuse to mint or what would exceed the parent."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if scope not in _COVERS[parent.permission]:
        raise ValueError(f"the parent key ({parent.permission}) cannot grant {scope}")
    if not bucket:
        raise ValueError("a bucket is required")
    if not parent.sees_bucket(bucket):
        raise ValueError(f"the parent key cannot access bucket {bucket}")
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"the TTL must be 1 to {MAX_TTL_SECONDS} seconds")
    if not audience:
        raise ValueError("an audience (the gateway's host name, as clients reach it) is required")
    issued = int(time.time() if now is None else now)
    claims: dict = {"iss": parent.access_key_id, "sub": account_id, "aud": audience, "iat": issued,
                    "exp": issued + ttl_seconds, "bucket": bucket, "scope": scope}
    if actions is not None:
        listed = list(dict.fromkeys(actions))
        unknown = [a for a in listed if a not in ACTIONS]
        if unknown or not listed:
            raise ValueError(f"unknown action(s) {', '.join(unknown)}; known: {', '.join(sorted(ACTIONS))}"
                             if unknown else "actions, when given, must name at least one operation")
        claims["actions"] = listed
    prefixes, objects = list(prefixes or ()), list(objects or ())
    if any(not isinstance(p, str) for p in prefixes + objects):
        raise ValueError("prefixes and objects must be strings")
    if prefixes or objects:
        claims["paths"] = {"prefixPaths": prefixes, "objectPaths": objects}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # PyJWT's advice on short HMAC keys: the key is the operator's
        signed = jwt.encode(claims, parent.secret_access_key, algorithm=_ALGORITHM, headers={"typ": "JWT"})
    return Minted(parent.access_key_id, derived_secret(signed), session_token(signed), issued + ttl_seconds)


# -- verification --------------------------------------------------------------------------------------

def _str_list(value, reason: str = "claims") -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CredentialRefused(reason)
    return tuple(value)


def grant_of(claims: dict) -> Grant:
    """What a verified JWT's claims allow; ``CredentialRefused("claims")`` for claims that do not
    make sense (a credential must name one bucket and a scope or actions)."""
    bucket = claims.get("bucket")
    scope = claims.get("scope")
    if not isinstance(bucket, str) or not bucket or (scope is not None and scope not in SCOPES):
        raise CredentialRefused("claims")
    actions = None
    if "actions" in claims:
        listed = _str_list(claims["actions"])
        if not listed:
            raise CredentialRefused("claims")
        # names the gateway does not know grant nothing (they never match an operation)
        actions = frozenset(ACTION_OPERATIONS.get(a, a) for a in listed if a in ACTIONS)
    if scope is None and actions is None:
        raise CredentialRefused("claims")
    prefixes: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    paths = claims.get("paths")
    if paths is not None:
        if not isinstance(paths, dict):
            raise CredentialRefused("claims")
        prefixes = _str_list(paths.get("prefixPaths", []))
        objects = _str_list(paths.get("objectPaths", []))
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else _str_list(aud, "audience")
    return Grant(bucket=bucket, scope=scope, actions=actions, prefixes=prefixes, objects=frozenset(objects),
                 expires=float(claims["exp"]), audiences=frozenset(a.lower() for a in audiences))


class Verifier:
    """Session token → :class:`TemporaryCredential`, for the keys of one :class:`KeyStore`.

    ``enabled`` False refuses every token. ``audiences``: the gateway's host names a token's ``aud``
    must name one of; empty, the host the request was sent to (virtual-hosted: also its domain,
    for ``virtual_host_domains``). ``skew_seconds`` is allowed on ``exp`` and ``iat``, as on SigV4 dates.
    Verified tokens are cached (at most ``cache_size``, least recently used first out), keyed by
    the SHA-256 of the token; an entry is used only until the token expires and while its parent
    is still configured. Failures are not cached: each costs one HMAC.
    """

    def __init__(self, keys: KeyStore, *, audiences: Iterable[str] = (), account_id: str | None = None,
                 skew_seconds: float = 900, cache_size: int = 10000, enabled: bool = True,
                 virtual_host_domains: Iterable[str] = (), on_refusal: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.domains = tuple(virtual_host_domains)
        self.enabled = enabled
        self.audiences = frozenset(a.lower() for a in audiences)
        self.account_id = account_id
        self.skew = skew_seconds
        self.cache_size = cache_size
        self.on_refusal = on_refusal or (lambda reason: None)
        self.clock = clock
        self._cache: OrderedDict[bytes, TemporaryCredential] = OrderedDict()
        self.misses = 0   # tokens checked with the JWT library (the cache did not have them)

    def __len__(self) -> int:
        """Verified tokens cached now."""
        return len(self._cache)

    def forget(self) -> None:
        """Empty the cache (each token is verified with its JWT again)."""
        self._cache.clear()

    def refuse(self, reason: str) -> CredentialRefused:
        self.on_refusal(reason)
        return CredentialRefused(reason)

    def host_names(self, host: str) -> tuple[str, ...]:
        """The names a request sent to ``host`` reached the gateway by: the host itself and, for a
        virtual-hosted request (``bucket.domain``), the domain (with the port, if any): the
        endpoint's host, which a token's ``aud`` names."""
        host = host.strip().lower()
        name, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
        if not colon or not port.isdigit():
            name, port = host, ""
        return (host, *(d + (":" + port if port else "") for d in self.domains if name.endswith("." + d)))

    def verify(self, token: str, host: str) -> TemporaryCredential:
        """The credential a session token carries, for a request sent to ``host`` (its Host header)."""
        if not self.enabled:
            raise self.refuse("disabled")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cache = self._cache
        cred = cache.get(digest)
        now = self.clock()
        if cred is not None:
            if now > cred.grant.expires + self.skew:
                del cache[digest]
                raise self.refuse("expired")
            if self.keys.get(cred.parent.access_key_id) is not cred.parent:   # removed or changed
                del cache[digest]
                cred = None
            else:
                cache.move_to_end(digest)
        if cred is None:
            try:
                cred = self._check(token, now)
            except CredentialRefused as e:
                self.on_refusal(e.reason)
                raise
            cache[digest] = cred
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
        audiences = cred.grant.audiences
        if self.audiences:
            if self.audiences.isdisjoint(audiences):
                raise self.refuse("audience")
        elif host.lower() not in audiences and not any(h in audiences for h in self.host_names(host)):
            raise self.refuse("audience")
        return cred

    def _check(self, token: str, now: float) -> TemporaryCredential:
        self.misses += 1
        signed = jwt_of(token)
        try:
            unverified = jwt.decode_complete(signed, options={"verify_signature": False})   # who signed it
        except jwt.PyJWTError:
            raise CredentialRefused("malformed") from None
        if unverified["header"].get("alg") != _ALGORITHM:
            raise CredentialRefused("malformed")
        issuer = unverified["payload"].get("iss")
        parent = self.keys.get(issuer) if isinstance(issuer, str) else None
        if parent is None:
            raise CredentialRefused("unknown_parent")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # PyJWT's advice on short HMAC keys
                # the signature and the claims' presence; the times against this verifier's clock below
                claims = jwt.decode(signed, parent.secret_access_key, algorithms=[_ALGORITHM],
                                    options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                                             "verify_nbf": False, "require": ["iss", "aud", "iat", "exp"]})
        except jwt.InvalidSignatureError:
            raise CredentialRefused("signature") from None
        except jwt.PyJWTError:
            raise CredentialRefused("claims") from None
        iat, exp, nbf = claims["iat"], claims["exp"], claims.get("nbf", claims["iat"])
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (iat, exp, nbf)):
            raise CredentialRefused("claims")
        if now > exp + self.skew:
            raise CredentialRefused("expired")
        if iat > now + self.skew or nbf > now + self.skew:
            raise CredentialRefused("not_yet_valid")
        if exp - iat > MAX_TTL_SECONDS:
            raise CredentialRefused("ttl")
        if self.account_id is not None and claims.get("sub") != self.account_id:
            raise CredentialRefused("account")
        return TemporaryCredential(parent, grant_of(claims), derived_secret(signed), self.refuse)
