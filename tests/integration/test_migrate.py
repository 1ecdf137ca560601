"""``r2-gateway migrate`` between two real stores: Ceph RGW (user A) as the source; the embedded moto
server and a second RGW user's buckets as destinations, each behind a CountingProxy that records
every request the migration makes to it. Everything is checked on the destination directly.

The CLI runs as a subprocess, as in production (signals, exit status, stdout/stderr, report file).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from boto3.s3.transfer import TransferConfig

from ..upstreams.fixtures import s3_client
from .counting_proxy import CountingProxy

pytestmark = pytest.mark.rgw

MiB = 1024 * 1024
SYSTEM = {"ContentType": "text/x-test; charset=utf-8", "CacheControl": "max-age=60", "ContentLanguage": "fr",
          "ContentDisposition": 'attachment; filename="r.txt"', "ContentEncoding": "identity",
          "Expires": "Wed, 21 Oct 2037 07:28:00 GMT"}
SPECIAL = ["sp ace", "plus+sign", "per%cent", "per%25cent", "q?uery", "h#ash", "amp&eq=", "semi;colon:",
           "brackets[]{}", "quote'\"", "tilde~bang!", "star*paren()", "comma,at@dollar$", "back\\slash",
           "dbl//slash", "trailing/", "é", "日本語/ファイル", "emoji😀", "ümlaut/Ä", "tab\tkey", "Ω≈ç√"]
ARGS = ["--multipart-threshold", "8MiB", "--part-size", "5MiB"]


def _rand(n: int, seed: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(8, "big")).digest(n) if n < 1 << 16 else os.urandom(n)


@pytest.fixture(scope="module")
def env(rgw, moto_upstream, tmp_path_factory):
    """Stores, clients, proxies and the config naming them; the source bucket filled once."""
    work = tmp_path_factory.mktemp("migrate")
    ak, sk = rgw.create_user(f"migrate-b-{uuid.uuid4().hex[:6]}")
    proxies = {"rgwb": CountingProxy(rgw.endpoint).start(), "moto": CountingProxy(moto_upstream.endpoint).start()}
    cfg = work / "config.yaml"
    cfg.write_text(json.dumps({
        "upstream": {"endpoint": rgw.endpoint, "access_key_id": rgw.access_key,
                     "secret_access_key": rgw.secret_key, "dialect": "ceph"},
        "upstreams": {
            "rgwb": {"endpoint": proxies["rgwb"].endpoint, "access_key_id": ak, "secret_access_key": sk},
            "moto": {"endpoint": proxies["moto"].endpoint, "access_key_id": moto_upstream.access_key,
                     "secret_access_key": moto_upstream.secret_key},
        },
        "buckets": [{"match": "mig-moto-*", "upstream": "moto", "migrate_from": {"upstream": "default",
                                                                                "bucket": "mig-src"}}],
    }))
    a = s3_client(rgw.endpoint, rgw.access_key, rgw.secret_key)
    ns = type("Env", (), {})()
    ns.work, ns.cfg, ns.proxies = work, cfg, proxies
    ns.a, ns.b = a, s3_client(rgw.endpoint, ak, sk)
    ns.moto = s3_client(moto_upstream.endpoint, moto_upstream.access_key, moto_upstream.secret_key)
    ns.src = "mig-src"
    ns.expected = _fill_source(a, ns.src)
    yield ns
    for p in proxies.values():
        p.stop()


def _fill_source(c, bucket: str) -> dict[str, dict]:
    """~260 objects: empty, small, multipart-sized (one PUT; 5 MiB parts; 6 MiB parts), Unicode and
    special-character keys, user and system metadata. → key: {md5, size, system, meta}."""
    c.create_bucket(Bucket=bucket)
    plans = []
    for i in range(230):
        key = f"{'abcdefghijklnopqrstuvwxyz'[i % 25]}/obj-{i:04d}"
        plans.append((key, _rand((i * 37) % 3000, i), {**SYSTEM} if i % 3 == 0 else {},
                      {"index": str(i), "kind": "small"} if i % 2 == 0 else {}))
    for j, name in enumerate(SPECIAL):
        plans.append((f"special/{name}", _rand(j * 11, 10_000 + j), {"ContentType": "application/x-special"},
                      {"name": "special"}))
    plans.append(("empty", b"", {}, {}))
    plans.append(("zz/empty-with-meta", b"", SYSTEM, {"empty": "yes"}))
    expected = {}

    def put(plan):
        key, body, system, meta = plan
        c.put_object(Bucket=bucket, Key=key, Body=body, Metadata=meta, **system)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, plans))
    bigs = [("m/big-one-put", 12 * MiB, None), ("m/big-parts-5m", 13 * MiB + 7, 5 * MiB),
            ("m/big-parts-6m", 11 * MiB, 6 * MiB)]
    for key, size, part in bigs:
        body = os.urandom(size)
        extra = {"Metadata": {"big": key}, "ContentType": "application/octet-stream", "CacheControl": "no-store"}
        if part is None:
            c.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        else:
            c.upload_fileobj(io.BytesIO(body), bucket, key, ExtraArgs=extra,
                             Config=TransferConfig(multipart_threshold=part, multipart_chunksize=part))
        plans.append((key, body, {"ContentType": "application/octet-stream", "CacheControl": "no-store"},
                      {"big": key}))
    for key, body, system, meta in plans:
        expected[key] = {"md5": hashlib.md5(body).hexdigest(), "size": len(body), "system": system, "meta": meta}
    listed = {o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])}
    assert listed == set(expected)
    return expected


def migrate(env, *args, timeout: float = 240, check_rc: int | None = 0):
    proc = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg), *args],
                          capture_output=True, text=True, timeout=timeout, env=_env())
    if check_rc is not None:
        assert proc.returncode == check_rc, f"exit {proc.returncode}\n{proc.stderr[-6000:]}"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return proc, summary


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}


def report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def listing(client, bucket: str) -> dict[str, dict]:
    return {o["Key"]: o for p in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in p.get("Contents", [])}


def writes_since(proxy: CountingProxy, mark: int, bucket: str) -> list[tuple[str, str, str]]:
    """(method, key, query) of every write the proxy saw for ``bucket`` since ``mark``."""
    out = []
    for method, target in proxy.since(mark):
        path, _, query = target.partition("?")
        parts = urlsplit(path).path.split("/", 2)
        if len(parts) == 3 and unquote(parts[1]) == bucket and method in ("PUT", "POST", "DELETE"):
            out.append((method, unquote(parts[2]), query))
    return out


def object_writes(writes) -> list[str]:
    """The keys whose object was written: a whole PUT, or a multipart upload started."""
    return [k for m, k, q in writes if (m == "PUT" and "uploadId" not in q) or (m == "POST" and q == "uploads=")]


def check_destination(client, bucket: str, expected: dict[str, dict], *, bodies: bool = True) -> None:
    got = listing(client, bucket)
    assert set(got) == set(expected), (set(expected) - set(got), set(got) - set(expected))
    for key, want in expected.items():
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == want["size"], key
        assert head["Metadata"] == want["meta"], key
        for name, value in want["system"].items():
            got_value = head.get(name)
            if name == "Expires":
                got_value = head.get("ExpiresString") or head["ResponseMetadata"]["HTTPHeaders"].get("expires")
            assert got_value == value, (key, name, got_value)
        if bodies:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert hashlib.md5(body).hexdigest() == want["md5"], key


# --- a whole bucket, then again ---------------------------------------------------------------------

def test_copies_a_bucket_then_copies_nothing(env):
    dst = f"mig-moto-{uuid.uuid4().hex[:8]}"
    env.moto.create_bucket(Bucket=dst)
    proxy = env.proxies["moto"]
    mark = proxy.count
    rep = env.work / f"{dst}.jsonl"
    proc, s = migrate(env, "--bucket", dst, "--report", str(rep), "--progress-interval", "0.3", *ARGS)
    n = len(env.expected)
    assert (s["copied"], s["skipped"], s["failed"]) == (n, 0, 0)
    assert s["bytes"] == sum(e["size"] for e in env.expected.values())
    assert (s["source"], s["destination"]) == ("default/mig-src", f"moto/{dst}")
    check_destination(env.moto, dst, env.expected)

    lines = {x["key"]: x for x in report(rep)}
    assert set(lines) == set(env.expected) and {x["result"] for x in lines.values()} == {"copied"}
    # how each was verified: ETag = MD5 end to end; the same 5 MiB cuts: the source's multipart ETag
    # reproduced; other cuts (RGW tells no part size): the destination holds the bytes read
    assert lines["m/big-one-put"]["verified"] == "md5" and lines["empty"]["verified"] == "md5"
    assert lines["m/big-parts-5m"]["verified"] == "etag"
    assert lines["m/big-parts-6m"]["verified"] == "parts"
    # every byte went through the process (small, or in parts): each copy's CRC32 is reported
    assert lines["empty"]["crc32"] == "00000000" and all(len(x["crc32"]) == 8 for x in lines.values())
    assert all(lines[k]["verified"] == "md5" for k in lines if not k.startswith("m/"))
    src = listing(env.a, env.src)
    dst_list = listing(env.moto, dst)
    assert dst_list["m/big-parts-5m"]["ETag"] == src["m/big-parts-5m"]["ETag"]
    # every object written exactly once; each multipart object in parts
    written = object_writes(writes_since(proxy, mark, dst))
    assert sorted(written) == sorted(env.expected)
    # JSON progress lines on stderr (no terminal), then the summary
    progress = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith('{"event":"progress"')]
    assert progress and {"listed", "done", "copied", "failed", "bytes", "mib_per_s", "eta_seconds"} <= set(progress[-1])
    assert progress[-1]["done"] == n

    # second run: nothing is copied, nothing is written
    mark = proxy.count
    _, s = migrate(env, "--bucket", dst, *ARGS)
    assert (s["copied"], s["skipped"], s["equal"], s["failed"], s["bytes"]) == (0, n, n, 0, 0)
    assert writes_since(proxy, mark, dst) == []
    assert {k: v["LastModified"] for k, v in listing(env.moto, dst).items()} == \
        {k: v["LastModified"] for k, v in dst_list.items()}

    # on a terminal: a live bar (rich) on stderr
    out = _on_a_terminal([sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg), "--bucket", dst,
                          "--dry-run", *ARGS])
    assert f"{n}/{n} objects" in out and "0 failed" in out and "mig-src" in out, out[-2000:]


def _on_a_terminal(argv: list[str]) -> str:
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env={**_env(), "COLUMNS": "200", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(60)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


# --- interrupted, then resumed ----------------------------------------------------------------------

def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _start(env, dst: str, rep: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg),
                             "--from", f"default/{env.src}", "--to", f"rgwb/{dst}", "--report", str(rep),
                             *ARGS, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _resume_and_check(env, dst: str, before: dict[str, dict]) -> None:
    """Run again: it finishes, and writes none of the objects that were already there and equal."""
    proxy = env.proxies["rgwb"]
    mark = proxy.count
    _, s = migrate(env, "--from", f"default/{env.src}", "--to", f"rgwb/{dst}", *ARGS)
    rewritten = set(object_writes(writes_since(proxy, mark, dst))) & set(before)
    assert not rewritten, f"copied twice: {sorted(rewritten)[:5]}"
    assert s["failed"] == 0 and s["copied"] + s["skipped"] == len(env.expected)
    assert s["copied"] == len(env.expected) - len(before) and s["equal"] == len(before)
    after = listing(env.b, dst)
    assert {k: after[k]["LastModified"] for k in before} == {k: v["LastModified"] for k, v in before.items()}
    check_destination(env.b, dst, env.expected, bodies=False)
    src = listing(env.a, env.src)
    for key, o in after.items():     # every object copied in one PUT has its source's MD5 ETag
        if not key.startswith("m/"):
            assert o["ETag"] == src[key]["ETag"], key


def test_sigterm_stops_cleanly_and_a_second_run_finishes(env):
    dst = f"mig-term-{uuid.uuid4().hex[:8]}"
    env.b.create_bucket(Bucket=dst)
    rep = env.work / f"{dst}.jsonl"
    port = _free_port()
    proc = _start(env, dst, rep, "--concurrency", "2", "--metrics-listen", f"127.0.0.1:{port}")
    try:
        # stop it while a multipart upload is in progress (the big objects are in the middle)
        _wait(lambda: env.b.list_multipart_uploads(Bucket=dst).get("Uploads"), 120, "a multipart upload")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'r2gw_migrate_objects_total{result="copied"}' in metrics
        assert "r2gw_migrate_in_flight 2.0" in metrics or "r2gw_migrate_in_flight 1.0" in metrics, metrics
        assert "r2gw_migrate_bytes_total" in metrics and "r2gw_migrate_failures_total 0.0" in metrics
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err[-3000:]
    s = json.loads(out.strip().splitlines()[-1])
    assert s["stopped"] is True and s["interrupted"] >= 1 and s["failed"] == 0
    assert 0 < s["copied"] < len(env.expected)
    # the uploads in flight were aborted: nothing partial is left
    assert not env.b.list_multipart_uploads(Bucket=dst).get("Uploads")
    interrupted = [x["key"] for x in report(rep) if x["result"] == "interrupted"]
    assert any(k.startswith("m/big") for k in interrupted)
    before = listing(env.b, dst)
    assert not set(interrupted) & set(before)
    assert {x["key"] for x in report(rep) if x["result"] == "copied"} == set(before)
    _resume_and_check(env, dst, before)


def test_sigkill_then_a_second_run_finishes(env):
    dst = f"mig-kill-{uuid.uuid4().hex[:8]}"
    env.b.create_bucket(Bucket=dst)
    rep = env.work / f"{dst}.jsonl"
    proc = _start(env, dst, rep, "--concurrency", "4")
    try:
        _wait(lambda: rep.exists() and len(rep.read_text().splitlines()) >= 80, 120, "80 objects copied")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # a PUT whose last byte had left when the process died is still stored by RGW: wait until the
    # destination stops changing before taking what the next run must not write again
    before, deadline = listing(env.b, dst), time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = listing(env.b, dst)
        if now.keys() == before.keys():
            break
        before = now
    assert 80 <= len(before) < len(env.expected)
    try:
        _resume_and_check(env, dst, before)
    finally:   # a killed run cannot abort its uploads: the lifecycle rule's job, here the test's
        for up in env.b.list_multipart_uploads(Bucket=dst).get("Uploads", []):
            env.b.abort_multipart_upload(Bucket=dst, Key=up["Key"], UploadId=up["UploadId"])


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- shards -----------------------------------------------------------------------------------------

def test_three_shards_copy_each_key_exactly_once(env):
    dst = f"mig-moto-{uuid.uuid4().hex[:8]}"
    env.moto.create_bucket(Bucket=dst)
    proxy = env.proxies["moto"]
    mark = proxy.count
    reps = [env.work / f"{dst}-{i}.jsonl" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg), "--bucket", dst,
                               "--shard", f"{i}/3", "--report", str(reps[i]), "--concurrency", "4", *ARGS],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for i in range(3)]
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    copied = [{x["key"] for x in report(r) if x["result"] == "copied"} for r in reps]
    assert all(copied) and sum(len(c) for c in copied) == len(env.expected)
    assert set().union(*copied) == set(env.expected)
    assert [s["shard"] for s in summaries] == ["0/3", "1/3", "2/3"]
    assert [s["listed"] for s in summaries] == [len(c) for c in copied]
    written = object_writes(writes_since(proxy, mark, dst))
    assert sorted(written) == sorted(env.expected)          # each key written once, by one shard
    check_destination(env.moto, dst, env.expected, bodies=False)


# --- failures ---------------------------------------------------------------------------------------

def test_a_failing_source_object_is_reported_and_the_exit_status_says_so(env):
    src, dst = f"mig-bad-{uuid.uuid4().hex[:8]}", f"mig-bad-{uuid.uuid4().hex[:8]}"
    env.a.create_bucket(Bucket=src)
    env.moto.create_bucket(Bucket=dst)
    for i in range(5):
        env.a.put_object(Bucket=src, Key=f"ok-{i}", Body=b"fine %d" % i)
    # an SSE-C object: without its key the source refuses to give its bytes
    env.a.put_object(Bucket=src, Key="sse-c", Body=b"secret", SSECustomerAlgorithm="AES256",
                     SSECustomerKey="k" * 32)
    rep = env.work / f"{dst}.jsonl"
    proc, s = migrate(env, "--from", f"default/{src}", "--to", f"moto/{dst}", "--report", str(rep), check_rc=1)
    assert (s["copied"], s["failed"]) == (5, 1)
    (bad,) = [x for x in report(rep) if x["result"] == "failed"]
    assert bad["key"] == "sse-c" and "400" in bad["reason"] and bad["attempts"] == 1
    assert "sse-c" in proc.stderr and '"event":"failed"' in proc.stderr
    assert set(listing(env.moto, dst)) == {f"ok-{i}" for i in range(5)}

    # listed keys: one the source does not have (any more) fails too
    keys = env.work / "keys.txt"
    keys.write_text("ok-1\nvanished\nok-2\n")
    rep2 = env.work / f"{dst}-keys.jsonl"
    _, s = migrate(env, "--from", f"default/{src}", "--to", f"moto/{dst}", "--keys-from", str(keys),
                   "--report", str(rep2), check_rc=1)
    assert (s["listed"], s["skipped"], s["failed"], s["copied"]) == (3, 2, 1, 0)
    assert [x for x in report(rep2) if x["result"] == "failed"] == [
        {"key": "vanished", "result": "failed", "reason": "not in the source (NoSuchKey)"}]


def test_a_source_that_breaks_off_mid_copy_leaves_nothing(env, rgw):
    """A one-PUT copy moved by the kernel (source socket → destination socket): the source resets
    its connection 3 MiB into a 12 MiB body. The destination's PUT is cut mid-body and stores
    nothing (checked on moto directly); the next try copies the object whole."""
    from tests.reliability.faultproxy import Fault, FaultProxy
    src, dst = f"mig-cut-{uuid.uuid4().hex[:8]}", f"mig-cut-{uuid.uuid4().hex[:8]}"
    env.a.create_bucket(Bucket=src)
    env.moto.create_bucket(Bucket=dst)
    body = os.urandom(12 * MiB)
    env.a.put_object(Bucket=src, Key="big", Body=body)
    host, port = rgw.endpoint.removeprefix("http://").split(":")
    faulty = FaultProxy((host, int(port))).start()
    try:
        fault = faulty.add(Fault(match=lambda r: r.method == "GET" and r.target.startswith(f"/{src}/big"),
                                 reset_response_after=3 * MiB, times=1))
        cfg = env.work / f"{src}.json"
        tree = json.loads(env.cfg.read_text())
        tree["upstream"]["endpoint"] = faulty.endpoint
        cfg.write_text(json.dumps(tree))
        rep = env.work / f"{src}.jsonl"
        proc = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(cfg), "--from",
                               f"default/{src}", "--to", f"moto/{dst}", "--retries", "0", "--report", str(rep)],
                              capture_output=True, text=True, timeout=120, env=_env())
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert fault.hits == 1
        (line,) = report(rep)
        assert line["result"] == "failed" and "broke off" in line["reason"], line
        assert listing(env.moto, dst) == {}              # nothing stored, not even a part of it
        proc = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(cfg), "--from",
                               f"default/{src}", "--to", f"moto/{dst}", "--report", str(rep)],
                              capture_output=True, text=True, timeout=120, env=_env())
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = env.moto.get_object(Bucket=dst, Key="big")["Body"].read()
        assert hashlib.md5(got).digest() == hashlib.md5(body).digest()
        # moved by the kernel: no CRC32 of bytes that never passed through the process; the
        # destination checked them against the source's ETag (Content-MD5)
        line = report(rep)[-1]
        assert (line["result"], line["verified"], line.get("crc32")) == ("copied", "md5", None), line
    finally:
        faulty.stop()


def test_unknown_bucket_and_bad_arguments(env):
    proc, s = migrate(env, "--from", "default/no-such-bucket-here", "--to", "moto/x", check_rc=1)
    assert "NoSuchBucket" in s["error"]
    proc = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg), "--from",
                           "nosuchstore/a", "--to", "moto/b"], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2 and "no store named 'nosuchstore'" in proc.stderr


def test_a_reader_of_stdout_that_went_away_changes_nothing_but_stdout(env):
    """``migrate … | head -c0``: the copy is done and said on stderr, exit 0, no traceback."""
    src, dst = f"mig-pipe-{uuid.uuid4().hex[:8]}", f"mig-pipe-{uuid.uuid4().hex[:8]}"
    env.a.create_bucket(Bucket=src)
    env.a.put_object(Bucket=src, Key="k", Body=b"through a closed pipe")
    env.b.create_bucket(Bucket=dst)
    r, w = os.pipe()
    os.close(r)                     # the reader is gone before migrate writes its summary
    try:
        proc = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg), "--from",
                               f"default/{src}", "--to", f"rgwb/{dst}", "--progress", "none"],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=120, env=_env())
    finally:
        os.close(w)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert "copied           1" in proc.stderr
    assert env.b.get_object(Bucket=dst, Key="k")["Body"].read() == b"through a closed pipe"


def test_a_store_on_the_aws_credential_chain_logs_to_stderr_and_stdout_is_the_summary(env):
    """A keyless store takes its keys from the chain (here AWS_* variables) and logs which it found:
    a JSON line on stderr, without the secret; stdout holds the summary alone."""
    cfg = json.loads(env.cfg.read_text())
    b = cfg["upstreams"]["rgwb"]
    chain_cfg = env.work / "chain.yaml"
    chain_cfg.write_text(json.dumps({"upstream": cfg["upstream"],
                                     "upstreams": {"chain": {"endpoint": b["endpoint"], "dialect": "ceph"}}}))
    src, dst = f"mig-chain-{uuid.uuid4().hex[:8]}", f"mig-chain-{uuid.uuid4().hex[:8]}"
    env.a.create_bucket(Bucket=src)
    env.a.put_object(Bucket=src, Key="k", Body=b"keys from the chain")
    env.b.create_bucket(Bucket=dst)
    chain_env = {k: v for k, v in _env().items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    chain_env.update({"AWS_ACCESS_KEY_ID": b["access_key_id"], "AWS_SECRET_ACCESS_KEY": b["secret_access_key"],
                      "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                      "AWS_EC2_METADATA_DISABLED": "true"})
    proc = subprocess.run([sys.executable, "-m", "gateway", "migrate", "--config", str(chain_cfg), "--from",
                           f"default/{src}", "--to", f"chain/{dst}", "--progress", "none"],
                          capture_output=True, text=True, timeout=120, env=chain_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["copied"] == 1, proc.stdout
    found = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "upstream_credentials" and e.get("method") == "env" for e in found), proc.stderr
    assert b["secret_access_key"] not in proc.stderr + proc.stdout
    assert env.b.get_object(Bucket=dst, Key="k")["Body"].read() == b"keys from the chain"


# --- what differs, what is newer, what is extra -------------------------------------------------------

def test_dry_run_then_overwrite_older_keep_newer_delete_extra(env):
    src, dst = f"mig-diff-{uuid.uuid4().hex[:8]}", f"mig-diff-{uuid.uuid4().hex[:8]}"
    env.a.create_bucket(Bucket=src)
    env.b.create_bucket(Bucket=dst)
    env.b.put_object(Bucket=dst, Key="older", Body=b"old destination copy")
    env.b.put_object(Bucket=dst, Key="extra", Body=b"only in the destination")
    time.sleep(1.1)
    for key, body in (("missing", b"new"), ("equal", b"same"), ("older", b"source, written later"),
                      ("newer", b"source, written first")):
        env.a.put_object(Bucket=src, Key=key, Body=body, Metadata={"from": "source"})
    env.b.put_object(Bucket=dst, Key="equal", Body=b"same")
    time.sleep(1.1)
    env.b.put_object(Bucket=dst, Key="newer", Body=b"the application's newer write")
    proxy = env.proxies["rgwb"]
    base = ["--from", f"default/{src}", "--to", f"rgwb/{dst}", "--delete-extra"]

    mark = proxy.count
    rep = env.work / f"{dst}-dry.jsonl"
    _, s = migrate(env, *base, "--dry-run", "--report", str(rep))
    assert (s["would_copy"], s["would_delete"], s["copied"], s["deleted"], s["skipped"]) == (2, 1, 0, 0, 2)
    assert {x["key"]: (x["result"], x["reason"]) for x in report(rep)} == {
        "missing": ("would-copy", "missing"), "older": ("would-copy", "different"),
        "extra": ("would-delete", "not in the source"), "equal": ("skipped", "equal"),
        "newer": ("skipped", "destination newer")}
    assert writes_since(proxy, mark, dst) == []

    rep = env.work / f"{dst}.jsonl"
    _, s = migrate(env, *base, "--verify", "reread", "--report", str(rep))
    assert (s["copied"], s["deleted"], s["skipped"], s["newer"], s["failed"]) == (2, 1, 2, 1, 0)
    lines = {x["key"]: x for x in report(rep)}
    assert lines["older"]["reason"] == "different" and lines["older"]["verified"] == "md5+crc32"
    got = {k: env.b.get_object(Bucket=dst, Key=k)["Body"].read() for k in listing(env.b, dst)}
    assert got == {"missing": b"new", "equal": b"same", "older": b"source, written later",
                   "newer": b"the application's newer write"}
    assert env.b.head_object(Bucket=dst, Key="older")["Metadata"] == {"from": "source"}


# --- memory -----------------------------------------------------------------------------------------

def _peak_rss_mib(argv: list[str]) -> tuple[int, float]:
    """Run ``argv``; its exit status and peak RSS (VmHWM, sampled until it exits)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    proc.stderr.close()
    return proc.returncode, peak / 1024


