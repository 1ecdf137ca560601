"""R2's temporary credentials without sockets: the token codec, minting, JWT verification and its
cache, the scopes, and whole requests signed by botocore with a session token through
``Credentials.authenticate``.

Tokens "minted by an application" are made here from R2's documented steps with PyJWT, hashlib
and base64 (``spec_mint``), not with the gateway's code."""
from __future__ import annotations

import base64
import hashlib
import json
import time
from types import SimpleNamespace
from urllib.parse import quote

import boto3
import jwt
import pytest
from botocore.config import Config

from gateway.auth import temporary
from gateway.auth.credentials import Credentials, query_token
from gateway.auth.keys import Key, KeyStore
from gateway.auth.scopes import CredentialRefused, delete_keys
from gateway.auth.temporary import Verifier, derived_secret, jwt_of, mint, session_token
from gateway.errors import S3Error
from tests.unit.test_sigv4 import _Captured, sign_raw, wire

PARENT = Key("PARENTKEY01", "parent-secret-access-key-0123456789abcdef", "object-read-write",
             frozenset({"media", "other"}))
ADMIN = Key("ADMINKEY01", "admin-secret-access-key-0123456789abcdef")
READER = Key("READERKEY01", "reader-secret-access-key-0123456789abcdef", "object-read-only")
HOST = "gw.example:8080"
NOW = int(time.time())


def spec_mint(parent: Key, bucket: str = "media", scope: str | None = "object-read-write", *, ttl: int = 900,
              aud=HOST, iat: int | None = None, actions=None, paths=None, sub: str = "acct", alg: str = "HS256",
              secret: str | None = None, extra: dict | None = None) -> tuple[str, str, str]:
    """R2's "local signing", step by step: (access key id, secret access key, session token)."""
    iat = NOW if iat is None else iat
    claims = {"iss": parent.access_key_id, "sub": sub, "aud": aud, "iat": iat, "exp": iat + ttl, "bucket": bucket}
    if scope is not None:
        claims["scope"] = scope
    if actions is not None:
        claims["actions"] = actions
    if paths is not None:
        claims["paths"] = paths
    claims.update(extra or {})
    key = None if alg == "none" else (secret or parent.secret_access_key)
    signed = jwt.encode(claims, key, algorithm=alg,
                        headers={"alg": alg, "typ": "JWT"})
    return (parent.access_key_id, hashlib.sha256(signed.encode()).hexdigest(),
            base64.b64encode(("jwt/" + signed).encode()).decode())


def verifier(*keys: Key, now: float = NOW, **kw) -> Verifier:
    refusals: list[str] = []
    v = Verifier(KeyStore(list(keys or (PARENT, ADMIN, READER))), clock=lambda: now,
                 on_refusal=refusals.append, **kw)
    v.refusals = refusals
    return v


def refused(fn, *a, **kw) -> str:
    with pytest.raises(CredentialRefused) as info:
        fn(*a, **kw)
    assert info.value.code == "AccessDenied" and info.value.status == 403
    assert info.value.message == "Access Denied"
    return info.value.reason


# -- the codec ---------------------------------------------------------------------------------------

def test_codec_round_trip_and_derived_secret():
    signed = "aaa.bbb.ccc"
    token = session_token(signed)
    assert base64.b64decode(token) == b"jwt/aaa.bbb.ccc"
    assert jwt_of(token) == signed
    assert derived_secret(signed) == hashlib.sha256(b"aaa.bbb.ccc").hexdigest()


@pytest.mark.parametrize("token", ["not base64!", base64.b64encode(b"aaa.bbb.ccc").decode(),
                                   base64.b64encode(b"jwt/aaa.bbb").decode(), base64.b64encode(b"\xff\xfe").decode(),
                                   "", "amd0L2E=x"])
def test_malformed_tokens(token):
    assert refused(jwt_of, token) == "malformed"


# -- minting matches R2's steps ------------------------------------------------------------------------

