"""gateway/rules/keys.py: the per-key write table and the profile rows that drive it."""
from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.rules import keys, load_profile


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_one_write_per_second_per_key():
    clock = Clock()
    w = keys.KeyWrites(1, ["PutObject"], clock)
    w.admit("b", "k")
    with pytest.raises(S3Error) as e:
        w.admit("b", "k")
    assert (e.value.code, e.value.status) == ("TooManyRequests", 429)
    w.admit("b", "other")
    w.admit("other-bucket", "k")
    clock.now += 0.99
    with pytest.raises(S3Error):
        w.admit("b", "k")
    clock.now += 0.02
    w.admit("b", "k")


def test_table_forgets_old_writes():
    clock = Clock()
    w = keys.KeyWrites(0.5, ["PutObject"], clock)     # one per half second
    for i in range(1000):
        w.admit("b", f"k{i}")
    assert len(w) == 1000
    clock.now += 0.5
    w.admit("b", "fresh")
    assert len(w) == 1


def test_profiles_say_what_their_provider_does():
    r2, old, b = load_profile("r2"), load_profile("r2-2022"), load_profile("provider-b")
    assert r2.limits.key_normalization == "NFC" and r2.limits.min_write_interval_seconds == 1
    for p in (old, b):
        assert p.limits.key_normalization is None and p.limits.min_write_interval_seconds is None
    assert keys.build(old, True) is None and keys.build(b, True) is None
    rules = keys.build(r2, False)
    assert rules.form == "NFC" and rules.writes is None       # the limit is off unless switched on
    writes = keys.build(r2, True).writes
    assert writes.interval == 1 and {"PutObject", "CopyObject", "CompleteMultipartUpload"} <= writes.operations
