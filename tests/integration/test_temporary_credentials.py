"""R2's temporary credentials end to end: boto3 (header-signed, presigned, aws-chunked) → gateway
→ Ceph RGW. Allowed operations work; every refusal is 403 and leaves nothing on RGW (checked
there directly); credentials minted by the CLI, by the HTTP endpoint and by an independent
implementation of R2's documented steps (``r2_local_sign`` below) are all accepted."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings

import jwt
import pytest
from botocore.exceptions import ClientError

from tests import s3raw
from tests.gateway_process import ROOT, GatewayProcess, remember_secret

KEYS = {  # access key id → (permission, buckets)
    "tc-admin": ("admin-read-write", None),
    "tc-obj-a": ("object-read-write", "A"),
    "tc-ro": ("object-read-only", None),
}
API_TOKEN = "api-bearer-token-" + uuid.uuid4().hex


def secret_of(kid: str) -> str:
    return f"secret-of-{kid}-0123456789abcdef0123456789"


def r2_local_sign(ak: str, sk: str, host: str, bucket: str, scope: str | None = "object-read-write", *,
                  ttl: int = 900, iat: int | None = None, actions=None, paths=None,
                  account: str = "account-1") -> dict[str, str]:
    """R2's "Authenticate against R2 with temporary credentials", local signing, written from the
    documentation: a HS256 JWT signed with the parent secret; the secret is its SHA-256 hex; the
    session token base64("jwt/" + JWT)."""
    iat = int(time.time()) if iat is None else iat
    claims = {"bucket": bucket, "sub": account, "iss": ak, "aud": host, "iat": iat, "exp": iat + ttl}
    if scope is not None:
        claims["scope"] = scope
    if actions:
        claims["actions"] = actions
    if paths is not None:
        claims["paths"] = {"prefixPaths": paths.get("prefixPaths", []), "objectPaths": paths.get("objectPaths", [])}
    with warnings.catch_warnings():   # PyJWT's advice on short HMAC keys (the test keys are short)
        warnings.simplefilter("ignore")
        token = jwt.encode(claims, sk, algorithm="HS256", headers={"alg": "HS256", "typ": "JWT"})
    remember_secret(token)
    return {"aws_access_key_id": ak,
            "aws_secret_access_key": remember_secret(hashlib.sha256(token.encode()).hexdigest()),
            "aws_session_token": remember_secret(base64.b64encode(f"jwt/{token}".encode()).decode())}


@pytest.fixture(scope="module")
def tgw(rgw, tmp_path_factory):
    d = tmp_path_factory.mktemp("tempcred")
    bucket_a, bucket_b = "tc-a-" + uuid.uuid4().hex[:8], "tc-b-" + uuid.uuid4().hex[:8]
    (d / "api-token").write_text(API_TOKEN + "\n")
    lines = ["keys:"]
    for kid, (perm, buckets) in KEYS.items():
        (d / kid).write_text(secret_of(kid) + "\n")
        lines += [f"  - access_key_id: {kid}", f"    secret_access_key_file: {d / kid}", f"    permission: {perm}"]
        if buckets:
            lines.append(f"    buckets: [{bucket_a}]")
    lines += ["temporary_credentials:", "  api:", "    enabled: true", f"    token_file: {d / 'api-token'}"]
    cfg = d / "gateway.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    remember_secret(API_TOKEN)
    gw = GatewayProcess(d, upstream=rgw, config_path=cfg, access_key="", env={"R2GW_LOG_LEVEL": "debug"})
    gw.start()
    gw.config_path = cfg
    gw.host = gw.endpoint.removeprefix("http://")
    gw.buckets = (bucket_a, bucket_b)
    admin = gw.client(access_key="tc-admin", secret_key=secret_of("tc-admin"))
    for name in (bucket_a, bucket_b):
        admin.create_bucket(Bucket=name)
        for key in ("seed", "up/seed", "secret/seed", "exact.txt.seed"):
            admin.put_object(Bucket=name, Key=key, Body=b"seed:" + key.encode())
    gw.admin = admin
    yield gw
    gw.stop()


def client(gw, creds: dict[str, str], https: bool = False):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=gw.https_endpoint if https else gw.endpoint, region_name="auto",
                        verify=gw.ca_bundle if https else None,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
                        **creds)


def temp(gw, kid="tc-obj-a", bucket=None, scope="object-read-write", **kw):
    return client(gw, r2_local_sign(kid, secret_of(kid), gw.host, bucket or gw.buckets[0], scope, **kw))


def on_rgw(rgw_s3, bucket, prefix="") -> set[str]:
    return {o["Key"] for o in rgw_s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


def denied(fn, *a, code="AccessDenied", **kw):
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403, err
    if code:
        assert err["Error"]["Code"] == code, err["Error"]
    return err


def scrape(gw) -> dict[str, float]:
    with urllib.request.urlopen(gw.endpoint + "/metrics") as r:
        text = r.read().decode()
    return {name: float(value) for name, _, value in
            (line.rpartition(" ") for line in text.splitlines() if line and not line.startswith("#"))}


def refusals(gw, reason: str) -> float:
    return scrape(gw).get(f'r2gw_temporary_credential_refusals_total{{reason="{reason}"}}', 0.0)


# -- what a credential may do, it does --------------------------------------------------------------

def test_allowed_operations_reach_rgw(tgw, rgw_s3):
    a, _ = tgw.buckets
    c = temp(tgw, paths={"prefixPaths": ["up/"]})
    c.put_object(Bucket=a, Key="up/one", Body=b"1")
    assert c.get_object(Bucket=a, Key="up/one")["Body"].read() == b"1"
    assert c.head_object(Bucket=a, Key="up/seed")["ContentLength"] == len(b"seed:up/seed")
    assert {o["Key"] for o in c.list_objects_v2(Bucket=a, Prefix="up/")["Contents"]} >= {"up/one", "up/seed"}
    c.copy_object(Bucket=a, Key="up/copy", CopySource={"Bucket": a, "Key": "up/seed"})
    uid = c.create_multipart_upload(Bucket=a, Key="up/mp")["UploadId"]
    etag = c.upload_part(Bucket=a, Key="up/mp", UploadId=uid, PartNumber=1, Body=b"p" * 1024)["ETag"]
    c.complete_multipart_upload(Bucket=a, Key="up/mp", UploadId=uid,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert on_rgw(rgw_s3, a, "up/") >= {"up/one", "up/copy", "up/mp"}
    out = c.delete_objects(Bucket=a, Delete={"Objects": [{"Key": "up/one"}, {"Key": "up/copy"}]})
    assert not out.get("Errors")
    c.delete_object(Bucket=a, Key="up/mp")
    assert on_rgw(rgw_s3, a, "up/") == {"up/seed"}
    assert "LocationConstraint" in c.get_bucket_location(Bucket=a)   # bucket-level, touches no key


# -- each way out of the scope: 403, nothing on RGW -----------------------------------------------------

def test_prefix(tgw, rgw_s3):
    a, _ = tgw.buckets
    c = temp(tgw, paths={"prefixPaths": ["up/"]})
    denied(c.put_object, Bucket=a, Key="elsewhere", Body=b"x")
    denied(c.put_object, Bucket=a, Key="upx", Body=b"x")
    denied(c.get_object, Bucket=a, Key="secret/seed")
    denied(c.copy_object, Bucket=a, Key="up/stolen", CopySource={"Bucket": a, "Key": "secret/seed"})   # source
    denied(c.copy_object, Bucket=a, Key="leaked", CopySource={"Bucket": a, "Key": "up/seed"})       # destination
    denied(c.create_multipart_upload, Bucket=a, Key="outside/mp")
    denied(c.list_objects_v2, Bucket=a)
    denied(c.list_objects_v2, Bucket=a, Prefix="u")
    denied(c.list_objects, Bucket=a, Prefix="secret/")
    denied(c.list_multipart_uploads, Bucket=a)
    assert not on_rgw(rgw_s3, a) & {"elsewhere", "upx", "up/stolen", "leaked"}
    assert not rgw_s3.list_multipart_uploads(Bucket=a).get("Uploads")


def test_delete_objects_checks_every_key_and_deletes_none(tgw, rgw_s3):
    a, _ = tgw.buckets
    tgw.admin.put_object(Bucket=a, Key="up/keep", Body=b"k")
    c = temp(tgw, paths={"prefixPaths": ["up/"]})
    denied(c.delete_objects, Bucket=a, Delete={"Objects": [{"Key": "up/keep"}, {"Key": "secret/seed"}]})
    assert {"up/keep", "secret/seed"} <= on_rgw(rgw_s3, a)          # not even the allowed one


def test_object_paths(tgw, rgw_s3):
    a, _ = tgw.buckets
    c = temp(tgw, paths={"objectPaths": ["exact.txt"]})
    c.put_object(Bucket=a, Key="exact.txt", Body=b"e")
    denied(c.put_object, Bucket=a, Key="exact.txt.bak", Body=b"x")
    denied(c.get_object, Bucket=a, Key="exact.txt.seed")
    denied(c.list_objects_v2, Bucket=a, Prefix="exact.txt")
    assert "exact.txt" in on_rgw(rgw_s3, a) and "exact.txt.bak" not in on_rgw(rgw_s3, a)


def test_actions(tgw, rgw_s3):
    a, _ = tgw.buckets
    c = temp(tgw, scope="object-read-only", actions=["GetObject", "HeadObject"])
    assert c.get_object(Bucket=a, Key="seed")["Body"].read() == b"seed:seed"
    c.head_object(Bucket=a, Key="seed")
    denied(c.list_objects_v2, Bucket=a)
    w = temp(tgw, scope="object-read-write", actions=["GetObject"])
    denied(w.put_object, Bucket=a, Key="by-action", Body=b"x")
    denied(w.delete_object, Bucket=a, Key="seed")
    assert "by-action" not in on_rgw(rgw_s3, a) and "seed" in on_rgw(rgw_s3, a)


def test_bucket(tgw, rgw_s3):
    a, b = tgw.buckets
    c = temp(tgw, kid="tc-admin", bucket=a, scope="admin-read-write")
    c.head_bucket(Bucket=a)
    denied(c.put_object, Bucket=b, Key="other-bucket", Body=b"x")
    denied(c.get_object, Bucket=b, Key="seed")
    denied(c.copy_object, Bucket=a, Key="from-b", CopySource={"Bucket": b, "Key": "seed"})
    denied(c.list_buckets)
    denied(c.create_bucket, Bucket="tc-never-" + uuid.uuid4().hex[:6])
    assert "other-bucket" not in on_rgw(rgw_s3, b) and "from-b" not in on_rgw(rgw_s3, a)


def test_permission_level_and_parent(tgw, rgw_s3):
    a, b = tgw.buckets
    ro = temp(tgw, scope="object-read-only")
    assert ro.get_object(Bucket=a, Key="seed")["Body"].read() == b"seed:seed"
    denied(ro.put_object, Bucket=a, Key="by-ro", Body=b"x")
    denied(ro.delete_object, Bucket=a, Key="seed")
    # the scope an application signs cannot exceed its parent's: read-only parent, admin scope
    beyond = temp(tgw, kid="tc-ro", bucket=a, scope="admin-read-write")
    beyond.get_object(Bucket=a, Key="seed")
    denied(beyond.put_object, Bucket=a, Key="by-ro-parent", Body=b"x")
    denied(beyond.put_bucket_cors, Bucket=a, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]})
    # object-read-write parent limited to bucket A: a token for B is refused, admin scope is refused
    denied(temp(tgw, bucket=b).get_object, Bucket=b, Key="seed")
    denied(temp(tgw, scope="admin-read-write").delete_bucket, Bucket=a)
    assert not on_rgw(rgw_s3, a) & {"by-ro", "by-ro-parent"}
    with pytest.raises(ClientError):
        rgw_s3.get_bucket_cors(Bucket=a)


# -- tokens that are not accepted ------------------------------------------------------------------------

def test_tokens_not_accepted(tgw, rgw_s3):
    a, _ = tgw.buckets
    kid, sk = "tc-obj-a", secret_of("tc-obj-a")
    before = {r: refusals(tgw, r) for r in ("expired", "signature", "audience", "unknown_parent", "malformed")}
    expired = r2_local_sign(kid, sk, tgw.host, a, iat=int(time.time()) - 4000, ttl=60)   # beyond the 15-min skew
    denied(client(tgw, expired).put_object, Bucket=a, Key="by-expired", Body=b"x")
    good = r2_local_sign(kid, sk, tgw.host, a, scope="object-read-only")
    header, payload, sig = base64.b64decode(good["aws_session_token"]).decode()[4:].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "object-read-write"
    forged_jwt = f"{header}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip('=')}.{sig}"
    tampered = {"aws_access_key_id": kid, "aws_secret_access_key": hashlib.sha256(forged_jwt.encode()).hexdigest(),
                "aws_session_token": base64.b64encode(f"jwt/{forged_jwt}".encode()).decode()}
    remember_secret(forged_jwt)
    denied(client(tgw, tampered).put_object, Bucket=a, Key="by-tampered", Body=b"x")
    other_aud = r2_local_sign(kid, sk, "s3.elsewhere.example", a)
    denied(client(tgw, other_aud).put_object, Bucket=a, Key="by-other-aud", Body=b"x")
    unknown = r2_local_sign("tc-gone", "secret-of-a-key-the-gateway-never-had-0123", tgw.host, a)
    denied(client(tgw, unknown).put_object, Bucket=a, Key="by-unknown", Body=b"x")
    garbage = {"aws_access_key_id": kid, "aws_secret_access_key": sk, "aws_session_token": "bm90IGEgand0"}
    denied(client(tgw, garbage).put_object, Bucket=a, Key="by-garbage", Body=b"x")   # never taken for the parent
    after = {r: refusals(tgw, r) for r in before}
    assert all(after[r] == before[r] + 1 for r in before), (before, after)
    assert not on_rgw(rgw_s3, a) & {"by-expired", "by-tampered", "by-other-aud", "by-unknown", "by-garbage"}


def test_a_wrong_derived_secret_is_signature_does_not_match(tgw, rgw_s3):
    a, _ = tgw.buckets
    creds = r2_local_sign("tc-obj-a", secret_of("tc-obj-a"), tgw.host, a)
    creds["aws_secret_access_key"] = secret_of("tc-obj-a")          # the parent's own secret
    denied(client(tgw, creds).put_object, Bucket=a, Key="by-parent-secret", Body=b"x", code="SignatureDoesNotMatch")
    assert "by-parent-secret" not in on_rgw(rgw_s3, a)


# -- presigned URLs and aws-chunked bodies ------------------------------------------------------------------

def test_presigned_urls_with_a_session_token(tgw, rgw_s3):
    a, _ = tgw.buckets
    c = temp(tgw, paths={"prefixPaths": ["up/"]})
    url = c.generate_presigned_url("get_object", Params={"Bucket": a, "Key": "up/seed"}, ExpiresIn=300)
    assert "X-Amz-Security-Token=" in url
    with urllib.request.urlopen(url) as r:
        assert r.read() == b"seed:up/seed"
    put = c.generate_presigned_url("put_object", Params={"Bucket": a, "Key": "up/presigned"}, ExpiresIn=300)
    with urllib.request.urlopen(urllib.request.Request(put, data=b"via url", method="PUT")) as r:
        assert r.status == 200
    assert "up/presigned" in on_rgw(rgw_s3, a)
    outside = c.generate_presigned_url("put_object", Params={"Bucket": a, "Key": "presigned-out"}, ExpiresIn=300)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(outside, data=b"x", method="PUT"))
    assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()
    assert "presigned-out" not in on_rgw(rgw_s3, a)


@pytest.mark.parametrize("mode", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"])
def test_signed_aws_chunked_uploads_use_the_derived_secret(tgw, rgw_s3, mode):
    a, _ = tgw.buckets
    creds = r2_local_sign("tc-obj-a", secret_of("tc-obj-a"), tgw.host, a, paths={"prefixPaths": ["up/"]})
    data = os.urandom(150 * 1024)
    kw = dict(mode=mode, headers={"x-amz-security-token": creds["aws_session_token"]})
    status, _, body = s3raw.put_chunked(tgw.endpoint, a, "up/chunked", data, creds["aws_access_key_id"],
                                        creds["aws_secret_access_key"], **kw)
    assert status == 200, body
    assert rgw_s3.get_object(Bucket=a, Key="up/chunked")["Body"].read() == data
    status, _, body = s3raw.put_chunked(tgw.endpoint, a, "up/tampered", data, creds["aws_access_key_id"],
                                        creds["aws_secret_access_key"], tamper_chunk=1, **kw)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    status, _, body = s3raw.put_chunked(tgw.endpoint, a, "chunked-out", data, creds["aws_access_key_id"],
                                        creds["aws_secret_access_key"], **kw)
    assert status == 403 and b"AccessDenied" in body
    assert not on_rgw(rgw_s3, a) & {"up/tampered", "chunked-out"}


def test_boto3_defaults_over_https_aws_chunked(tgw, rgw_s3):
    a, _ = tgw.buckets
    https_host = tgw.https_endpoint.removeprefix("https://")
    c = client(tgw, r2_local_sign("tc-obj-a", secret_of("tc-obj-a"), https_host, a), https=True)
    seen = []
    c.meta.events.register("before-send.s3.PutObject",
                           lambda request, **_: seen.append(request.headers.get("x-amz-content-sha256")))
    import io
    c.put_object(Bucket=a, Key="up/https", Body=io.BytesIO(b"h" * 70000))
    assert seen and seen[0] in (b"STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"), seen
    assert rgw_s3.get_object(Bucket=a, Key="up/https")["Body"].read() == b"h" * 70000


# -- minting: the CLI and the HTTP endpoint ------------------------------------------------------------------

def mint_cli(tgw, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    return subprocess.run([sys.executable, "-m", "gateway", "credentials", "mint", "--config", str(tgw.config_path),
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_cli_minted_credentials_are_accepted(tgw, rgw_s3):
    a, _ = tgw.buckets
    proc = mint_cli(tgw, "--parent", "tc-obj-a", "--bucket", a, "--scope", "object-read-write", "--prefix", "cli/",
                    "--ttl", "600", "--audience", tgw.host, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    creds = {"aws_access_key_id": out["accessKeyId"], "aws_secret_access_key": remember_secret(out["secretAccessKey"]),
             "aws_session_token": remember_secret(out["sessionToken"])}
    c = client(tgw, creds)
    c.put_object(Bucket=a, Key="cli/by-cli", Body=b"c")
    denied(c.put_object, Bucket=a, Key="by-cli-outside", Body=b"c")
    assert "cli/by-cli" in on_rgw(rgw_s3, a) and "by-cli-outside" not in on_rgw(rgw_s3, a)
    env = mint_cli(tgw, "--parent", "tc-obj-a", "--bucket", a, "--scope", "object-read-only", "--ttl", "60",
                   "--audience", tgw.host, "--format", "env")
    values = dict(line.split("=", 1) for line in env.stdout.split())
    remember_secret(values["AWS_SECRET_ACCESS_KEY"])
    remember_secret(values["AWS_SESSION_TOKEN"])
    ro = client(tgw, {"aws_access_key_id": values["AWS_ACCESS_KEY_ID"],
                      "aws_secret_access_key": values["AWS_SECRET_ACCESS_KEY"],
                      "aws_session_token": values["AWS_SESSION_TOKEN"]})
    assert ro.get_object(Bucket=a, Key="cli/by-cli")["Body"].read() == b"c"
    text = mint_cli(tgw, "--parent", "tc-obj-a", "--bucket", a, "--scope", "object-read-only", "--ttl", "60",
                    "--audience", tgw.host)
    assert text.returncode == 0 and "session token:" in text.stdout
    remember_secret(text.stdout.split("secret access key:")[1].split()[0])
    remember_secret(text.stdout.split("session token:")[1].split()[0])
    for bad, message in ((["--scope", "admin-read-write"], "cannot grant"), (["--bucket", "elsewhere"], "bucket"),
                         (["--parent", "nobody"], "no configured key"), (["--ttl", "604801"], "TTL"),
                         (["--actions", "GetObject,Fly"], "unknown action")):
        args = {"--parent": "tc-obj-a", "--bucket": a, "--scope": "object-read-only", "--ttl": "60"}
        args.update(dict(zip(bad[::2], bad[1::2])))
        proc = mint_cli(tgw, *[x for kv in args.items() for x in kv], "--audience", tgw.host)
        assert proc.returncode == 2 and message in proc.stderr, (bad, proc.stderr)


def api(tgw, body, token=API_TOKEN, path="/accounts/account-1/r2/temp-access-credentials", headers=None):
    req = urllib.request.Request(tgw.endpoint + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_http_endpoint_mints_what_the_gateway_accepts(tgw, rgw_s3):
    a, _ = tgw.buckets
    request = {"bucket": a, "parentAccessKeyId": "tc-obj-a", "permission": "object-read-write", "ttlSeconds": 900,
               "prefixes": ["api/"], "objects": ["api-exact"]}
    status, out, headers = api(tgw, request)
    assert status == 200 and out["success"] is True and out["errors"] == [] and out["messages"] == []
    assert set(out["result"]) == {"accessKeyId", "secretAccessKey", "sessionToken"}
    assert headers.get("Cache-Control") == "no-store"
    r = out["result"]
    c = client(tgw, {"aws_access_key_id": r["accessKeyId"],
                     "aws_secret_access_key": remember_secret(r["secretAccessKey"]),
                     "aws_session_token": remember_secret(r["sessionToken"])})
    c.put_object(Bucket=a, Key="api/by-api", Body=b"a")
    c.put_object(Bucket=a, Key="api-exact", Body=b"a")
    denied(c.put_object, Bucket=a, Key="api-exact2", Body=b"a")
    assert {"api/by-api", "api-exact"} <= on_rgw(rgw_s3, a) and "api-exact2" not in on_rgw(rgw_s3, a)
    # Cloudflare's base path works too
    status, out, _ = api(tgw, request, path="/client/v4/accounts/account-1/r2/temp-access-credentials")
    assert status == 200 and out["success"]
    remember_secret(out["result"]["secretAccessKey"])
    remember_secret(out["result"]["sessionToken"])


@pytest.mark.parametrize("change, status, code", [
    ({"_token": "wrong-token-0123456789"}, 403, 10000),
    ({"_token": ""}, 403, 10000),
    ({"permission": "admin-read-write"}, 400, 1001),          # beyond the parent
    ({"bucket": "elsewhere"}, 400, 1001),                     # the parent cannot reach it
    ({"parentAccessKeyId": "nobody"}, 400, 1001),
    ({"ttlSeconds": 604801}, 400, 1001),
    ({"permission": "everything"}, 400, 1001),
    ({"ttlSeconds": "900"}, 400, 1001),
    ({"surprise": 1}, 400, 1001),
])
def test_http_endpoint_refusals(tgw, change, status, code):
    a, _ = tgw.buckets
    body = {"bucket": a, "parentAccessKeyId": "tc-obj-a", "permission": "object-read-only", "ttlSeconds": 60}
    token = change.pop("_token", API_TOKEN)
    body.update(change)
    got, out, _ = api(tgw, body, token=token)
    assert got == status and out["success"] is False and out["result"] is None
    assert out["errors"][0]["code"] == code and out["errors"][0]["message"]


def test_the_endpoints_path_stays_s3_for_signed_requests(tgw):
    """A SigV4-signed POST to the same path is S3's (POST on an object: 405), never the endpoint's."""
    status, _, body = s3raw.send(tgw.endpoint, "POST", "/accounts/account-1/r2/temp-access-credentials",
                                 s3raw.sign("POST", tgw.endpoint + "/accounts/account-1/r2/temp-access-credentials",
                                            {}, s3raw.EMPTY, "tc-admin", secret_of("tc-admin")))
    assert status == 405 and b"MethodNotAllowed" in body


def test_endpoint_is_off_by_default(gateway):
    req = urllib.request.Request(gateway.endpoint + "/accounts/x/r2/temp-access-credentials", data=b"{}",
                                 method="POST", headers={"Authorization": "Bearer whatever-it-is-0123456789"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code in (400, 403, 405) and e.value.headers.get("Content-Type") == "application/xml"


# -- what the gateway says about them ------------------------------------------------------------------------

def test_access_line_names_the_parent_and_the_kind(tgw):
    a, _ = tgw.buckets
    creds = r2_local_sign("tc-obj-a", secret_of("tc-obj-a"), tgw.host, a)
    c = client(tgw, creds)
    key = "line-" + uuid.uuid4().hex[:8]
    c.put_object(Bucket=a, Key=key, Body=b"l")
    tgw.admin.get_object(Bucket=a, Key=key)
    before = scrape(tgw)
    c.head_object(Bucket=a, Key=key)
    after = scrape(tgw)
    name = 'r2gw_authenticated_requests_total{credential="temporary"}'
    assert after[name] == before[name] + 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in tgw.log_path.read_text().splitlines() if key in line]
        lines = [line for line in lines if line.get("event") == "request"]
        if len(lines) >= 2:
            break
        time.sleep(0.1)
    by_op = {(l["operation"], l["credential"]): l for l in lines}
    assert by_op[("PutObject", "temporary")]["access_key_id"] == "tc-obj-a"
    assert by_op[("GetObject", "key")]["access_key_id"] == "tc-admin"
    log = tgw.log_path.read_text()
    for value in creds.values():
        if value != "tc-obj-a":
            assert value not in log