def test_mint_follows_the_documented_algorithm():
    m = mint(PARENT, bucket="media", scope="object-read-only", ttl_seconds=900, audience=HOST, account_id="acct",
             actions=["GetObject", "HeadObject"], prefixes=["data/"], objects=["shared/a.json"], now=NOW)
    signed = base64.b64decode(m.session_token).decode()
    assert signed.startswith("jwt/")
    signed = signed[4:]
    assert m.access_key_id == PARENT.access_key_id
    assert m.secret_access_key == hashlib.sha256(signed.encode()).hexdigest()
    assert jwt.get_unverified_header(signed) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(signed, PARENT.secret_access_key, algorithms=["HS256"], audience=HOST)
    assert claims == {"iss": PARENT.access_key_id, "sub": "acct", "aud": HOST, "iat": NOW, "exp": NOW + 900,
                      "bucket": "media", "scope": "object-read-only", "actions": ["GetObject", "HeadObject"],
                      "paths": {"prefixPaths": ["data/"], "objectPaths": ["shared/a.json"]}}
    assert m.expires_at == NOW + 900
    assert m.secret_access_key not in repr(m) and m.session_token not in repr(m)


@pytest.mark.parametrize("kw, message", [
    ({"scope": "admin-read-write"}, "cannot grant"),          # beyond the parent's level
    ({"scope": "superuser"}, "scope must be"),
    ({"bucket": "elsewhere"}, "cannot access bucket"),        # beyond the parent's buckets
    ({"bucket": ""}, "bucket is required"),
    ({"ttl_seconds": 0}, "TTL"), ({"ttl_seconds": 604801}, "TTL"), ({"ttl_seconds": 1.5}, "TTL"),
    ({"actions": ["GetObject", "Teleport"]}, "unknown action"), ({"actions": []}, "at least one"),
    ({"audience": ""}, "audience"),
])
def test_mint_refuses_what_exceeds_the_parent_or_r2s_limits(kw, message):
    args = dict(bucket="media", scope="object-read-only", ttl_seconds=60, audience=HOST, account_id="a")
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        mint(PARENT, **args)


def test_mint_scopes_a_read_only_admin_may_grant():
    admin_ro = Key("AR", "x" * 40, "admin-read-only")
    mint(admin_ro, bucket="b", scope="object-read-only", ttl_seconds=60, audience=HOST, account_id="a")
    with pytest.raises(ValueError):
        mint(admin_ro, bucket="b", scope="object-read-write", ttl_seconds=60, audience=HOST, account_id="a")


# -- verification --------------------------------------------------------------------------------------

def test_a_token_minted_by_the_documented_steps_is_accepted():
    ak, sk, token = spec_mint(PARENT, paths={"prefixPaths": ["data/"], "objectPaths": []})
    cred = verifier().verify(token, HOST)
    assert cred.access_key_id == ak == PARENT.access_key_id and cred.parent is PARENT
    assert cred.secret_for(ak) == sk and cred.secret_for("OTHER") is None
    assert cred.grant.bucket == "media" and cred.grant.prefixes == ("data/",)
    assert sk not in repr(cred) and token not in repr(cred)


def test_expiry_and_issue_time_use_the_clock_skew():
    _, _, token = spec_mint(PARENT, iat=NOW - 1000, ttl=900)           # expired 100 s ago
    assert verifier(skew_seconds=900).verify(token, HOST)            # within the skew
    assert refused(verifier(skew_seconds=60).verify, token, HOST) == "expired"
    _, _, future = spec_mint(PARENT, iat=NOW + 600)
    assert verifier(skew_seconds=900).verify(future, HOST)
    assert refused(verifier(skew_seconds=300).verify, future, HOST) == "not_yet_valid"
    _, _, long = spec_mint(PARENT, ttl=604801)
    assert refused(verifier().verify, long, HOST) == "ttl"


def test_a_cached_token_still_expires():
    _, _, token = spec_mint(PARENT, ttl=60)
    clock = [NOW]
    v = Verifier(KeyStore([PARENT]), skew_seconds=0, clock=lambda: clock[0])
    v.verify(token, HOST)
    clock[0] = NOW + 61
    assert refused(v.verify, token, HOST) == "expired"


