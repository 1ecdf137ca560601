"""What authenticating one request costs, in process (no sockets): a key's 1 KiB GET against the
same GET signed with a temporary credential (R2's session token) — cached, as every request after
a token's first is, and uncached (the JWT verified) — and the temporary credential's scope checks.

    .venv/bin/python -m tests.bench.auth_cost [--seconds 2]

CPU time (process_time). Requests are signed by botocore once, then verified again and again (the SigV4 verifier's caches
are warm, as in a steady load). Prints µs per call, medians of 5 runs, and the differences.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from types import SimpleNamespace

import boto3
from botocore.config import Config

from gateway.auth.credentials import Credentials
from gateway.auth.keys import Key, KeyStore
from gateway.auth.temporary import Verifier, mint

HOST = "127.0.0.1:8080"


class _Captured(Exception):
    pass


def _signed_get(ak: str, sk: str, token: str | None) -> tuple[str, str, str, dict[str, str]]:
    client = boto3.client("s3", endpoint_url=f"http://{HOST}", region_name="auto", aws_access_key_id=ak,
                          aws_secret_access_key=sk, aws_session_token=token,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    sent = {}

    def capture(request, **_):
        sent["r"] = request
        raise _Captured

    client.meta.events.register("before-send.s3", capture)
    try:
        client.get_object(Bucket="bench", Key="small/0001")
    except _Captured:
        pass
    r = sent["r"]
    path, _, query = r.url.split(HOST, 1)[1].partition("?")
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in r.headers.items()}
    headers["host"] = HOST
    return r.method, path, query, headers


def _per_call(fn, seconds: float) -> float:
    n, start = 0, time.process_time()
    while True:
        for _ in range(200):
            fn()
        n += 200
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return elapsed / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.auth_cost")
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args(argv)
    key = Key("bench-key", "bench-secret-0123456789abcdef0123456789")
    keys = KeyStore([key])
    creds = Credentials(keys, Verifier(keys))
    m = mint(key, bucket="bench", scope="object-read-write", ttl_seconds=3600, audience=HOST, account_id="bench",
             prefixes=["small/"])
    plain = _signed_get(key.access_key_id, key.secret_access_key, None)
    temp = _signed_get(m.access_key_id, m.secret_access_key, m.session_token)
    cred = creds.authenticate(*temp)[1]
    ex = SimpleNamespace(op="GetObject", key="small/0001", query={}, headers=temp[3], body=None)

    def uncached():
        creds.verifier.forget()
        creds.authenticate(*temp)

    cases = {
        "key: authenticate": lambda: creds.authenticate(*plain),
        "temporary, cached: authenticate": lambda: creds.authenticate(*temp),
        "temporary, uncached: authenticate": uncached,
        "key: authorize": lambda: key.authorize("GetObject", "bench"),
        "temporary: authorize + check_keys": lambda: (cred.authorize("GetObject", "bench"), cred.check_keys(ex)),
    }
    results = {}
    for name, fn in cases.items():
        runs = [_per_call(fn, args.seconds) for _ in range(5)]
        results[name] = statistics.median(runs)
        print(f"{name:<36} {results[name]:7.2f} µs/call (runs {min(runs):.2f}–{max(runs):.2f})", flush=True)
    extra = (results["temporary, cached: authenticate"] + results["temporary: authorize + check_keys"]
             - results["key: authenticate"] - results["key: authorize"])
    print(f"\na cached temporary credential costs {extra:+.2f} µs per request over a key "
          f"(authentication and authorisation); an uncached one "
          f"{results['temporary, uncached: authenticate'] - results['key: authenticate']:+.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
