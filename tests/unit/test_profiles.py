"""The profiles: they load and validate, broken ones fail naming the fault, the editions differ as
their tables do, and docs/compat-r2.md is the rendering of the r2 profile."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.operations import OPERATIONS
from gateway.rules import ProfileError, list_profiles, load_profile
from gateway.rules.profile import PROFILES_DIR
from gateway.rules.render import render_json, render_markdown

REPO = Path(__file__).resolve().parents[2]
PROFILES = ["r2", "r2-2022", "provider-b"]


def implemented(profile) -> set[str]:
    return {n for n, o in profile.operations.items() if o.implemented}


def headers_of(profile, op: str, supported: bool) -> set[str]:
    return {h for f in profile.operations[op].features if f.supported is supported for h in f.headers}


@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_lists_every_operation(name):
    p = load_profile(name)
    assert p.name == name
    assert set(p.operations) == OPERATIONS
    assert implemented(p), "a profile with nothing implemented"


def test_list_profiles():
    assert set(PROFILES) <= set(list_profiles())


def test_load_by_absolute_path():
    p = load_profile(str(PROFILES_DIR / "r2.yaml"))
    assert p.name == "r2"


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="no profile 'nope'.*r2"):
        load_profile("nope")


# ---- broken profiles ------------------------------------------------------------------------------
def _r2_data() -> dict:
    return yaml.safe_load((PROFILES_DIR / "r2.yaml").read_text())


def _write(tmp_path, data) -> str:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True) if not isinstance(data, str) else data)
    return str(path)


def test_unknown_operation_fails_naming_it(tmp_path):
    data = _r2_data()
    data["operations"]["GetObjectFoo"] = {"implemented": False}
    with pytest.raises(ProfileError, match="unknown operation 'GetObjectFoo'"):
        load_profile(_write(tmp_path, data))


def test_deprecated_alias_fails_naming_the_current_name(tmp_path):
    data = _r2_data()
    data["operations"]["GetBucketLifecycle"] = {"implemented": False}
    with pytest.raises(ProfileError, match="'GetBucketLifecycle'.*GetBucketLifecycleConfiguration"):
        load_profile(_write(tmp_path, data))


def test_missing_operation_fails_naming_it(tmp_path):
    data = _r2_data()
    del data["operations"]["GetObjectTagging"]
    with pytest.raises(ProfileError, match="missing operation.*GetObjectTagging"):
        load_profile(_write(tmp_path, data))


def test_unknown_key_fails_naming_it(tmp_path):
    data = _r2_data()
    data["operations"]["PutObject"]["features"][0]["hedaers"] = ["x-amz-acl"]
    with pytest.raises(ProfileError, match=r"operations\.PutObject\.features\.0\.hedaers"):
        load_profile(_write(tmp_path, data))


def test_unknown_top_level_key_fails_naming_it(tmp_path):
    data = _r2_data()
    data["storage_clases"] = ["STANDARD"]
    with pytest.raises(ProfileError, match="storage_clases"):
        load_profile(_write(tmp_path, data))


def test_duplicate_key_fails_naming_it(tmp_path):
    text = (PROFILES_DIR / "r2.yaml").read_text()
    text = text.replace("  GetObjectTagging: {implemented: false}\n",
                        "  GetObjectTagging: {implemented: false}\n  GetObjectTagging: {implemented: true}\n")
    with pytest.raises(ProfileError, match="'GetObjectTagging' given twice"):
        load_profile(_write(tmp_path, text))


def test_uppercase_header_fails(tmp_path):
    data = _r2_data()
    data["operations"]["HeadBucket"]["features"][0]["headers"] = ["X-Amz-Expected-Bucket-Owner"]
    with pytest.raises(ProfileError, match="lowercase"):
        load_profile(_write(tmp_path, data))


def test_header_both_supported_and_not_fails(tmp_path):
    data = _r2_data()
    data["operations"]["GetObject"]["features"].append(
        {"group": "x", "supported": True, "headers": ["x-amz-request-payer"]})
    with pytest.raises(ProfileError, match="GetObject.*x-amz-request-payer"):
        load_profile(_write(tmp_path, data))


def test_harmless_value_for_a_header_never_refused_fails(tmp_path):
    data = _r2_data()
    data["harmless_header_values"]["x-amz-foo"] = ["bar"]
    with pytest.raises(ProfileError, match="harmless_header_values.*x-amz-foo"):
        load_profile(_write(tmp_path, data))


def test_storage_class_map_outside_classes_fails(tmp_path):
    data = _r2_data()
    data["storage_class_map"]["GLACIER"] = "GLACIER"
    with pytest.raises(ProfileError, match="storage_class_map.*GLACIER"):
        load_profile(_write(tmp_path, data))


def test_unknown_checksum_algorithm_fails(tmp_path):
    data = _r2_data()
    data["checksums"]["CRC16"] = ["COMPOSITE"]
    with pytest.raises(ProfileError, match="checksums.*CRC16"):
        load_profile(_write(tmp_path, data))


# ---- the editions differ as their tables do -------------------------------------------------------
def test_2022_lacks_what_2025_added():
    new, old = load_profile("r2"), load_profile("r2-2022")
    added = implemented(new) - implemented(old)
    assert added == {
        "ListObjects", "GetBucketLocation", "ListMultipartUploads", "ListParts",
        "GetBucketCors", "PutBucketCors", "DeleteBucketCors",
        "GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration",
        "GetBucketEncryption", "OptionsObject",
    }
    assert implemented(old) - implemented(new) == set()


def test_sse_c_is_2025_only():
    new, old = load_profile("r2"), load_profile("r2-2022")
    ssec = {"x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
            "x-amz-server-side-encryption-customer-key-md5"}
    for op in ("GetObject", "HeadObject", "PutObject", "CreateMultipartUpload", "CopyObject", "UploadPart",
               "UploadPartCopy"):
        assert ssec <= headers_of(new, op, True), op
        assert ssec <= headers_of(old, op, False), op


def test_storage_classes_and_checksums():
    r2, old, b = load_profile("r2"), load_profile("r2-2022"), load_profile("provider-b")
    assert r2.spec.storage_classes == ("STANDARD", "STANDARD_IA")
    assert old.spec.storage_classes == ("STANDARD",)
    assert b.spec.storage_classes == ("STANDARD", "IA", "ARCHIVE", "DEEP_ARCHIVE")
    assert {a: set(t) for a, t in r2.checksums.items()} == {
        "CRC64NVME": {"FULL_OBJECT"}, "CRC32": {"COMPOSITE"}, "CRC32C": {"COMPOSITE"},
        "SHA1": {"COMPOSITE"}, "SHA256": {"COMPOSITE"}}
    assert old.checksums == {}


def test_r2_extensions_are_never_refused():
    p = load_profile("r2")
    for name, op in p.operations.items():
        for f in op.features:
            if f.extension:
                assert f.supported, (name, f.group)
    for name in ("cf-create-bucket-if-missing", "if-match", "if-none-match"):
        assert name in headers_of(p, "PutObject", True)
    assert {"cf-copy-destination-if-match", "x-amz-metadata-directive"} <= headers_of(p, "CopyObject", True)
    refused_anywhere = {h for op in p.operations.values() for f in op.features if not f.supported for h in f.headers}
    assert not {h for h in refused_anywhere if h.startswith("cf-")}
    assert set(p.spec.extensions) == {"unicode_metadata", "create_bucket_if_missing", "conditional_put",
                                      "merge_metadata_directive", "list_buckets_pagination",
                                      "copy_destination_conditions"}


def test_provider_b():
    p = load_profile("provider-b")
    assert p.implemented("PostObject") and p.implemented("RestoreObject")
    assert not p.implemented("ListMultipartUploads")
    days = next(f for f in p.operations["RestoreObject"].features if "Days" in f.body)
    assert days.supported and days.value_range == (1, 7)
    assert p.spec.storage_class_map == {"STANDARD": "STANDARD", "IA": "STANDARD_IA", "ARCHIVE": "GLACIER",
                                        "DEEP_ARCHIVE": "DEEP_ARCHIVE"}
    assert p.upstream_storage_class("ARCHIVE") == "GLACIER"
    assert p.client_storage_class("GLACIER") == "ARCHIVE"
    exact, prefixes = p.response_headers_to_strip("GetObject")
    assert {"x-amz-missing-meta", "x-amz-replication-status", "x-amz-id-2", "x-amz-version-id"} <= exact
    assert "x-amz-server-side-encryption" in prefixes and "x-amz-object-lock-" in prefixes
    assert load_profile("r2").response_headers_to_strip("GetObject") == (frozenset(), ())


def test_storage_class_map_override():
    p = load_profile("provider-b").with_storage_class_map({"ARCHIVE": "DEEP_ARCHIVE"})
    assert p.upstream_storage_class("ARCHIVE") == "DEEP_ARCHIVE"
    assert p.upstream_storage_class("IA") == "STANDARD_IA"
    with pytest.raises(ProfileError, match="storage_class_map.*COLD"):
        p.with_storage_class_map({"COLD": "GLACIER"})


# ---- rendering ------------------------------------------------------------------------------------
def test_docs_compat_r2_is_the_rendered_r2_profile():
    doc = REPO / "docs" / "compat-r2.md"
    expected = render_markdown(load_profile("r2"))
    assert doc.exists() and doc.read_text(encoding="utf-8") == expected, (
        "docs/compat-r2.md is out of date with config/profiles/r2.yaml; regenerate it with\n"
        "    .venv/bin/python -m gateway.rules.render r2 > docs/compat-r2.md")


@pytest.mark.parametrize("name", PROFILES)
def test_render_names_every_operation(name):
    p = load_profile(name)
    md = render_markdown(p)
    for op in OPERATIONS:
        assert f"| {op} | " in md, op
    data = json.loads(render_json(p))
    assert set(data["operations"]) == OPERATIONS
    assert data["operations"]["PutObject"]["implemented"] is p.implemented("PutObject")
    assert data["operations"]["GetObject"]["level"] == "object"