def test_tampered_tokens_are_refused():
    _, _, token = spec_mint(PARENT, scope="object-read-only")
    header, payload, sig = base64.b64decode(token).decode()[4:].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "object-read-write"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    tampered = base64.b64encode(f"jwt/{header}.{forged}.{sig}".encode()).decode()
    assert refused(verifier().verify, tampered, HOST) == "signature"
    _, _, wrong_key = spec_mint(PARENT, secret="not-the-parent-secret-0123456789abcdef")
    assert refused(verifier().verify, wrong_key, HOST) == "signature"


@pytest.mark.filterwarnings("ignore:The HMAC key")
@pytest.mark.parametrize("alg", ["HS512", "none"])
def test_only_hs256(alg):
    _, _, token = spec_mint(PARENT, alg=alg)
    assert refused(verifier().verify, token, HOST) == "malformed"


def test_unknown_and_removed_parents():
    _, _, token = spec_mint(Key("NOSUCHKEY", "s" * 40))
    assert refused(verifier().verify, token, HOST) == "unknown_parent"
    _, _, token = spec_mint(PARENT)
    v = verifier(PARENT)
    v.verify(token, HOST)
    v.keys = KeyStore([ADMIN])                                          # the parent was removed
    assert refused(v.verify, token, HOST) == "unknown_parent"
    v.keys = KeyStore([Key(PARENT.access_key_id, "a-new-secret-for-the-parent-key-0123", PARENT.permission)])
    assert refused(v.verify, token, HOST) == "signature"            # rotated: the old children end


def test_audience():
    _, _, token = spec_mint(PARENT, aud="GW.example:8080")
    assert verifier().verify(token, "gw.example:8080")
    assert refused(verifier().verify, token, "gw.example:9090") == "audience"
    assert refused(verifier(audiences=["s3.example.com"]).verify, token, HOST) == "audience"
    _, _, listed = spec_mint(PARENT, aud=["a.example", "s3.example.com"])
    assert verifier(audiences=["S3.example.com"]).verify(listed, "anything")
    _, _, no_aud = spec_mint(PARENT, extra={"aud": None})
    assert refused(verifier().verify, no_aud, HOST) in ("claims", "audience")


def test_account_id_when_configured():
    _, _, token = spec_mint(PARENT, sub="acct")
    assert verifier(account_id="acct").verify(token, HOST)
    assert refused(verifier(account_id="other").verify, token, HOST) == "account"


@pytest.mark.parametrize("kw", [
    {"bucket": ""}, {"scope": "root"}, {"scope": None}, {"scope": None, "actions": []},
    {"actions": "GetObject"}, {"actions": [1]}, {"paths": ["data/"]}, {"paths": {"prefixPaths": "data/"}},
    {"extra": {"exp": "tomorrow"}}, {"extra": {"iat": True}},
])
def test_claims_that_make_no_sense_are_refused(kw):
    _, _, token = spec_mint(PARENT, **kw)
    assert refused(verifier().verify, token, HOST) in ("claims", "malformed")


def test_one_jwt_check_per_token_and_a_bounded_cache():
    v = verifier(cache_size=2)
    tokens = [spec_mint(PARENT, ttl=100 + i)[2] for i in range(3)]
    for _ in range(5):
        v.verify(tokens[0], HOST)
    assert v.misses == 1
    v.verify(tokens[1], HOST)
    v.verify(tokens[0], HOST)            # most recently used: tokens[1] is first out
    v.verify(tokens[2], HOST)
    assert len(v) == 2 and v.misses == 3
    v.verify(tokens[0], HOST)
    assert v.misses == 3
    v.verify(tokens[1], HOST)
    assert v.misses == 4
    # failures are not cached (and counted, by reason)
    bad = spec_mint(PARENT, secret="x" * 40)[2]
    for _ in range(2):
        refused(v.verify, bad, HOST)
    assert v.misses == 6 and v.refusals == ["signature", "signature"]