def test_memory_stays_bounded_whatever_the_object_size(env):
    """A 128 MiB object copied in one streamed PUT and in parts: the process never holds it."""
    src = f"mig-mem-{uuid.uuid4().hex[:8]}"
    env.a.create_bucket(Bucket=src)
    env.a.put_object(Bucket=src, Key="big", Body=os.urandom(128 * MiB))
    base = [sys.executable, "-m", "gateway", "migrate", "--config", str(env.cfg), "--from", f"default/{src}",
            "--progress", "none"]
    peaks = {}
    for name, extra in (("idle", ["--to", f"rgwb/{src}-idle", "--dry-run"]),
                        ("one-put", ["--to", f"rgwb/{src}-one", "--multipart-threshold", "1GiB"]),
                        ("parts", ["--to", f"rgwb/{src}-parts", "--multipart-threshold", "8MiB",
                                   "--part-size", "5MiB", "--part-concurrency", "2"])):
        env.b.create_bucket(Bucket=extra[1].partition("/")[2])
        code, peaks[name] = _peak_rss_mib(base + extra)
        assert code == 0, name
    for name in ("one-put", "parts"):
        dst = f"{src}-one" if name == "one-put" else f"{src}-parts"
        assert env.b.head_object(Bucket=dst, Key="big")["ContentLength"] == 128 * MiB
    # the part buffers (2 x 5 MiB, and the socket's copy of the one being sent) and the stream's
    # buffers: tens of MiB above the idle process, never the object's 128
    assert peaks["one-put"] < peaks["idle"] + 24, peaks
    assert peaks["parts"] < peaks["idle"] + 40, peaks
