"""A store configured without keys signs with credentials from the AWS chain (aiobotocore), served
the way the chain reads them in a cluster — not mocked:

- EKS Pod Identity / ECS: ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` + an authorization token file,
  answered by a small HTTP server run here with temporary credentials that are real RGW keys;
  they expire, the gateway refreshes them before they do, and the first key is then revoked on RGW;
- IRSA: ``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``, with a local STS stand-in
  (``AWS_ENDPOINT_URL_STS``) answering AssumeRoleWithWebIdentity.

Every request RGW receives (seen through a recording proxy) carries the session token as a signed
``X-Amz-Security-Token``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import yaml

from tests.gateway_process import GatewayProcess, remember_secret

from .recording_proxy import RecordingProxy

pytestmark = pytest.mark.rgw


class CredentialServer:
    """Answers every request with the next of ``answers`` (the last one repeated): (status, body)."""

    def __init__(self, answers, check=None) -> None:
        self.answers, self.check, self.requests = list(answers), check, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, dict(self.headers), body))
                if owner.check is not None and not owner.check(self.headers, body):
                    status, out = 403, b"{}"
                else:
                    status, out = owner.answers[min(len(owner.requests), len(owner.answers)) - 1]()
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _iso(seconds_from_now: float) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _chain_gateway(tmp_path, proxy, rgw, env) -> GatewayProcess:
    cfg = {"upstream": {"endpoint": proxy.endpoint, "region": rgw.region, "dialect": "ceph"},
           "access_log_flush_seconds": 0}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    gw = GatewayProcess(tmp_path, config_path=tmp_path / "c.yaml", tls=False)
    for name in list(gw.env):       # nothing of this machine's own AWS setup
        if name.startswith("AWS_"):
            del gw.env[name]
    gw.env.update({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                   "AWS_EC2_METADATA_DISABLED": "true", **env})
    return gw


def _signed_tokens(proxy, since: int) -> list[tuple[str, str]]:
    """(access key id, session token) of every request RGW got since ``since``; each one signed."""
    out = []
    for method, target, headers, status in proxy.exchanges[since:]:
        auth = headers.get("authorization", "")
        token = headers.get("x-amz-security-token")
        assert token and "x-amz-security-token" in auth.split("SignedHeaders=")[1].split(",")[0], (method, target)
        out.append((auth.split("Credential=")[1].split("/")[0], token))
    return out


@pytest.fixture
def chain_user(rgw):
    uid = "chain-" + uuid.uuid4().hex[:8]
    first = rgw.create_user(uid)
    second = ("K2" + uuid.uuid4().hex[:18].upper(), uuid.uuid4().hex + uuid.uuid4().hex[:8])
    rgw.admin("key", "create", "--uid", uid, "--key-type", "s3", "--access-key", second[0],
              "--secret-key", second[1])
    for _, secret in (first, second):
        remember_secret(secret)
    return uid, first, second


def test_container_credentials_are_used_refreshed_before_expiry_and_survive_revocation(rgw, tmp_path, chain_user):
    uid, (ak1, sk1), (ak2, sk2) = chain_user
    (tmp_path / "pod-token").write_text("eks-pod-identity-token")

    def creds(ak, sk, token, expires_in):
        return lambda: (200, json.dumps({"AccessKeyId": ak, "SecretAccessKey": sk, "Token": token,
                                         "Expiration": _iso(expires_in)}).encode())

    # the first credentials expire in 15 min 8 s: botocore's advisory refresh window opens in 8 s
    server = CredentialServer([creds(ak1, sk1, "session-one", 15 * 60 + 8), creds(ak2, sk2, "session-two", 3600)],
                              check=lambda h, _: h.get("Authorization") == "eks-pod-identity-token")
    proxy = RecordingProxy(rgw.endpoint).start()
    gw = _chain_gateway(tmp_path, proxy, rgw, {"AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url + "/v1/credentials",
                                               "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tmp_path / "pod-token")})
    bucket = "chain-" + uuid.uuid4().hex[:8]
    try:
        gw.start()
        c = gw.client()
        c.create_bucket(Bucket=bucket)
        c.put_object(Bucket=bucket, Key="k", Body=b"signed by the chain")
        assert set(_signed_tokens(proxy, 0)) == {(ak1, "session-one")}
        deadline = time.monotonic() + 30
        while "upstream_credentials_refreshed" not in gw.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(server.requests) >= 2, "the credentials were never refreshed"
        rgw.admin("key", "rm", "--uid", uid, "--key-type", "s3", "--access-key", ak1)
        mark = len(proxy.exchanges)
        assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"signed by the chain"
        assert set(_signed_tokens(proxy, mark)) == {(ak2, "session-two")}
        log = gw.log_path.read_text()
        assert sk1 not in log and sk2 not in log and "session-two" not in log
        c.delete_object(Bucket=bucket, Key="k")
        c.delete_bucket(Bucket=bucket)
    finally:
        gw.stop()
        proxy.stop()
        server.stop()


def test_web_identity_irsa_through_a_local_sts(rgw, tmp_path, chain_user):
    uid, (ak1, sk1), _ = chain_user
    (tmp_path / "sa-token").write_text("a-projected-service-account-token")
    xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{ak1}</AccessKeyId>
<SecretAccessKey>{sk1}</SecretAccessKey><SessionToken>irsa-session</SessionToken>
<Expiration>{_iso(3600)}</Expiration></Credentials>
<SubjectFromWebIdentityToken>system:serviceaccount:apps:r2-gateway</SubjectFromWebIdentityToken>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r2gw/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId>
</AssumedRoleUser></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>""".encode()

    def assume_role(headers, body):
        form = parse_qs(body.decode())
        return (form.get("Action") == ["AssumeRoleWithWebIdentity"]
                and form.get("WebIdentityToken") == ["a-projected-service-account-token"]
                and form.get("RoleArn") == ["arn:aws:iam::123456789012:role/r2gw"])

    sts = CredentialServer([lambda: (200, xml)], check=assume_role)
    proxy = RecordingProxy(rgw.endpoint).start()
    gw = _chain_gateway(tmp_path, proxy, rgw, {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/r2gw",
                                               "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "sa-token"),
                                               "AWS_ENDPOINT_URL_STS": sts.url, "AWS_REGION": "us-east-1"})
    try:
        gw.start()
        assert len(gw.client().list_buckets()["Buckets"]) >= 0
        assert sts.requests and set(_signed_tokens(proxy, 0)) == {(ak1, "irsa-session")}
    finally:
        gw.stop()
        proxy.stop()
        sts.stop()


def test_a_keyless_store_with_nothing_in_the_chain_refuses_to_start(rgw, tmp_path):
    proxy = RecordingProxy(rgw.endpoint).start()
    gw = _chain_gateway(tmp_path, proxy, rgw, {})
    try:
        with pytest.raises(RuntimeError) as e:
            gw.start(timeout=30)
        assert "AWS credential chain found none" in str(e.value)
        assert gw.proc.returncode == 2
    finally:
        gw.stop()
        proxy.stop()