def test_disabled_refuses_every_token():
    _, _, token = spec_mint(PARENT)
    assert refused(verifier(enabled=False).verify, token, HOST) == "disabled"


# -- scopes ----------------------------------------------------------------------------------------------

def cred_for(parent=PARENT, **kw):
    return verifier().verify(spec_mint(parent, **kw)[2], HOST)


def test_exactly_one_bucket():
    cred = cred_for()
    cred.authorize("GetObject", "media")
    assert refused(cred.authorize, "GetObject", "other") == "bucket"   # the parent could
    assert refused(cred.authorize, "CopyObject", "media", "other") == "bucket"
    assert refused(cred.authorize, "ListBuckets", None) == "bucket"
    assert cred.sees_bucket("media") and not cred.sees_bucket("other")


def test_never_beyond_the_parent():
    # an application signs whatever claims it likes with the parent's secret: the parent bounds them
    ro = cred_for(READER, scope="admin-read-write")
    ro.authorize("GetObject", "media")
    assert refused(ro.authorize, "PutObject", "media") == "parent"
    scoped = cred_for(PARENT, bucket="elsewhere", scope="object-read-write")
    assert refused(scoped.authorize, "GetObject", "elsewhere") == "parent"
    assert refused(cred_for(PARENT, scope="admin-read-write").authorize, "PutBucketCors", "media") == "parent"
    assert refused(cred_for(PARENT).authorize, "PutObject", "media", creates_bucket=True) == "parent"


