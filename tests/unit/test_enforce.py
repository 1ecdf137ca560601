"""check() against the profiles. Most cases are generated from the profile data: every unimplemented
operation, every ❌ header and parameter (refused with a non-default value, passing with each harmless
one), every ✅ header, the storage classes and the checksum matrix; then the limits."""
from __future__ import annotations

import base64

import pytest

from gateway.operations import BUCKET, OBJECT, SERVICE, level_of
from gateway.rules import check, load_profile
from gateway.rules.profile import CHECKSUM_ALGORITHMS

PROFILES = {name: load_profile(name) for name in ("r2", "r2-2022", "provider-b")}
R2 = PROFILES["r2"]
SECRET = {"x-amz-server-side-encryption-customer-key", "x-amz-copy-source-server-side-encryption-customer-key",
          "x-amz-security-token", "authorization"}
ODD = "gateway-test-value"  # a value no profile lets pass


def where(op: str) -> tuple[str | None, str | None]:
    return {SERVICE: (None, None), BUCKET: ("bucket", None), OBJECT: ("bucket", "key")}[level_of(op)]


def base(op: str) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query every request of ``op`` carries."""
    headers = {"host": "gw.example", "x-amz-date": "20250101T000000Z", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    query: dict[str, str] = {}
    if op in ("CopyObject", "UploadPartCopy"):
        headers["x-amz-copy-source"] = "/src/key"
    if op in ("UploadPart", "UploadPartCopy"):
        query.update(partNumber="1", uploadId="u")
    return headers, query


def run(profile, op: str, headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
        bucket: str | None = "", key: str | None = "", **kw):
    h, q = base(op)
    b, k = where(op)
    return check(profile, op, {**h, **(headers or {})}, {**q, **(query or {})},
                 b if bucket == "" else bucket, k if key == "" else key, **kw)


def features(profile, op):
    return (*profile.spec.common_request_headers, *profile.operations[op].features)


def sample_names(header: str) -> list[str]:
    """Concrete header names for a table entry (a `prefix-*` entry gives names under the prefix)."""
    if not header.endswith("*"):
        return [header]
    prefix = header[:-1]
    return [prefix + "test"] if prefix.endswith("-") else [prefix, prefix + "-test"]


def harmless(profile, header: str) -> tuple[str, ...]:
    return profile.spec.harmless_header_values.get(header, ())


def shown(name: str, value: str) -> str:
    return "***" if name in SECRET else value


# ---- generated cases -----------------------------------------------------------------------------
UNIMPLEMENTED = [(p, op) for p, prof in PROFILES.items() for op, o in prof.operations.items() if not o.implemented]
IMPLEMENTED = [(p, op) for p, prof in PROFILES.items() for op, o in prof.operations.items() if o.implemented]
REFUSED_HEADERS = sorted({(p, op, entry, name) for p, op in IMPLEMENTED for f in features(PROFILES[p], op)
                          if not f.supported for entry in f.headers for name in sample_names(entry)})
HARMLESS_HEADERS = sorted({(p, op, entry, name, v) for p, op, entry, name in REFUSED_HEADERS
                           for v in harmless(PROFILES[p], entry)})
EMPTY_REFUSED = [(p, op, entry, name) for p, op, entry, name in REFUSED_HEADERS
                 if "" not in harmless(PROFILES[p], entry)]
SUPPORTED_HEADERS = sorted({(p, op, h) for p, op in IMPLEMENTED for f in features(PROFILES[p], op)
                            if f.supported for h in f.headers})
REFUSED_QUERY = sorted({(p, op, q) for p, op in IMPLEMENTED for f in PROFILES[p].operations[op].features
                        if not f.supported for q in f.query})
SUPPORTED_QUERY = sorted({(p, op, q) for p, op in IMPLEMENTED for f in PROFILES[p].operations[op].features
                          if f.supported for q in f.query})
STORAGE_CLASS_OPS = [(p, op) for p, op in IMPLEMENTED if PROFILES[p].rules(op).storage_class]


def test_the_generated_tables_are_not_empty():
    # a profile change that empties a list would silently turn its tests off
    for table in (UNIMPLEMENTED, IMPLEMENTED, REFUSED_HEADERS, HARMLESS_HEADERS, EMPTY_REFUSED, SUPPORTED_HEADERS,
                  REFUSED_QUERY, SUPPORTED_QUERY, STORAGE_CLASS_OPS):
        assert table
    assert {p for p, *_ in REFUSED_HEADERS} == set(PROFILES)
    assert sum(1 for p, _ in UNIMPLEMENTED if p == "r2") > 80


@pytest.mark.parametrize("profile,op", UNIMPLEMENTED)
def test_unimplemented_operation(profile, op):
    v = run(PROFILES[profile], op, {"x-amz-acl": "public-read"})
    assert len(v) == 1, "an unimplemented operation is refused as such, nothing else is checked"
    assert v[0].feature == op
    assert (v[0].error.status, v[0].error.code, v[0].error.message) == (501, "NotImplemented", f"{op} not implemented")


@pytest.mark.parametrize("profile,op", IMPLEMENTED)
def test_implemented_operation_plain_request_passes(profile, op):
    assert run(PROFILES[profile], op) == []


@pytest.mark.parametrize("profile,op,entry,name", REFUSED_HEADERS)
def test_refused_header(profile, op, entry, name):
    v = run(PROFILES[profile], op, {name: ODD})
    assert [x.feature for x in v] == [f"{name}={shown(name, ODD)}"]
    err = v[0].error
    assert (err.status, err.code) == (501, "NotImplemented")
    assert err.message == f"Header '{name}' with value '{shown(name, ODD)}' not implemented"
    assert err.fields["Header"] == name


@pytest.mark.parametrize("profile,op,entry,name", EMPTY_REFUSED)
def test_refused_header_even_empty(profile, op, entry, name):
    v = run(PROFILES[profile], op, {name: ""})
    assert [x.error.message for x in v] == [f"Header '{name}' with value '{shown(name, '')}' not implemented"]


@pytest.mark.parametrize("profile,op,entry,name,value", HARMLESS_HEADERS)
def test_harmless_value_passes(profile, op, entry, name, value):
    assert run(PROFILES[profile], op, {name: value}) == []
    assert run(PROFILES[profile], op, {name: f" {value.lower()} "}) == []


@pytest.mark.parametrize("profile,op,header", SUPPORTED_HEADERS)
def test_supported_header_passes(profile, op, header):
    p = PROFILES[profile]
    value = p.spec.storage_classes[0] if header == "x-amz-storage-class" else "x"
    for name in sample_names(header):
        assert run(p, op, {name: value}) == []


@pytest.mark.parametrize("profile,op,param", REFUSED_QUERY)
def test_refused_query_parameter(profile, op, param):
    p = PROFILES[profile]
    v = run(p, op, query={param: ODD})
    assert [x.feature for x in v] == [f"?{param}={ODD}"]
    assert (v[0].error.status, v[0].error.message) == (501, f"Query parameter '{param}' with value '{ODD}' not implemented")
    for value in p.spec.harmless_query_values.get(param, ()):
        assert run(p, op, query={param: value}) == []


@pytest.mark.parametrize("profile,op,param", SUPPORTED_QUERY)
def test_supported_query_parameter_passes(profile, op, param):
    assert run(PROFILES[profile], op, query={param: "1"}) == []


# ---- R2's own words (r2-notes) -------------------------------------------------------------------
def test_r2_messages():
    v = run(R2, "PutObject", {"x-amz-acl": "public-read"})
    assert v[0].error.message == "Header 'x-amz-acl' with value 'public-read' not implemented"
    v = run(R2, "PutObject", {"x-amz-storage-class": ""})
    assert v[0].error.message == "Header 'x-amz-storage-class' with value '' not implemented"
    v = run(R2, "GetObjectTagging")
    assert v[0].error.message == "GetObjectTagging not implemented"
    assert run(R2, "PutObject", {"x-amz-acl": "private"}) == []


def test_several_violations_are_all_reported():
    v = run(R2, "PutObject", {"x-amz-acl": "public-read", "x-amz-tagging": "a=b", "x-amz-object-lock-mode": "GOVERNANCE"})
    assert {x.feature for x in v} == {"x-amz-acl=public-read", "x-amz-tagging=a=b", "x-amz-object-lock-mode=GOVERNANCE"}


def test_unknown_operation_fails_closed():
    v = check(R2, "NoSuchOperation", {}, {}, "b", "k")
    assert v[0].error.message == "NoSuchOperation not implemented"


def test_r2_extensions_pass():
    assert run(R2, "PutObject", {"cf-create-bucket-if-missing": "true", "if-none-match": "*",
                                 "if-match": '"etag"'}) == []
    assert run(R2, "CopyObject", {"x-amz-metadata-directive": "MERGE", "cf-copy-destination-if-match": '"e"',
                                  "cf-copy-destination-if-none-match": "*"}) == []
    assert run(R2, "ListBuckets", {"cf-prefix": "a", "cf-max-keys": "5"}, {"prefix": "a", "start-after": "b"}) == []


def test_secrets_are_never_echoed():
    for name, op in [("r2-2022", "GetObject"), ("provider-b", "GetObject"), ("provider-b", "ListBuckets")]:
        headers = {"x-amz-server-side-encryption-customer-key": "S3CR3T-KEY", "x-amz-security-token": "S3CR3T-TOKEN"}
        v = run(PROFILES[name], op, headers)
        assert v
        text = " ".join(x.feature + x.error.message + str(x.error.fields) + x.error.to_xml("r").decode() for x in v)
        assert "S3CR3T" not in text and "***" in text


# ---- storage classes -----------------------------------------------------------------------------
@pytest.mark.parametrize("profile,op", STORAGE_CLASS_OPS)
def test_storage_classes(profile, op):
    p = PROFILES[profile]
    for cls in p.spec.storage_classes:
        assert run(p, op, {"x-amz-storage-class": cls}) == []
    for bad in ("GLACIER_IR", "", "standard", "ONEZONE_IA"):
        v = run(p, op, {"x-amz-storage-class": bad})
        assert [x.feature for x in v] == [f"x-amz-storage-class={bad}"], bad
        if p.spec.storage_class_error == "NotImplemented":
            assert v[0].error.message == f"Header 'x-amz-storage-class' with value '{bad}' not implemented"
        else:
            assert (v[0].error.code, v[0].error.status) == (p.spec.storage_class_error, 400)


def test_storage_class_ops():
    assert {op for p, op in STORAGE_CLASS_OPS if p == "r2"} == {"PutObject", "CopyObject", "CreateMultipartUpload"}
    # 2022: x-amz-storage-class is ❌ with STANDARD passing
    old = PROFILES["r2-2022"]
    for op in ("PutObject", "CopyObject", "CreateMultipartUpload"):
        assert run(old, op, {"x-amz-storage-class": "STANDARD"}) == []
        assert run(old, op, {"x-amz-storage-class": "STANDARD_IA"})[0].error.status == 501
    assert run(PROFILES["provider-b"], "PutObject", {"x-amz-storage-class": "DEEP_ARCHIVE"}) == []


# ---- checksums (generated from the matrix) -------------------------------------------------------
MATRIX = [(p, alg, t) for p in PROFILES for alg in sorted(CHECKSUM_ALGORITHMS) for t in ("FULL_OBJECT", "COMPOSITE")]


@pytest.mark.parametrize("profile,alg,ctype", MATRIX)
def test_checksum_matrix_on_create_multipart_upload(profile, alg, ctype):
    p = PROFILES[profile]
    v = run(p, "CreateMultipartUpload", {"x-amz-checksum-algorithm": alg, "x-amz-checksum-type": ctype})
    if alg not in p.checksums:
        assert [x.feature for x in v] == [f"x-amz-checksum-algorithm={alg}"]
    elif ctype not in p.checksums[alg]:
        assert [x.feature for x in v] == [f"x-amz-checksum-type={ctype}"]
        assert v[0].error.message == f"Header 'x-amz-checksum-type' with value '{ctype}' not implemented"
    else:
        assert v == []
    # without a type the store's own one applies
    assert bool(run(p, "CreateMultipartUpload", {"x-amz-checksum-algorithm": alg})) is (alg not in p.checksums)


@pytest.mark.parametrize("profile,alg,ctype", MATRIX)
def test_checksum_matrix_on_complete_multipart_upload(profile, alg, ctype):
    p = PROFILES[profile]
    name = f"x-amz-checksum-{alg.lower()}"
    v = run(p, "CompleteMultipartUpload", {name: "AAAAAA==", "x-amz-checksum-type": ctype})
    ok = alg in p.checksums and ctype in p.checksums[alg]
    assert (v == []) is ok
    if alg not in p.checksums:
        assert [x.feature for x in v] == [f"{name}=AAAAAA=="]


@pytest.mark.parametrize("profile,alg", [(p, a) for p in PROFILES for a in sorted(CHECKSUM_ALGORITHMS)])
def test_checksum_algorithms_on_uploads(profile, alg):
    p = PROFILES[profile]
    allowed = alg in p.checksums
    for op in ("PutObject", "UploadPart"):
        assert (run(p, op, {f"x-amz-checksum-{alg.lower()}": "AAAA"}) == []) is allowed, op
        assert (run(p, op, {"x-amz-sdk-checksum-algorithm": alg.lower()}) == []) is allowed, op
        assert (run(p, op, {"x-amz-trailer": f"x-amz-checksum-{alg.lower()}",
                            "x-amz-decoded-content-length": "10"}) == []) is allowed, op


def test_checksum_headers_in_r2_2022_are_refused_as_r2_did():
    v = run(PROFILES["r2-2022"], "PutObject", {"x-amz-checksum-crc32": "jNwWgw=="})
    assert v[0].error.message == "Header 'x-amz-checksum-crc32' with value 'jNwWgw==' not implemented"


def test_botocore_default_config_checksum_passes_on_r2():
    # botocore sends this pair on PutBucketCors even with request_checksum_calculation=when_required
    headers = {"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": "AO287g=="}
    assert run(R2, "PutBucketCors", headers) == []
    assert run(R2, "PutBucketLifecycleConfiguration", headers) == []
    assert run(R2, "DeleteObjects", headers) == []
    assert run(R2, "PutBucketCors", {"x-amz-sdk-checksum-algorithm": "SHA512"})[0].error.status == 501


def test_checksum_mode_is_not_an_algorithm():
    assert run(R2, "PutObject", {"x-amz-checksum-mode": "ENABLED"}) == []


def test_copy_object_checksum_algorithm_refused_whatever_the_value():
    # R2 refused all four values (cloudflare-docs#4508): no value of it is harmless there
    for alg in ("CRC32", "CRC32C", "SHA1", "SHA256"):
        assert run(R2, "CopyObject", {"x-amz-checksum-algorithm": alg})[0].feature == f"x-amz-checksum-algorithm={alg}"
    assert run(R2, "CreateMultipartUpload", {"x-amz-checksum-algorithm": "CRC32"}) == []


# ---- limits --------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("op", ["PutObject", "GetObject", "HeadObject", "DeleteObject", "CreateMultipartUpload"])
def test_key_length_in_utf8_bytes(profile, op):
    p = PROFILES[profile]
    limit = p.limits.max_key_bytes
    assert run(p, op, key="k" * limit) == []
    assert run(p, op, key="€" * (limit // 3)) == []          # 3 bytes each, within the limit
    for key in ("k" * (limit + 1), "€" * (limit // 3 + 1), "é" * (limit // 2) + "k"):
        v = run(p, op, key=key)
        assert [x.feature for x in v] == ["key-length"]
        assert v[0].error.code == p.limits.key_error and v[0].error.status == 400
    assert R2.limits.key_error == "InvalidObjectName"  # what R2's error-code page documents


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("op", ["PutObject", "CreateMultipartUpload", "CopyObject"])
def test_metadata_size(profile, op):
    p = PROFILES[profile]
    limit = p.limits.max_metadata_bytes
    # names count without the x-amz-meta- prefix: "a" + "bb" + values
    fits = {"x-amz-meta-a": "x" * (limit - 3 - 10), "x-amz-meta-bb": "y" * 10}
    assert run(p, op, fits) == []
    over = {**fits, "x-amz-meta-bb": "y" * 11}
    v = run(p, op, over)
    assert [x.feature for x in v] == ["metadata-size"]
    assert (v[0].error.code, v[0].error.status) == ("MetadataTooLarge", 400)
    # bytes, not characters
    assert run(p, op, {"x-amz-meta-a": "é" * ((limit - 1) // 2 + 1)})[0].feature == "metadata-size"
    # the caller's decoded size overrides the measured one
    assert run(p, op, over, decoded_metadata_size=limit) == []
    assert run(p, op, {"x-amz-meta-a": "1"}, decoded_metadata_size=limit + 1)[0].feature == "metadata-size"


def test_metadata_is_measured_decoded_with_the_unicode_extension():
    text = "é" * 4000                                    # 8000 bytes decoded
    encoded = "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="  # ~10.7 kB on the wire
    assert len(encoded) > 8192
    assert run(R2, "PutObject", {"x-amz-meta-name": encoded}) == []
    assert run(R2, "PutObject", {"x-amz-meta-name": "=?UTF-8?B?" + base64.b64encode(("é" * 4200).encode()).decode()
                                 + "?="})[0].feature == "metadata-size"
    # a profile without the extension measures the value as sent
    assert run(PROFILES["provider-b"], "PutObject", {"x-amz-meta-name": encoded})[0].feature == "metadata-size"


def test_metadata_limit_only_where_metadata_is_stored():
    big = {"x-amz-meta-a": "x" * 9000}
    assert run(R2, "UploadPart", big) == []
    assert run(R2, "GetObject", big) == []


GOOD_BUCKETS = ["abc", "a-b", "0ab", "a" * 63, "my-bucket-123"]
BAD_BUCKETS = ["ab", "a" * 64, "Abc", "a_b", "-ab", "ab-", "a b", "ab/c"]


@pytest.mark.parametrize("profile", PROFILES)
def test_bucket_names_on_create_bucket(profile):
    p = PROFILES[profile]
    for name in GOOD_BUCKETS:
        assert run(p, "CreateBucket", bucket=name) == [], name
    for name in BAD_BUCKETS:
        v = run(p, "CreateBucket", bucket=name)
        assert [x.feature for x in v] == ["bucket-name"], name
        assert (v[0].error.code, v[0].error.status, v[0].error.fields["BucketName"]) == ("InvalidBucketName", 400, name)


def test_bucket_name_rules_differ():
    assert run(R2, "CreateBucket", bucket="a.b")[0].feature == "bucket-name"   # R2: [a-z0-9-] only
    assert run(PROFILES["provider-b"], "CreateBucket", bucket="a.b") == []      # AWS allows dots


def test_bucket_names_elsewhere():
    # another operation on a bad name just gets NoSuchBucket from the upstream
    assert run(R2, "GetObject", bucket="Bad_Name") == []
    assert run(R2, "PutObject", bucket="Bad_Name") == []
    # …unless the upload may create it (R2's cf-create-bucket-if-missing extension)
    for op in ("PutObject", "CreateMultipartUpload"):
        v = run(R2, op, {"cf-create-bucket-if-missing": "true"}, bucket="Bad_Name")
        assert [x.feature for x in v] == ["bucket-name"], op
        assert run(R2, op, {"cf-create-bucket-if-missing": "true"}, bucket="good-name") == []
    # r2-2022 predates that extension: the header means nothing there
    assert run(PROFILES["r2-2022"], "PutObject", {"cf-create-bucket-if-missing": "true"}, bucket="Bad_Name") == []


def test_put_object_size():
    limit = R2.limits.max_put_object_bytes
    assert limit == 5 * 1024**3 - 5 * 1024**2
    assert run(R2, "PutObject", {"content-length": str(limit)}) == []
    assert run(R2, "PutObject", {"content-length": str(limit + 1)})[0].feature == "object-size"
    assert run(R2, "PutObject", {"content-length": str(limit + 1)})[0].error.code == "EntityTooLarge"
    # aws-chunked: the decoded length is the object's
    assert run(R2, "PutObject", {"content-length": str(limit + 100), "x-amz-decoded-content-length": str(limit)}) == []
    assert run(R2, "UploadPart", {"content-length": str(limit + 1)}) == []


@pytest.mark.parametrize("op", ["UploadPart", "UploadPartCopy"])
def test_part_numbers(op):
    for part in ("1", "10000"):
        assert run(R2, op, query={"partNumber": part}) == []
    for part in ("0", "10001", "x", "", "-1"):
        v = run(R2, op, query={"partNumber": part})
        assert [x.feature for x in v] == ["part-number"], part
        assert v[0].error.code == "InvalidArgument"


def test_provider_b_specifics():
    b = PROFILES["provider-b"]
    assert run(b, "ListObjectsV2", query={"list-type": "2", "encoding-type": "url"}) == []
    assert run(b, "RestoreObject", query={"versionId": "v1"})[0].error.message == \
        "Query parameter 'versionId' with value 'v1' not implemented"
    assert run(b, "PutObject", {"x-amz-server-side-encryption": "AES256"})[0].feature == \
        "x-amz-server-side-encryption=AES256"
    assert [x.feature for x in run(b, "PutObject", {"x-amz-object-lock-event-hold": "ON"})] == \
        ["x-amz-object-lock-event-hold=ON"]
    assert run(b, "CopyObject", {"x-amz-tagging-directive": "COPY"}) == []
    assert run(b, "CopyObject", {"x-amz-tagging-directive": "REPLACE"})[0].error.status == 501
    assert run(b, "GetObject", {"x-amz-security-token": "t"})[0].feature == "x-amz-security-token=***"


def test_violation_name_has_no_client_value():
    v = run(R2, "PutObject", {"x-amz-acl": "public-read"}, key="k" * 2000)
    assert [x.name for x in v] == ["x-amz-acl", "key-length"]
    assert run(R2, "GetObjectTagging")[0].name == "GetObjectTagging"
