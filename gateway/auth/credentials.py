"""Who signed a request: a configured key, or a temporary credential derived from one.

The one place a request's key is found. Without a session token the request is verified with the
secret of the key its access key id names, as SigV4 does. With one (``X-Amz-Security-Token``: a
header, or a query parameter of a presigned URL), the token must be an R2 temporary credential
(:mod:`.temporary`): it is verified first, and the signature — header, presigned or aws-chunked —
is then checked with the secret it derives. A token the gateway cannot verify is refused: a
request carrying one is never taken for its parent key's.

Under a profile whose provider has no temporary credentials (its table marks the header ❌), the
token is not read: the signature is verified with the key's own secret, as that provider would,
and the compatibility rules answer the header 501 (a token in a presigned query: here, once the
signature is verified).
"""
from __future__ import annotations

from typing import Mapping
from urllib.parse import unquote, unquote_to_bytes

from ..errors import header_not_implemented
from .canonical import MAX_SKEW_SECONDS, AuthResult
from .keys import Key, KeyStore
from .scopes import TemporaryCredential
from .sigv4 import authenticate
from .temporary import Verifier

_QUERY_TOKEN = "X-Amz-Security-Token"


def query_token(raw_query: str) -> str | None:
    """The ``X-Amz-Security-Token`` query parameter (its name possibly percent-encoded), decoded."""
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        if "%" in name:
            name = unquote_to_bytes(name).decode("utf-8", "replace")
        if name == _QUERY_TOKEN:
            return unquote(value)
    return None


class Credentials:
    """Authenticates requests against ``keys`` and the temporary credentials derived from them."""

    def __init__(self, keys: KeyStore, verifier: Verifier, *, skew_seconds: float = MAX_SKEW_SECONDS,
                 counts: dict[str, int] | None = None, session_tokens: bool = True) -> None:
        self.keys = keys
        self.session_tokens = session_tokens
        self.verifier = verifier
        self.skew = skew_seconds
        # authenticated requests by credential kind ("key", "temporary"), for the metrics
        self.counts = counts if counts is not None else {"key": 0, "temporary": 0}

    @classmethod
    def from_settings(cls, keys: KeyStore, settings, metrics, *, session_tokens: bool = True) -> "Credentials":
        """For a gateway's ``Settings`` (gateway/config.py), counting into its ``Metrics``."""
        tc = settings.temporary_credentials
        skew = settings.limits.clock_skew_seconds
        verifier = Verifier(keys, audiences=tc.audiences, account_id=tc.account_id, skew_seconds=skew,
                            cache_size=tc.cache_size, enabled=tc.enabled, on_refusal=metrics.temporary_refused,
                            virtual_host_domains=[d.lower().strip(".") for d in settings.virtual_host_domains])
        return cls(keys, verifier, skew_seconds=skew, counts=metrics.credential_requests,
                   session_tokens=session_tokens)

    def authenticate(self, method: str, raw_path: str, raw_query: str,
                     headers: Mapping[str, str]) -> tuple[AuthResult, Key | TemporaryCredential]:
        """The verified signature and the key to authorise the request as. Raises S3Error."""
        token = headers.get("x-amz-security-token")
        in_query = None
        if raw_query and ("Security-Token" in raw_query or "%" in raw_query):
            in_query = query_token(raw_query)
        if (token is None and in_query is None) or not self.session_tokens:
            auth = authenticate(method, raw_path, raw_query, headers, self.keys.secret_for,
                                skew_seconds=self.skew)
            if in_query is not None:   # the provider has no such parameter
                raise header_not_implemented("x-amz-security-token", "***")
            self.counts["key"] += 1
            return auth, self.keys.get(auth.access_key_id)
        if token is not None and in_query is not None and token != in_query:
            raise self.verifier.refuse("malformed")
        cred = self.verifier.verify(token if token is not None else in_query, headers.get("host", ""))
        auth = authenticate(method, raw_path, raw_query, headers, cred.secret_for, skew_seconds=self.skew)
        if token is None and not auth.presigned:
            # a header-signed request with the token in its query only: a shape no client sends
            raise self.verifier.refuse("malformed")
        self.counts["temporary"] += 1
        return auth, cred