@pytest.mark.parametrize("scope, allowed, denied", [
    ("object-read-only", ["GetObject", "HeadObject", "ListObjectsV2", "ListParts"],
     ["PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "GetBucketCors", "DeleteBucket"]),
    ("object-read-write", ["PutObject", "DeleteObjects", "CopyObject", "UploadPart", "ListObjects"],
     ["PutBucketCors", "GetBucketCors", "DeleteBucket"]),
    ("admin-read-only", ["GetObject", "GetBucketCors", "ListObjectsV2"], ["PutObject", "PutBucketCors"]),
    ("admin-read-write", ["PutObject", "PutBucketCors", "DeleteBucket"], []),
])
def test_r2s_four_scopes(scope, allowed, denied):
    cred = cred_for(ADMIN, scope=scope)
    for op in allowed:
        cred.authorize(op, "media")
    for op in denied:
        assert refused(cred.authorize, op, "media") == "scope", op


def test_actions_narrow_the_scope():
    cred = cred_for(scope="object-read-only", actions=["GetObject", "HeadObject"])
    cred.authorize("GetObject", "media")
    cred.authorize("HeadObject", "media")
    assert refused(cred.authorize, "ListObjectsV2", "media") == "action"
    # both must allow: PutObject is listed, the scope is read-only
    both = cred_for(scope="object-read-only", actions=["GetObject", "PutObject"])
    assert refused(both.authorize, "PutObject", "media") == "scope"
    # actions alone; R2's ListObjectsV1 is ListObjects; names the gateway does not know grant nothing
    alone = cred_for(scope=None, actions=["ListObjectsV1", "PutObject", "HeadBucket"])
    alone.authorize("ListObjects", "media")
    alone.authorize("PutObject", "media")
    assert refused(alone.authorize, "HeadBucket", "media") == "action"
    assert refused(alone.authorize, "ListObjectsV2", "media") == "action"


def exchange(op, key=None, query=None, headers=None, body=None, source=None):
    return SimpleNamespace(op=op, key=key, query=query or {}, headers=headers or {}, body=body,
                           copy_source=lambda: ("media", source, None))


def test_paths_limit_every_key_a_request_touches():
    cred = cred_for(paths={"prefixPaths": ["data/", "up/u1/"], "objectPaths": ["shared/m.json"]})
    assert cred.limits_keys and not cred_for().limits_keys
    assert not cred_for(paths={"prefixPaths": [], "objectPaths": []}).limits_keys   # R2: empty is whole bucket
    for key in ("data/a", "data/", "up/u1/x/y", "shared/m.json"):
        cred.check_keys(exchange("GetObject", key))
    for key in ("dat", "other/data/a", "shared/m.json.bak", "shared/", "up/u10/x", "Data/a"):
        assert refused(cred.check_keys, exchange("PutObject", key)) == "path", key
    # copy: destination and source
    cp = {"x-amz-copy-source": "/media/x"}
    cred.check_keys(exchange("CopyObject", "data/b", headers=cp, source="shared/m.json"))
    assert refused(cred.check_keys, exchange("CopyObject", "data/b", headers=cp, source="secret/x")) == "path"
    assert refused(cred.check_keys, exchange("CopyObject", "secret/b", headers=cp, source="data/a")) == "path"
    assert refused(cred.check_keys, exchange("UploadPartCopy", "data/b", headers=cp, source="x")) == "path"
    # listings: the prefix must be inside a listed prefix
    for op in ("ListObjectsV2", "ListObjects", "ListObjectVersions", "ListMultipartUploads"):
        cred.check_keys(exchange(op, query={"prefix": "data/2026/"}))
        assert refused(cred.check_keys, exchange(op, query={"prefix": "da"})) == "path"
        assert refused(cred.check_keys, exchange(op)) == "path"
    # bucket-level requests that touch no key are the scope's business
    cred.check_keys(exchange("GetBucketLocation"))
    only_objects = cred_for(paths={"objectPaths": ["a.txt"]})
    assert refused(only_objects.check_keys, exchange("ListObjectsV2", query={"prefix": "a.txt"})) == "path"


def delete_body(*keys: str, wrap: str = "Object") -> bytes:
    inner = "".join(f"<{wrap}><Key>{k}</Key></{wrap}>" for k in keys)
    return f'<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</Delete>'.encode()


def test_every_key_of_a_delete_objects_body():
    cred = cred_for(paths={"prefixPaths": ["data/"]})
    cred.check_keys(exchange("DeleteObjects", body=delete_body("data/a", "data/b&amp;c")))
    assert refused(cred.check_keys, exchange("DeleteObjects", body=delete_body("data/a", "other/b"))) == "path"
    # what another parser might read as a key is checked too: anywhere in the document, any namespace
    nested = delete_body("data/a").replace(b"</Delete>", b"<x:Object xmlns:x='y'><x:Key>secret</x:Key></x:Object></Delete>")
    assert refused(cred.check_keys, exchange("DeleteObjects", body=nested)) == "path"
    assert refused(cred.check_keys, exchange("DeleteObjects", body=delete_body("data/<b/>x"))) == "path"
    assert delete_keys(delete_body("data/<!-- c -->x", "data/<![CDATA[y]]>")) == ["data/x", "data/y"]
    with pytest.raises(S3Error) as info:
        cred.check_keys(exchange("DeleteObjects", body=b"<Delete><Object><Key>data/a</Key>"))
    assert info.value.code == "MalformedXML"


# -- whole requests: botocore signs with a session token ---------------------------------------------------

def boto(ak, sk, token, endpoint=f"http://{HOST}"):
    client = boto3.client("s3", region_name="auto", endpoint_url=endpoint, aws_access_key_id=ak,
                          aws_secret_access_key=sk, aws_session_token=token,
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                        retries={"max_attempts": 1, "mode": "standard"}))

    def capture(request, **_):
        raise _Captured(request)

    client.meta.events.register("before-send.s3", capture)
    return client


def sent(client, operation, **params):
    with pytest.raises(_Captured) as info:
        getattr(client, operation)(**params)
    return wire(info.value.request)


def credentials(now=None, **kw):
    keys = KeyStore([PARENT, ADMIN])
    v = Verifier(keys, clock=(lambda: now) if now else time.time, virtual_host_domains=("s3.example",), **kw)
    return Credentials(keys, v)


def test_header_signed_requests_with_a_session_token():
    ak, sk, token = spec_mint(PARENT, iat=int(time.time()))
    creds = credentials()
    auth, cred = creds.authenticate(*sent(boto(ak, sk, token), "get_object", Bucket="media", Key="a/b c"))
    assert auth.access_key_id == PARENT.access_key_id and cred.kind == "temporary" and cred.parent is PARENT
    assert creds.counts == {"key": 0, "temporary": 1}
    # signed with the parent's own secret and a token: the token decides, the signature fails
    with pytest.raises(S3Error) as info:
        creds.authenticate(*sent(boto(ak, PARENT.secret_access_key, token), "get_object", Bucket="media", Key="k"))
    assert info.value.code == "SignatureDoesNotMatch"
    # a token the gateway cannot verify is never "the parent"
    with pytest.raises(CredentialRefused):
        creds.authenticate(*sent(boto(ak, PARENT.secret_access_key, "garbage"), "get_object", Bucket="media",
                                 Key="k"))
    # no token: the configured key, as before
    auth, key = creds.authenticate(*sent(boto(ak, PARENT.secret_access_key, None), "get_object",
                                         Bucket="media", Key="k"))
    assert key is PARENT and creds.counts == {"key": 1, "temporary": 1}


def test_the_token_header_must_be_signed():
    ak, sk, token = spec_mint(PARENT, iat=int(time.time()))
    method, path, query, headers = sent(boto(ak, sk, None), "get_object", Bucket="media", Key="k")
    headers["x-amz-security-token"] = token
    with pytest.raises(S3Error) as info:
        credentials().authenticate(method, path, query, headers)
    assert info.value.code == "AccessDenied" and "not signed" in info.value.message


def test_presigned_urls_with_a_session_token():
    ak, sk, token = spec_mint(PARENT, iat=int(time.time()))
    client = boto(ak, sk, token)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "media", "Key": "a b"}, ExpiresIn=300)
    path, _, query = url.split(HOST, 1)[1].partition("?")
    assert query_token(query) == token
    auth, cred = credentials().authenticate("GET", path, query, {"host": HOST})
    assert auth.presigned and cred.kind == "temporary"
    other = url.replace(quote(token, safe=""), quote(spec_mint(PARENT, iat=int(time.time()), ttl=901)[2], safe=""))
    path, _, query = other.split(HOST, 1)[1].partition("?")
    with pytest.raises(S3Error) as info:
        credentials().authenticate("GET", path, query, {"host": HOST})
    assert info.value.code == "SignatureDoesNotMatch"     # another token derives another secret


