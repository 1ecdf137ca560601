"""Every gateway log written during the test run is free of every secret the run used — client and
upstream secret keys, SSE-C keys, temporary credentials' session tokens, JWTs and derived secrets —
and of any signature, Authorization header value or JWT.

Marked ``runs_last`` (tests/conftest.py moves it after every other test), so the logs of the whole
run are read. It first sends, through the shared gateway, a request of each kind that carries a
secret — header-signed with an SSE-C key, presigned, aws-chunked with signed chunks, signed with a
wrong secret, signed with a temporary credential (header and presigned) — and checks that those requests are in the log it reads: run alone it still checks
something, and a log that is empty or not written fails it.
"""
from __future__ import annotations

import base64
import os
import re
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from gateway.auth.keys import Key
from gateway.auth.temporary import mint
from tests import s3raw
from tests.gateway_process import LOG_FILES, SECRETS, remember_secret

pytestmark = [pytest.mark.runs_last, pytest.mark.rgw]

FORBIDDEN = [
    re.compile(r"Signature=[0-9a-f]{64}"),              # Authorization header / presigned URL
    re.compile(r"chunk-signature=[0-9a-f]{64}"),
    re.compile(r"AWS4-HMAC-SHA256 Credential=\S+/\d{8}/"),  # a whole Authorization header
    re.compile(r"eyJhbGciOi[A-Za-z0-9_-]*\.eyJ"),          # a JWT (a temporary credential's)
    re.compile(r"and0L2V5[A-Za-z0-9+/]{16}"),               # a session token: base64("jwt/eyJ…")
]


def _secret_bearing_requests(gateway, bucket: str) -> list[str]:
    """One request of each kind that carries a secret; returns the keys they name."""
    s3 = gateway.client()
    probe = "no-secrets-" + uuid.uuid4().hex[:8]
    sse = os.urandom(32)
    remember_secret(base64.b64encode(sse).decode())
    s3.put_object(Bucket=bucket, Key=f"{probe}-sse", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=sse)
    s3.put_object(Bucket=bucket, Key=f"{probe}-plain", Body=b"plain")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f"{probe}-plain"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"plain"
    status, _, answer = s3raw.put_chunked(gateway.endpoint, bucket, f"{probe}-chunked", b"chunked body",
                                          gateway.access_key, gateway.secret_key)
    assert status == 200, answer[:300]
    wrong_secret = remember_secret("not-the-secret-" + uuid.uuid4().hex)
    with pytest.raises(ClientError):
        gateway.client(secret_key=wrong_secret).head_object(Bucket=bucket, Key=f"{probe}-plain")
    m = mint(Key(gateway.access_key, gateway.secret_key), bucket=bucket, scope="object-read-write", ttl_seconds=300,
             audience=gateway.endpoint.removeprefix("http://"), account_id="logs")
    remember_secret(m.secret_access_key)
    remember_secret(m.session_token)
    remember_secret(base64.b64decode(m.session_token).decode()[4:])      # the JWT itself
    import boto3
    from botocore.config import Config
    temp = boto3.client("s3", endpoint_url=gateway.endpoint, region_name="auto", aws_access_key_id=m.access_key_id,
                        aws_secret_access_key=m.secret_access_key, aws_session_token=m.session_token,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    temp.put_object(Bucket=bucket, Key=f"{probe}-temporary", Body=b"t")
    url = temp.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f"{probe}-temporary"},
                                      ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"t"
    return [f"{probe}-sse", f"{probe}-plain", f"{probe}-chunked", f"{probe}-temporary"]


def test_logs_of_the_whole_run_hold_no_secret(gateway, bucket):
    keys = _secret_bearing_requests(gateway, bucket)
    deadline = time.monotonic() + 10      # access lines are written in batches (every 0.1 s)
    while not all(k in gateway.log_path.read_text(errors="replace") for k in keys) and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = [p for p in dict.fromkeys(LOG_FILES) if p.exists()]
    assert gateway.log_path in logs
    own = gateway.log_path.read_text(errors="replace")
    assert all(k in own for k in keys), f"this test's requests are not in {gateway.log_path}"
    assert SECRETS >= {gateway.secret_key}, "the run registered no secrets to look for"
    leaks = []
    for path in logs:
        text = path.read_text(errors="replace")
        leaks += [(path.name, "secret") for s in SECRETS if s in text]
        leaks += [(path.name, pat.pattern) for pat in FORBIDDEN if pat.search(text)]
    assert not leaks, leaks
    print(f"checked {len(logs)} gateway logs for {len(SECRETS)} secrets")
