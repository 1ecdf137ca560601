"""Requests leave no reference cycles behind: every object a request makes is freed by reference
counting when the request ends, not by a later pass of the cycle collector.

Cyclic garbage costs the gateway on every request (the collector runs more often the more of it
there is, and traverses all of it) and, at a full collection, a pause of tens of milliseconds that
lands on someone's request. A response holding itself (``self.content = self``) or a recursive
closure per request was enough for ~9 cyclic objects per request and ~5 µs of collector time.

The gateway runs in this process (its own server, its upstream transport, Ceph RGW behind it) so
that the collector's garbage can be inspected; the client is the benchmark's raw HTTP client, one
connection per request so that connection setup and teardown are covered too.
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import uuid

import pytest

from gateway import config
from gateway.app import Gateway, build_server
from gateway.auth.keys import Key
from gateway.auth.temporary import mint

from .. import s3raw
from ..bench import loadgen as lg

AK, SK = "gw-cycles-key", "gw-cycles-secret-0123456789abcdef"


def _gateway_garbage() -> list[str]:
    """What the collector would free that the gateway made (DEBUG_SAVEALL keeps it to look at)."""
    found = []
    for o in gc.garbage:
        t = type(o)
        if t.__name__ == "frame":
            where = o.f_code.co_filename
            name = f"frame {o.f_code.co_qualname}"
        elif t.__name__ in ("function", "method"):
            where = getattr(o, "__module__", "") or ""
            name = f"{t.__name__} {getattr(o, '__qualname__', '?')}"
        else:
            where, name = t.__module__, t.__qualname__
        if where.startswith("gateway") or "/gateway/" in where:
            found.append(name)
    return found


def _settings(rgw, transport: str):
    env = {"R2GW_LISTEN": "127.0.0.1:0", "R2GW_ACCESS_KEY_ID": AK, "R2GW_SECRET_ACCESS_KEY": SK,
           "R2GW_UPSTREAM_ENDPOINT": rgw.endpoint, "R2GW_UPSTREAM_REGION": rgw.region,
           "R2GW_UPSTREAM_ACCESS_KEY_ID": rgw.access_key, "R2GW_UPSTREAM_SECRET_ACCESS_KEY": rgw.secret_key,
           "R2GW_UPSTREAM_TRANSPORT": transport, "R2GW_ACCESS_LOG_FLUSH_SECONDS": "0"}
    return config.load(None, environ=env)


async def _exercise(rgw, bucket: str, transport: str) -> list[str]:
    gw = Gateway(_settings(rgw, transport))
    await gw.start()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(build_server(gw), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    s = lg.SigV4(f"http://127.0.0.1:{port}", AK, SK, "auto")
    # a temporary credential of the key, limited to k1 (R2's session tokens); and a tampered one
    m = mint(Key(AK, SK), bucket=bucket, scope="object-read-write", ttl_seconds=600,
             audience=f"127.0.0.1:{port}", account_id="cycles", objects=["k1"])
    t = lg.SigV4(f"http://127.0.0.1:{port}", m.access_key_id, m.secret_access_key, "auto", m.session_token)
    forged = lg.SigV4(f"http://127.0.0.1:{port}", m.access_key_id, m.secret_access_key, "auto",
                      m.session_token[:-8] + "AAAAAAA=")
    body = b"x" * 1024
    ph = hashlib.sha256(body).hexdigest()

    def signed(method: str, target: str) -> bytes:
        """A request with a query string (botocore signs it; the benchmark's signer does not)."""
        h = s3raw.sign(method, f"http://127.0.0.1:{port}{target}", {}, s3raw.EMPTY, AK, SK)
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{k}: {v}" for k, v in h.items() if k.lower() != "host"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def round_trip() -> None:
        assert (await lg.simple(s.addr, s.head("PUT", f"/{bucket}/k1", ph, len(body)), body))[0] == 200
        status, got = await lg.simple(s.addr, s.head("GET", f"/{bucket}/k1"))
        assert (status, got) == (200, body)
        assert (await lg.simple(s.addr, s.head("HEAD", f"/{bucket}/missing")))[0] == 404
        assert (await lg.simple(s.addr, s.head("GET", f"/{bucket}/missing")))[0] == 404
        assert (await lg.simple(s.addr, signed("GET", f"/{bucket}?list-type=2")))[0] == 200
        bad = s.head("GET", f"/{bucket}/k1").replace(b"Signature=", b"Signature=0")
        assert (await lg.simple(s.addr, bad))[0] == 403
        # an operation R2 does not implement: answered 501 by the rules, before the upstream
        assert (await lg.simple(s.addr, signed("GET", f"/{bucket}?acl")))[0] == 501
        # a body that does not match its signed hash: refused, nothing stored
        wrong = s.head("PUT", f"/{bucket}/k2", hashlib.sha256(b"other").hexdigest(), len(body))
        assert (await lg.simple(s.addr, wrong, body))[0] == 400
        # a conditional GET answered by the upstream with 304
        etag = hashlib.md5(body).hexdigest()
        cond = s.head("GET", f"/{bucket}/k1").replace(b"\r\n\r\n", f'\r\nIf-None-Match: "{etag}"\r\n\r\n'.encode())
        assert (await lg.simple(s.addr, cond))[0] == 304
        # temporary credentials: allowed, beyond their paths, a token that does not verify
        assert (await lg.simple(t.addr, t.head("GET", f"/{bucket}/k1")))[0] == 200
        assert (await lg.simple(t.addr, t.head("GET", f"/{bucket}/missing")))[0] == 403
        assert (await lg.simple(forged.addr, forged.head("GET", f"/{bucket}/k1")))[0] == 403

    try:
        await round_trip()            # warm: caches, pools, lazily imported modules
        await asyncio.sleep(0.05)
        gc.collect()
        gc.garbage.clear()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                await round_trip()
            await asyncio.sleep(0.05)   # connections closed by the client are torn down
            gc.collect()
            return _gateway_garbage()
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        listener.close()
        await gw.stop()


@pytest.mark.parametrize("transport", ["lean", "aiohttp"])
def test_requests_leave_no_cyclic_garbage(rgw, rgw_s3, transport):
    bucket = "cyc-" + uuid.uuid4().hex[:10]
    rgw_s3.create_bucket(Bucket=bucket)
    enabled = gc.isenabled()
    gc.disable()      # nothing is collected behind the test's back: all cyclic garbage is seen
    try:
        garbage = asyncio.run(_exercise(rgw, bucket, transport))
    finally:
        if enabled:
            gc.enable()
        for o in rgw_s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            rgw_s3.delete_object(Bucket=bucket, Key=o["Key"])
        rgw_s3.delete_bucket(Bucket=bucket)
    assert garbage == [], f"requests left reference cycles: {sorted(set(garbage))}"