def test_a_token_only_in_the_query_of_a_header_signed_request_is_refused():
    """Signed correctly (the token is part of the signed query), but a shape no client sends: the
    query parameter would otherwise travel upstream."""
    ak, sk, token = spec_mint(PARENT, iat=int(time.time()))
    url = f"http://{HOST}/media?list-type=2&X-Amz-Security-Token=" + quote(token, safe="")
    assert refused(credentials().authenticate, *sign_raw("GET", url, secret=sk, ak=ak)) == "malformed"
    headers = {"x-amz-security-token": token}
    assert credentials().authenticate(*sign_raw("GET", url, headers, secret=sk, ak=ak))[1].kind == "temporary"


def test_header_and_query_tokens_that_differ_are_refused():
    ak, sk, token = spec_mint(PARENT, iat=int(time.time()))
    method, path, _, headers = sent(boto(ak, sk, token), "get_object", Bucket="media", Key="k")
    other = spec_mint(PARENT, iat=int(time.time()), ttl=901)[2]
    assert refused(credentials().authenticate, method, path, "X-Amz-Security-Token=" + quote(other), headers) \
        == "malformed"


def test_virtual_hosted_requests_accept_the_endpoints_host():
    creds = credentials()
    names = creds.verifier.host_names
    assert names("Media.S3.Example:8443") == ("media.s3.example:8443", "s3.example:8443")
    assert names("s3.example") == ("s3.example",)
    assert names("[::1]:80") == ("[::1]:80",)
    ak, sk, token = spec_mint(PARENT, aud="s3.example:8443", iat=int(time.time()))
    vclient = boto3.client("s3", region_name="auto", endpoint_url="http://s3.example:8443", aws_access_key_id=ak,
                           aws_secret_access_key=sk, aws_session_token=token,
                           config=Config(s3={"addressing_style": "virtual"}))
    vclient.meta.events.register("before-send.s3", lambda request, **_: (_ for _ in ()).throw(_Captured(request)))
    method, path, query, headers = sent(vclient, "get_object", Bucket="media", Key="k")
    assert headers["host"] == "media.s3.example:8443"
    assert creds.authenticate(method, path, query, headers)[1].kind == "temporary"


