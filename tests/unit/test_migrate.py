"""The bulk migration's pure parts: what to do with a key, shards, ETags, sizes, the keys file, the
merge of two listings, the byte budget, the report and the command line's checks."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import types
import zlib

import orjson
import pytest

from gateway import config
from gateway.migrate import listing, verify
from gateway.migrate.command import UsageError, build_job, parse_size
from gateway.migrate.copy import ByteBudget
from gateway.migrate.plan import COPY, DELETE, NONE, SKIP, Shard, decide
from gateway.migrate.report import Recorder
from gateway.migrate.stores import ObjectInfo

MD5_A = hashlib.md5(b"a").hexdigest()
MD5_B = hashlib.md5(b"b").hexdigest()
MULTI = "0" * 32 + "-3"


def obj(key="k", size=1, etag=MD5_A, lm=1000.0):
    return ObjectInfo(key, size, etag, lm)


@pytest.mark.parametrize("src, dst, delete_extra, action, reason", [
    (obj(), None, False, COPY, "missing"),
    (None, obj(), False, NONE, "not in the source"),
    (None, obj(), True, DELETE, "not in the source"),
    (obj(), obj(lm=10.0), False, SKIP, "equal"),                         # same ETag: equal whatever the dates
    (obj(etag=MULTI, size=9), obj(etag="f" * 32 + "-2", size=9, lm=2000.0), False, SKIP, "equal"),
    (obj(etag=MULTI, size=9, lm=3000.5), obj(etag="f" * 32 + "-2", size=9, lm=2000.0), False, COPY, "source newer"),
    (obj(etag=MD5_A), obj(etag=MD5_B, lm=2000.0), False, SKIP, "destination newer"),
    (obj(etag=MD5_A, lm=2000.0), obj(etag=MD5_B, lm=1000.0), False, COPY, "different"),
    (obj(size=2, lm=2000.0), obj(size=1, lm=1000.0), False, COPY, "different"),
    (obj(lm=1000.9), obj(etag=MD5_B, lm=1000.1), False, SKIP, "destination newer"),   # to the second
])
def test_decide(src, dst, delete_extra, action, reason):
    d = decide(src, dst, delete_extra)
    assert (d.action, d.reason) == (action, reason)
    assert d.replace_etag == (dst.etag if action == COPY and dst is not None else None)


def test_shards_are_disjoint_and_complete():
    keys = [f"key-{i}/é-{i * 7}" for i in range(3000)]
    shards = [Shard(i, 3) for i in range(3)]
    owners = [[s for s in shards if k in s] for k in keys]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(1 for o in owners if o[0] is s) for s in shards]
    assert all(800 < n < 1200 for n in sizes), sizes           # a hash, not a split by position
    # stable: the same key is in the same shard on every machine (sha256 of its UTF-8)
    assert ("a" in Shard(int.from_bytes(hashlib.sha256(b"a").digest()[:8], "big") % 5, 5))
    assert all(k in Shard() for k in keys[:10])


@pytest.mark.parametrize("text", ["1/1", "3/3", "-1/3", "a/3", "1", "0/0", ""])
def test_shard_parse_refuses(text):
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_shard_parse():
    assert Shard.parse("2/5") == Shard(2, 5) and str(Shard.parse("0/1")) == "0/1"


def test_etags():
    assert verify.plain_md5(MD5_A) and not verify.plain_md5(MULTI) and not verify.plain_md5("")
    assert verify.multipart_count(MULTI) == 3 and verify.multipart_count(MD5_A) is None
    assert verify.same_content(1, MD5_A, 1, MD5_A) is True
    assert verify.same_content(1, MD5_A, 1, MD5_B) is False
    assert verify.same_content(1, MD5_A, 2, MD5_A) is False
    assert verify.same_content(1, MULTI, 1, MD5_A) is None
    assert verify.etag_is_md5(MD5_A, {})
    assert not verify.etag_is_md5(MD5_A, {"x-amz-server-side-encryption": "aws:kms"})
    assert not verify.etag_is_md5(MD5_A, {"x-amz-server-side-encryption-customer-algorithm": "AES256"})
    assert verify.etag_is_md5(MD5_A, {"x-amz-server-side-encryption": "AES256"})
    parts = [b"x" * 10, b"y" * 3]
    digests = [hashlib.md5(p).digest() for p in parts]
    assert verify.multipart_etag(digests) == hashlib.md5(b"".join(digests)).hexdigest() + "-2"


def test_carried_headers():
    got = verify.carried_headers({"content-type": "text/plain", "cache-control": "no-cache", "expires": "x",
                                  "content-disposition": "inline", "content-encoding": "gzip",
                                  "content-language": "fr", "x-amz-meta-a": "1", "etag": "e",
                                  "x-amz-server-side-encryption": "AES256", "content-length": "5"})
    assert got == {"content-type": "text/plain", "cache-control": "no-cache", "expires": "x",
                   "content-disposition": "inline", "content-encoding": "gzip", "content-language": "fr",
                   "x-amz-meta-a": "1"}


def test_tap_digests_in_order():
    seen = []
    tap = verify.Tap(md5=True, on_bytes=seen.append)
    for piece in (b"hello ", b"", b"world"):
        tap.feed(piece)
    assert tap.size == 11 and seen == [6, 0, 5]
    assert tap.md5_hex == hashlib.md5(b"hello world").hexdigest()
    assert tap.crc == zlib.crc32(b"hello world") and tap.crc_hex == f"{zlib.crc32(b'hello world'):08x}"


def test_tap_counts_bytes_the_kernel_moved_without_a_digest():
    seen = []
    tap = verify.Tap(on_bytes=seen.append)
    tap.moved(1000)
    tap.moved(24)
    assert tap.size == 1024 and seen == [1000, 24] and tap.crc is None and tap.crc_hex == ""


def test_a_body_that_sends_itself_is_not_iterated():
    """``write_body`` lets a body with ``splice_into`` send itself (True), or iterates it (False)."""
    from gateway.upstream.body_writer import write_body

    class Conn:
        closed = write_paused = writing = False

        def __init__(self):
            self.sent = []
            self.transport = type("T", (), {"write": lambda _, data: self.sent.append(bytes(data))})()

    class Body:
        def __init__(self, spliced):
            self.spliced, self.iterated = spliced, False

        async def splice_into(self, conn, head):
            if self.spliced:
                conn.transport.write(head + b"<kernel>")
            return self.spliced

        async def _pieces(self):
            self.iterated = True
            yield b"piece"

        def __aiter__(self):
            return self._pieces().__aiter__()

    for spliced, wire in ((True, [b"HEAD<kernel>"]), (False, [b"HEADpiece"])):
        conn, body = Conn(), Body(spliced)
        asyncio.run(write_body(conn, b"HEAD", body))
        assert conn.sent == wire and body.iterated is not spliced


def test_reported_crc32():
    value = base64.b64encode(zlib.crc32(b"abc").to_bytes(4, "big")).decode()
    assert verify.reported_crc32({"x-amz-checksum-crc32": value}) == zlib.crc32(b"abc")
    assert verify.reported_crc32({"x-amz-checksum-crc32": value, "x-amz-checksum-type": "COMPOSITE"}) is None
    assert verify.reported_crc32({"x-amz-checksum-crc32": "not base64!"}) is None
    assert verify.reported_crc32({}) is None


@pytest.mark.parametrize("text, n", [("0", 0), ("5MiB", 5 << 20), ("16m", 16 << 20), ("1 GiB", 1 << 30),
                                     ("300k", 300 << 10), ("7", 7)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "5 TiB", "-1", "1.5M", "M"])
def test_parse_size_refuses(text):
    with pytest.raises(UsageError):
        parse_size(text)


def test_keys_file(tmp_path):
    p = tmp_path / "keys.txt"
    p.write_bytes("a b\n\nc/é\r\na b\n  lead\nlast".encode())
    assert list(listing.keys_file(p)) == ["a b", "c/é", "  lead", "last"]


async def _collect(agen):
    return [x async for x in agen]


def test_merged_listings():
    async def gen(keys):
        for k in keys:
            yield obj(k)
    out = asyncio.run(_collect(listing.merged(gen(["a", "c", "d", "é"]), gen(["b", "c", "é", "z"]))))
    assert [(k, s is not None, d is not None) for k, s, d in out] == [
        ("a", True, False), ("b", False, True), ("c", True, True), ("d", True, False), ("é", True, True),
        ("z", False, True)]


def test_prefetched_pages_and_order_check():
    pages = {None: ([obj("a"), obj("b")], "t1"), "t1": ([obj("c")], None)}

    async def page(token):
        return pages[token]
    assert [o.key for o in asyncio.run(_collect(listing.prefetched(page, "x")))] == ["a", "b", "c"]
    pages["t1"] = ([obj("a")], None)
    with pytest.raises(listing.ListingError, match="out of order"):
        asyncio.run(_collect(listing.prefetched(page, "x")))


def test_byte_budget_bounds_what_is_alive():
    async def main():
        budget = ByteBudget(10)
        alive, peak = 0, 0

        async def use(n):
            nonlocal alive, peak
            await budget.acquire(n)
            alive += n
            peak = max(peak, alive)
            await asyncio.sleep(0.01)
            alive -= n
            await budget.release(n)
        await asyncio.gather(*(use(n) for n in (4, 4, 4, 6, 3, 25, 1)))
        return peak, budget.used
    peak, used = asyncio.run(main())
    assert used == 0
    assert peak == 25                 # one part larger than the budget still goes, alone


def test_recorder_counts_and_writes_lines():
    out = io.BytesIO()
    r = Recorder(out)
    seen = []
    r.listeners.append(lambda result, line: seen.append(result))
    r.record("a", "copied", "missing", size=5, etag="e", verified="md5")
    r.record("b", "skipped", "equal", size=1)
    r.record("c", "skipped", "destination newer")
    r.record("d", "failed", "403 AccessDenied")
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert [x["key"] for x in lines] == ["a", "b", "c", "d"]
    assert lines[0] == {"key": "a", "result": "copied", "reason": "missing", "size": 5, "etag": "e", "verified": "md5"}
    s = r.summary(source="s", destination="d")
    assert (s["copied"], s["skipped"], s["failed"], s["bytes"], s["equal"], s["newer"]) == (1, 2, 1, 5, 1, 1)
    assert seen == ["copied", "skipped", "skipped", "failed"]
    assert r.tally.failures == [("d", "403 AccessDenied")]


def _args(**kw):
    base = dict(bucket=None, source=None, to=None, prefix="", keys_from=None, concurrency=4, shard=None,
                dry_run=False, delete_extra=False, part_size="16MiB", multipart_threshold="64MiB",
                part_concurrency=8, verify="auto", retries=3)
    base.update(kw)
    return types.SimpleNamespace(**base)


SETTINGS = config.Settings.model_validate({
    "upstream": {"endpoint": "http://127.0.0.1:1", "access_key_id": "a", "secret_access_key": "b"},
    "upstreams": {"old": {"endpoint": "http://127.0.0.1:2", "access_key_id": "c", "secret_access_key": "d"}},
    "buckets": [{"match": "media", "migrate_from": {"upstream": "old", "bucket": "media-2019"}},
                {"match": "logs-*", "upstream": "old"}],
})


def test_build_job_from_the_bucket_rule():
    job = build_job(SETTINGS, _args(bucket="media", shard="1/4"))
    assert (job.source, job.source_bucket, job.destination, job.destination_bucket) == ("old", "media-2019",
                                                                                        "default", "media")
    assert job.shard == Shard(1, 4)
    job = build_job(SETTINGS, _args(source="old/a", to="default/b", part_size="8MiB"))
    assert (job.source_name, job.destination_name, job.part_size) == ("old/a", "default/b", 8 << 20)


@pytest.mark.parametrize("kw, message", [
    (dict(bucket="logs-1"), "no `buckets` rule with migrate_from"),
    (dict(), "give --bucket"),
    (dict(bucket="media", source="old/a", to="default/b"), "either --bucket"),
    (dict(source="old", to="default/b"), "STORE/BUCKET"),
    (dict(source="old/a", to="old/a"), "the source is the destination"),
    (dict(bucket="media", keys_from="k", delete_extra=True), "--delete-extra"),
    (dict(bucket="media", shard="3/3"), "--shard"),
    (dict(bucket="media", part_size="1MiB"), "--part-size"),
    (dict(bucket="media", concurrency=0), "--concurrency"),
])
def test_build_job_refuses(kw, message):
    with pytest.raises(UsageError, match=message):
        build_job(SETTINGS, _args(**kw))


def test_a_spliced_copy_whose_etag_proves_nothing_is_read_back():
    """A one-PUT copy the kernel moved has no digest of its own: when the destination's ETag is not
    the source's MD5 (SSE-KMS there, or no ETag), the copy read back must hash to it, or it is
    deleted and the copy fails."""
    from gateway.migrate.copy import ByteBudget, Copier, CopyError, Settings

    class Content:
        def __init__(self, data):
            self.data = data

        async def iter_any(self):
            for i in range(0, len(self.data), 3):
                yield self.data[i:i + 3]

    class Dst:
        def __init__(self, data):
            self.data, self.deleted = data, []

        async def get(self, bucket, key):
            return type("R", (), {"content": Content(self.data), "release": lambda _: None})()

        async def delete(self, bucket, key):
            self.deleted.append((bucket, key))

    cfg = Settings(part_size=5 << 20, threshold=200 << 20, reread=False, budget=ByteBudget(1 << 20))
    body = b"the bytes that were moved"
    good = Dst(body)
    assert asyncio.run(Copier(None, "s", good, "d", cfg)._reread_md5("k", len(body),
                                                                     hashlib.md5(body).hexdigest())) == "md5"
    assert good.deleted == []
    bad = Dst(body[:-1] + b"!")
    with pytest.raises(CopyError, match="re-read"):
        asyncio.run(Copier(None, "s", bad, "d", cfg)._reread_md5("k", len(body), hashlib.md5(body).hexdigest()))
    assert bad.deleted == [("d", "k")]


def test_an_upload_created_after_its_copy_was_stopped_is_aborted_before_the_stores_close(monkeypatch):
    """A stop during a CreateMultipartUpload slower than the grace: the copy gives up waiting, and
    ``Copier.settle`` (run before the stores close) still sees the upload made and aborts it."""
    from gateway.migrate import copy as copy_mod
    monkeypatch.setattr(copy_mod, "CREATE_GRACE", 0.05)
    aborted: list[tuple[str, str]] = []

    class SlowDestination:
        async def create_upload(self, bucket, key, meta):
            await asyncio.sleep(0.3)
            return "upload-1"

        async def abort_upload(self, bucket, key, upload_id):
            aborted.append((key, upload_id))

    async def main() -> None:
        copier = copy_mod.Copier(None, "s", SlowDestination(), "d", copy_mod.Settings())
        task = asyncio.create_task(copier._create_upload("k", {}))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert aborted == []                       # the grace ran out before the answer
        await copy_mod.Copier.settle(2.0)
        assert aborted == [("k", "upload-1")]
        assert not copy_mod._LATE and not copy_mod._ABORTS
    asyncio.run(main())
