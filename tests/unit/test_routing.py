"""Bucket routing rules (gateway/routing.py) and their validation in the settings."""
import pytest

from gateway import config
from gateway.routing import Route, Routes

UP = {"endpoint": "http://127.0.0.1:1", "access_key_id": "a", "secret_access_key": "s"}


def settings(**tree):
    return config.Settings.model_validate({"upstream": UP, **tree})


def test_first_match_wins_and_no_match_is_default():
    s = settings(upstreams={"archive": UP, "cold": UP},
                 buckets=[{"match": "legacy-*", "upstream": "archive"},
                          {"match": "legacy-cold", "upstream": "cold"},
                          {"match": "media", "migrate_from": {"upstream": "archive", "bucket": "media-2019"}},
                          {"match": "photos-?", "migrate_from": {"upstream": "archive"}}])
    routes = Routes(s.buckets)
    assert routes.for_bucket("legacy-cold") == Route("archive")
    assert routes.for_bucket("media") == Route("default", "archive", "media-2019")
    assert routes.for_bucket("photos-1") == Route("default", "archive", "photos-1")
    assert routes.for_bucket("photos-12") == Route("default")
    assert routes.for_bucket("other") == Route("default")
    assert not routes.for_bucket("other").migrates and routes.for_bucket("media").migrates
    assert routes.stores() == {"default", "archive", "cold"}
    assert s.store("default") is s.upstream and s.store("cold") is s.upstreams["cold"]


@pytest.mark.parametrize("tree, message", [
    ({"buckets": [{"match": "a", "upstream": "nope"}]}, "no store named 'nope'"),
    ({"upstreams": {"default": UP}}, "not 'default'"),
    ({"upstreams": {"Bad Name": UP}}, "a store name"),
    ({"upstreams": {"x": {"region": "eu"}}}, "upstreams.x.endpoint is required"),
    ({"buckets": [{"match": "a", "migrate_from": {"upstream": "default"}}]}, "the destination itself"),
    ({"buckets": [{"match": "a", "migrate_from": {"upstream": "ghost"}}]}, "no store named 'ghost'"),
])
def test_bad_routing_is_refused_naming_the_key(tree, message):
    with pytest.raises(Exception) as e:
        settings(**tree)
    assert message in str(e.value)


def test_list_merged_and_the_aws_chain_in_the_settings():
    s = settings(upstreams={"archive": {"endpoint": "https://s3.eu-central-1.amazonaws.com", "region": "eu-central-1",
                                        "aws_profile": "migration"}},
                 buckets=[{"match": "media", "migrate_from": {"upstream": "archive", "list": "merged"}}])
    assert Routes(s.buckets).for_bucket("media") == Route("default", "archive", "media", list_merged=True)
    assert s.upstreams["archive"].uses_aws_chain and not s.upstream.uses_aws_chain
    keyless = config.Settings.model_validate({"upstream": {"endpoint": "http://127.0.0.1:1"}})
    assert keyless.upstream.uses_aws_chain
    assert not config.Settings.model_validate({}).upstream.uses_aws_chain   # embedded


@pytest.mark.parametrize("tree, message", [
    ({"upstream": {**UP, "secret_access_key": None}}, "go together"),
    ({"upstreams": {"x": {"endpoint": "http://h:1", "access_key_id": "a"}}}, "go together"),
    ({"upstreams": {"x": {**UP, "aws_profile": "p"}}}, "aws_profile is for a store without keys"),
    ({"upstream": {"aws_profile": "p"}}, "without upstream.endpoint"),
    ({"buckets": [{"match": "a", "migrate_from": {"upstream": "default", "bucket": "b", "list": "all"}}]}, "list"),
    ({"migrate_on_read": {"part_size_bytes": 1024}}, "part_size_bytes"),
])
def test_bad_store_settings_are_refused_naming_the_key(tree, message):
    with pytest.raises(Exception) as e:
        config.Settings.model_validate({"upstream": UP, **tree} if "upstream" not in tree else tree)
    assert message in str(e.value)


def test_merged_listing_resumes_past_a_whole_common_prefix():
    from gateway.stores.merged_list import listing_start
    assert listing_start(None, "", "/") is None
    assert listing_start("a", "", "/") == "a"
    assert listing_start("photos/", "", "/") == "photos/\U0010ffff"
    assert listing_start("p/x/y", "p/", "/") == "p/x/\U0010ffff"
    assert listing_start("p/x", "p/", "") == "p/x"


def test_other_keys_of_one_store_sharing_an_internal_bucket_are_warned_of():
    """Bucket names are shared by a store's accounts: one internal bucket would be the first's. Keys
    of one account may share it, so it is a warning, not a refusal."""
    shared = settings(upstreams={"b": {**UP, "endpoint": "http://127.0.0.1:1/", "access_key_id": "other"}})
    (warning,) = shared.shared_internal_buckets()
    assert "'default' and 'b'" in warning and "r2gw-internal" in warning
    two = {"b": {**UP, "access_key_id": "other", "internal_bucket": "r2gw-internal-b"}}
    assert settings(upstreams=two).shared_internal_buckets() == []
    assert settings(upstreams={"b": dict(UP)}).shared_internal_buckets() == []             # the same key
    assert settings(upstreams={"b": {**UP, "endpoint": "http://127.0.0.2:1", "access_key_id": "o"}}
                    ).shared_internal_buckets() == []                                    # another store
    keyless = {"b": {"endpoint": UP["endpoint"]}}
    assert settings(upstreams=keyless).shared_internal_buckets() == []