# -- configuration -------------------------------------------------------------------------------------------

def test_configuration(tmp_path):
    from gateway import config
    assert config.load(environ={}).temporary_credentials.api.enabled is False           # off by default
    (tmp_path / "token").write_text("a-bearer-token-from-a-file\n")
    (tmp_path / "c.yaml").write_text("temporary_credentials:\n  audiences: [S3.Example.com, '127.0.0.1:8080']\n"
                                     f"  api:\n    enabled: true\n    token_file: {tmp_path / 'token'}\n")
    tc = config.load(tmp_path / "c.yaml", environ={}).temporary_credentials
    assert tc.audiences == ["s3.example.com", "127.0.0.1:8080"]
    assert tc.api.token.get_secret_value() == "a-bearer-token-from-a-file"
    env = {"R2GW_TEMPORARY_CREDENTIALS_API_ENABLED": "true",
           "R2GW_TEMPORARY_CREDENTIALS_API_TOKEN_FILE": str(tmp_path / "token")}
    assert config.load(environ=env).temporary_credentials.api.token.get_secret_value() == "a-bearer-token-from-a-file"
    for bad in ({"R2GW_TEMPORARY_CREDENTIALS_API_ENABLED": "true"},                       # no token
                {"R2GW_TEMPORARY_CREDENTIALS_API_ENABLED": "true", "R2GW_TEMPORARY_CREDENTIALS_API_TOKEN": "short"},
                {"R2GW_TEMPORARY_CREDENTIALS_AUDIENCES": "https://s3.example.com"},
                {"R2GW_TEMPORARY_CREDENTIALS_AUDIENCES": "s3.example.com/path"},
                {"R2GW_TEMPORARY_CREDENTIALS_ACCOUNT_ID": "not an id"},
                {"R2GW_TEMPORARY_CREDENTIALS_CACHE_SIZE": "-1"}):
        with pytest.raises(config.ConfigError) as info:
            config.load(environ=bad)
        assert "temporary_credentials" in str(info.value), bad


def test_a_provider_without_session_tokens_does_not_read_them():
    """Profile provider-b marks X-Amz-Security-Token ❌: the signature is the key's own (a token
    never stands in for it), and a token in a presigned query is answered 501 once verified."""
    from gateway.rules.profile import load_profile

    assert load_profile("r2").session_tokens and not load_profile("provider-b").session_tokens
    keys = KeyStore([PARENT, ADMIN])
    creds = Credentials(keys, Verifier(keys), session_tokens=False)
    ak, sk, token = spec_mint(PARENT, iat=int(time.time()))
    # signed by the key itself with a token beside it: the key's request (the rules refuse the header)
    auth, key = creds.authenticate(*sent(boto(ak, PARENT.secret_access_key, "garbage"), "get_object",
                                         Bucket="media", Key="k"))
    assert key is PARENT and creds.counts == {"key": 1, "temporary": 0}
    # signed with a derived secret: not the key's signature
    with pytest.raises(S3Error) as info:
        creds.authenticate(*sent(boto(ak, sk, token), "get_object", Bucket="media", Key="k"))
    assert info.value.code == "SignatureDoesNotMatch"
    url = boto(ak, PARENT.secret_access_key, token).generate_presigned_url(
        "get_object", Params={"Bucket": "media", "Key": "k"}, ExpiresIn=300)
    path, _, query = url.split(HOST, 1)[1].partition("?")
    with pytest.raises(S3Error) as info:
        creds.authenticate("GET", path, query, {"host": HOST})
    assert (info.value.code, info.value.status) == ("NotImplemented", 501)
    assert "***" in info.value.message and token not in info.value.message
