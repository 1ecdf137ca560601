"""gateway/stores/copy.py driven directly, between two real stores (Ceph RGW and moto), both ways:
single PUT and multipart, metadata carried, create-only, a source that changes or breaks mid-copy,
bounded memory, and the bounded ``Pipe`` body."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import tracemalloc
import uuid

import pytest

from gateway.stores.copy import (ALREADY_PRESENT, COPIED, CopyError, CopyOptions, Location, MiB, copy_object,
                                 metadata_headers)
from gateway.stores.pipe import Budget, Pipe
from gateway.upstream.client import Upstream

pytestmark = pytest.mark.rgw

META = {"ContentType": "text/x-test", "CacheControl": "max-age=7", "ContentDisposition": "attachment; f=a",
        "ContentLanguage": "fr", "ContentEncoding": "identity", "Metadata": {"colour": "blue", "n": "1"}}


def _client(store) -> Upstream:
    return Upstream(store.endpoint, store.access_key, store.secret_key, store.region, transport="lean")


async def _run(coro_fn, *stores):
    clients = [_client(s) for s in stores]
    for c in clients:
        await c.start()
    try:
        return await coro_fn(*clients)
    finally:
        for c in clients:
            await c.close()


@pytest.fixture
def two(rgw_s3, moto_s3):
    """A fresh bucket on each store: {"rgw": (client, name), "moto": (client, name)}."""
    made = {}
    for label, c in (("rgw", rgw_s3), ("moto", moto_s3)):
        name = f"cp-{label}-" + uuid.uuid4().hex[:8]
        c.create_bucket(Bucket=name)
        made[label] = (c, name)
    yield made
    for c, name in made.values():
        for o in c.list_objects_v2(Bucket=name).get("Contents", []):
            c.delete_object(Bucket=name, Key=o["Key"])
        for u in c.list_multipart_uploads(Bucket=name).get("Uploads", []):
            c.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        c.delete_bucket(Bucket=name)


def _stores(rgw, moto_upstream, direction):
    return (rgw, moto_upstream) if direction == "rgw->moto" else (moto_upstream, rgw)


def _labels(direction):
    return ("rgw", "moto") if direction == "rgw->moto" else ("moto", "rgw")


@pytest.mark.parametrize("direction", ["rgw->moto", "moto->rgw"])
@pytest.mark.parametrize("size, opts", [
    (0, CopyOptions()),
    (300_000, CopyOptions()),
    (11 * MiB + 5, CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB, parallel=2, create_only=False)),
], ids=["empty", "single-put", "multipart"])
def test_copy_carries_content_and_metadata(rgw, moto_upstream, two, direction, size, opts):
    src_label, dst_label = _labels(direction)
    (sc, sb), (dc, db) = two[src_label], two[dst_label]
    data = os.urandom(size)
    sc.put_object(Bucket=sb, Key="ünï cødé/k+ey", Body=data, **META)

    async def go(source, dest):
        return await copy_object(source, Location(sb, "ünï cødé/k+ey"), dest, Location(db, "ünï cødé/k+ey"), opts)

    result = asyncio.run(_run(go, *_stores(rgw, moto_upstream, direction)))
    assert result.outcome == COPIED and result.size == size
    assert result.parts == (3 if size > opts.multipart_threshold else 0)
    got = dc.get_object(Bucket=db, Key="ünï cødé/k+ey")
    assert got["Body"].read() == data
    for name, value in META.items():
        assert got[name] == value, name
    assert not dc.list_multipart_uploads(Bucket=db).get("Uploads")


@pytest.mark.parametrize("direction", ["rgw->moto", "moto->rgw"])
def test_create_only_never_overwrites(rgw, moto_upstream, two, direction):
    src_label, dst_label = _labels(direction)
    (sc, sb), (dc, db) = two[src_label], two[dst_label]
    sc.put_object(Bucket=sb, Key="k", Body=b"old")
    dc.put_object(Bucket=db, Key="k", Body=b"newer")

    async def go(source, dest):
        return await copy_object(source, Location(sb, "k"), dest, Location(db, "k"))

    assert asyncio.run(_run(go, *_stores(rgw, moto_upstream, direction))).outcome == ALREADY_PRESENT
    assert dc.get_object(Bucket=db, Key="k")["Body"].read() == b"newer"


def test_create_only_multipart_into_a_store_without_conditional_complete_is_one_put(rgw, moto_upstream, two):
    """RGW ignores If-None-Match on CompleteMultipartUpload: a create-only copy up to 5 GiB is one PUT."""
    (sc, sb), (dc, db) = two["moto"], two["rgw"]
    data = os.urandom(7 * MiB)
    sc.put_object(Bucket=sb, Key="big", Body=data)
    opts = CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB)

    async def go(source, dest):
        return await copy_object(source, Location(sb, "big"), dest, Location(db, "big"), opts)

    result = asyncio.run(_run(go, moto_upstream, rgw))
    assert result.outcome == COPIED and result.parts == 0
    assert dc.get_object(Bucket=db, Key="big")["Body"].read() == data


def test_create_only_multipart_honoured_where_the_store_checks_on_complete(rgw, moto_upstream, two):
    (sc, sb), (dc, db) = two["rgw"], two["moto"]
    data = os.urandom(11 * MiB)
    sc.put_object(Bucket=sb, Key="big", Body=data)
    opts = CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB)

    async def go(source, dest):
        first = await copy_object(source, Location(sb, "big"), dest, Location(db, "big"), opts)
        again = await copy_object(source, Location(sb, "big"), dest, Location(db, "big"), opts)
        return first, again

    first, again = asyncio.run(_run(go, rgw, moto_upstream))
    assert (first.outcome, first.parts, again.outcome) == (COPIED, 3, ALREADY_PRESENT)
    assert hashlib.md5(dc.get_object(Bucket=db, Key="big")["Body"].read()).digest() == hashlib.md5(data).digest()


@pytest.mark.parametrize("multipart", [False, True])
def test_a_changed_or_missing_source_copies_nothing(rgw, moto_upstream, two, multipart):
    (sc, sb), (dc, db) = two["rgw"], two["moto"]
    sc.put_object(Bucket=sb, Key="k", Body=b"v2" * (3 * MiB if multipart else 10))
    opts = CopyOptions(multipart_threshold=5 * MiB, part_size=5 * MiB) if multipart else CopyOptions()
    size = 6 * MiB if multipart else 20

    async def go(source, dest):
        with pytest.raises(CopyError) as changed:
            await copy_object(source, Location(sb, "k"), dest, Location(db, "k"), opts,
                              size=size, etag='"0123456789abcdef0123456789abcdef"')
        with pytest.raises(CopyError) as missing:
            await copy_object(source, Location(sb, "nope"), dest, Location(db, "nope"), opts)
        return changed.value, missing.value

    changed, missing = asyncio.run(_run(go, rgw, moto_upstream))
    assert (changed.reason, changed.code) == ("source_changed", "PreconditionFailed")
    assert (missing.reason, missing.code, missing.status) == ("source_missing", "NoSuchKey", 404)
    assert dc.list_objects_v2(Bucket=db).get("KeyCount") == 0
    assert not dc.list_multipart_uploads(Bucket=db).get("Uploads")


class _BreakingSource:
    """An HTTP server answering every GET/HEAD with a 4 MiB object whose GET body stops after 1 MiB."""

    access_key = secret_key = "x"
    region = "us-east-1"

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head = (b"HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\nETag: \"0123456789abcdef0123456789abcdef\"\r\n"
                    b"Content-Type: text/plain\r\n\r\n")
            if buf.startswith(b"HEAD"):
                conn.sendall(head)
                conn.recv(1)
                return
            conn.sendall(head + b"x" * MiB)


def test_a_source_breaking_mid_stream_leaves_nothing(rgw, two):
    (dc, db) = two["rgw"]
    source = _BreakingSource()

    async def go(src, dest):
        with pytest.raises(CopyError) as e:
            await copy_object(src, Location("any", "k"), dest, Location(db, "k"))
        return e.value

    err = asyncio.run(_run(go, source, rgw))
    source.sock.close()
    assert err.reason in ("source_failed", "connection")
    assert dc.list_objects_v2(Bucket=db).get("KeyCount") == 0


def test_memory_stays_bounded_whatever_the_size(rgw, moto_upstream, two):
    (sc, sb), (dc, db) = two["rgw"], two["moto"]
    data = os.urandom(48 * MiB)
    sc.put_object(Bucket=sb, Key="big", Body=data)
    del data
    opts = CopyOptions(multipart_threshold=8 * MiB, part_size=8 * MiB, parallel=2)

    async def go(source, dest):
        tracemalloc.start()
        try:
            result = await copy_object(source, Location(sb, "big"), dest, Location(db, "big"), opts)
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    result, peak = asyncio.run(_run(go, rgw, moto_upstream))
    assert result.outcome == COPIED and result.parts == 6
    assert peak < 12 * MiB, f"peak {peak / MiB:.1f} MiB for a 48 MiB copy"


# -- pieces ------------------------------------------------------------------------------------------

def test_metadata_headers_are_the_user_and_system_ones():
    got = metadata_headers({"Content-Type": "a/b", "X-Amz-Meta-K": "v", "ETag": '"e"', "Content-Length": "3",
                            "Content-Encoding": "gzip,aws-chunked", "Expires": "x", "x-amz-request-id": "r"})
    assert got == {"content-type": "a/b", "x-amz-meta-k": "v", "content-encoding": "gzip", "expires": "x"}


def test_pipe_never_makes_the_writer_wait_and_fails_when_it_falls_behind():
    async def go():
        budget = Budget(10)
        pipe = Pipe(10, limit=8, budget=budget)
        got = []

        async def reader():
            async for piece in pipe:
                got.append(piece)

        r = asyncio.ensure_future(reader())
        for piece in (b"abc", b"defg", b"hij"):
            assert pipe.offer(piece)
            await asyncio.sleep(0)
        pipe.close()
        await r
        assert b"".join(got) == b"abcdefghij" and budget.used == 0

        slow = Pipe(10, limit=4, budget=budget)       # nobody reads: the fifth byte overflows
        assert slow.offer(b"abcd") and budget.used == 4
        assert not slow.offer(b"e") and slow.overflowed and slow.failed and budget.used == 0
        with pytest.raises(BufferError):
            async for _ in slow:
                pass
        shared = [Pipe(10, limit=8, budget=budget) for _ in range(2)]
        assert shared[0].offer(b"x" * 6) and not shared[1].offer(b"y" * 6)   # the budget, not the limit
        shared[0].abandon()
        assert budget.used == 0 and not shared[0].offer(b"z")

    asyncio.run(go())
