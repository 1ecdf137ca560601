"""The classifier: one request per operation (and the neighbour traps), every name reachable, and the
requests it must refuse instead of naming."""
from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.operations import ALIASES, OPERATION_INFO, OPERATIONS, SUBRESOURCES, classify


def _split(path: str) -> tuple[str | None, str | None]:
    """'/' → service; '/b' → bucket; '/b/' → bucket (empty key); '/b/k/x' → bucket b, key 'k/x'."""
    rest = path[1:]
    if not rest:
        return None, None
    bucket, _, key = rest.partition("/")
    return bucket, key


def _query(qs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, qs.split("&")):
        name, _, value = part.partition("=")
        out[name] = value
    return out


def run(method: str, target: str, headers: dict[str, str] | None = None) -> str:
    path, _, qs = target.partition("?")
    bucket, key = _split(path)
    return classify(method, bucket, key, _query(qs), headers or {})


COPY = {"x-amz-copy-source": "/src/key"}
FORM = {"content-type": "multipart/form-data; boundary=----x"}
ROUTE = {"x-amz-request-route": "route", "x-amz-request-token": "token"}

# (method, target, headers, expected operation)
CASES: list[tuple[str, str, dict[str, str], str]] = [
    # ---- service level
    ("GET", "/", {}, "ListBuckets"),
    ("GET", "/?prefix=a&start-after=b&max-keys=10", {"cf-prefix": "a"}, "ListBuckets"),
    ("GET", "/?continuation-token=t", {}, "ListBuckets"),
    ("GET", "/?max-directory-buckets=10", {}, "ListDirectoryBuckets"),
    # ---- bucket GET: listings
    ("GET", "/b", {}, "ListObjects"),
    ("GET", "/b/", {}, "ListObjects"),
    ("GET", "/b?prefix=a/&delimiter=/&marker=m&max-keys=5", {}, "ListObjects"),
    ("GET", "/b?list-type=2", {}, "ListObjectsV2"),
    ("GET", "/b?list-type=2&prefix=x&encoding-type=url&continuation-token=t", {}, "ListObjectsV2"),
    ("GET", "/b?versions", {}, "ListObjectVersions"),
    ("GET", "/b?versions&prefix=a&key-marker=k", {}, "ListObjectVersions"),
    ("GET", "/b?uploads", {}, "ListMultipartUploads"),
    ("GET", "/b?uploads&prefix=p&upload-id-marker=u", {}, "ListMultipartUploads"),
    # ---- bucket GET: configuration
    ("GET", "/b?location", {}, "GetBucketLocation"),
    ("GET", "/b?acl", {}, "GetBucketAcl"),
    ("GET", "/b?accelerate", {}, "GetBucketAccelerateConfiguration"),
    ("GET", "/b?cors", {}, "GetBucketCors"),
    ("GET", "/b?encryption", {}, "GetBucketEncryption"),
    ("GET", "/b?lifecycle", {}, "GetBucketLifecycleConfiguration"),
    ("GET", "/b?logging", {}, "GetBucketLogging"),
    ("GET", "/b?notification", {}, "GetBucketNotificationConfiguration"),
    ("GET", "/b?object-lock", {}, "GetObjectLockConfiguration"),
    ("GET", "/b?ownershipControls", {}, "GetBucketOwnershipControls"),
    ("GET", "/b?policy", {}, "GetBucketPolicy"),
    ("GET", "/b?policyStatus", {}, "GetBucketPolicyStatus"),
    ("GET", "/b?publicAccessBlock", {}, "GetPublicAccessBlock"),
    ("GET", "/b?replication", {}, "GetBucketReplication"),
    ("GET", "/b?requestPayment", {}, "GetBucketRequestPayment"),
    ("GET", "/b?tagging", {}, "GetBucketTagging"),
    ("GET", "/b?versioning", {}, "GetBucketVersioning"),
    ("GET", "/b?website", {}, "GetBucketWebsite"),
    ("GET", "/b?abac", {}, "GetBucketAbac"),
    ("GET", "/b?metadataConfiguration", {}, "GetBucketMetadataConfiguration"),
    ("GET", "/b?metadataTable", {}, "GetBucketMetadataTableConfiguration"),
    ("GET", "/b?session", {"x-amz-create-session-mode": "ReadWrite"}, "CreateSession"),
    ("GET", "/b?analytics&id=a1", {}, "GetBucketAnalyticsConfiguration"),
    ("GET", "/b?analytics", {}, "ListBucketAnalyticsConfigurations"),
    ("GET", "/b?analytics&continuation-token=t", {}, "ListBucketAnalyticsConfigurations"),
    ("GET", "/b?intelligent-tiering&id=i", {}, "GetBucketIntelligentTieringConfiguration"),
    ("GET", "/b?intelligent-tiering", {}, "ListBucketIntelligentTieringConfigurations"),
    ("GET", "/b?inventory&id=i", {}, "GetBucketInventoryConfiguration"),
    ("GET", "/b?inventory", {}, "ListBucketInventoryConfigurations"),
    ("GET", "/b?metrics&id=m", {}, "GetBucketMetricsConfiguration"),
    ("GET", "/b?metrics", {}, "ListBucketMetricsConfigurations"),
    # ---- bucket HEAD / PUT / DELETE / POST / OPTIONS
    ("HEAD", "/b", {}, "HeadBucket"),
    ("HEAD", "/b/", {}, "HeadBucket"),
    ("PUT", "/b", {}, "CreateBucket"),
    ("PUT", "/b", {"x-amz-acl": "private"}, "CreateBucket"),
    ("PUT", "/b?acl", {}, "PutBucketAcl"),
    ("PUT", "/b?accelerate", {}, "PutBucketAccelerateConfiguration"),
    ("PUT", "/b?analytics&id=a", {}, "PutBucketAnalyticsConfiguration"),
    ("PUT", "/b?cors", {}, "PutBucketCors"),
    ("PUT", "/b?encryption", {}, "PutBucketEncryption"),
    ("PUT", "/b?intelligent-tiering&id=i", {}, "PutBucketIntelligentTieringConfiguration"),
    ("PUT", "/b?inventory&id=i", {}, "PutBucketInventoryConfiguration"),
    ("PUT", "/b?lifecycle", {}, "PutBucketLifecycleConfiguration"),
    ("PUT", "/b?logging", {}, "PutBucketLogging"),
    ("PUT", "/b?metrics&id=m", {}, "PutBucketMetricsConfiguration"),
    ("PUT", "/b?notification", {}, "PutBucketNotificationConfiguration"),
    ("PUT", "/b?object-lock", {}, "PutObjectLockConfiguration"),
    ("PUT", "/b?ownershipControls", {}, "PutBucketOwnershipControls"),
    ("PUT", "/b?policy", {}, "PutBucketPolicy"),
    ("PUT", "/b?publicAccessBlock", {}, "PutPublicAccessBlock"),
    ("PUT", "/b?replication", {}, "PutBucketReplication"),
    ("PUT", "/b?requestPayment", {}, "PutBucketRequestPayment"),
    ("PUT", "/b?tagging", {}, "PutBucketTagging"),
    ("PUT", "/b?versioning", {}, "PutBucketVersioning"),
    ("PUT", "/b?website", {}, "PutBucketWebsite"),
    ("PUT", "/b?abac", {}, "PutBucketAbac"),
    ("PUT", "/b?metadataAnnotationTable", {}, "UpdateBucketMetadataAnnotationTableConfiguration"),
    ("PUT", "/b?metadataInventoryTable", {}, "UpdateBucketMetadataInventoryTableConfiguration"),
    ("PUT", "/b?metadataJournalTable", {}, "UpdateBucketMetadataJournalTableConfiguration"),
    ("DELETE", "/b", {}, "DeleteBucket"),
    ("DELETE", "/b?analytics&id=a", {}, "DeleteBucketAnalyticsConfiguration"),
    ("DELETE", "/b?cors", {}, "DeleteBucketCors"),
    ("DELETE", "/b?encryption", {}, "DeleteBucketEncryption"),
    ("DELETE", "/b?intelligent-tiering&id=i", {}, "DeleteBucketIntelligentTieringConfiguration"),
    ("DELETE", "/b?inventory&id=i", {}, "DeleteBucketInventoryConfiguration"),
    ("DELETE", "/b?lifecycle", {}, "DeleteBucketLifecycle"),
    ("DELETE", "/b?metadataConfiguration", {}, "DeleteBucketMetadataConfiguration"),
    ("DELETE", "/b?metadataTable", {}, "DeleteBucketMetadataTableConfiguration"),
    ("DELETE", "/b?metrics&id=m", {}, "DeleteBucketMetricsConfiguration"),
    ("DELETE", "/b?ownershipControls", {}, "DeleteBucketOwnershipControls"),
    ("DELETE", "/b?policy", {}, "DeleteBucketPolicy"),
    ("DELETE", "/b?publicAccessBlock", {}, "DeletePublicAccessBlock"),
    ("DELETE", "/b?replication", {}, "DeleteBucketReplication"),
    ("DELETE", "/b?tagging", {}, "DeleteBucketTagging"),
    ("DELETE", "/b?website", {}, "DeleteBucketWebsite"),
    ("POST", "/b?delete", {}, "DeleteObjects"),
    ("POST", "/b?delete", FORM, "DeleteObjects"),  # the subresource wins over the form
    ("POST", "/b?metadataConfiguration", {}, "CreateBucketMetadataConfiguration"),
    ("POST", "/b?metadataTable", {}, "CreateBucketMetadataTableConfiguration"),
    ("POST", "/b", FORM, "PostObject"),
    ("POST", "/b/", {"content-type": "Multipart/Form-Data; boundary=x"}, "PostObject"),
    ("POST", "/WriteGetObjectResponse", ROUTE, "WriteGetObjectResponse"),
    ("POST", "/route/WriteGetObjectResponse", ROUTE, "WriteGetObjectResponse"),  # virtual-hosted
    ("OPTIONS", "/b", {"access-control-request-method": "GET"}, "OptionsObject"),
    ("OPTIONS", "/b/k", {"access-control-request-method": "PUT"}, "OptionsObject"),
    ("OPTIONS", "/b/k?uploadId=u&partNumber=3", {}, "OptionsObject"),  # a preflight keeps the query
    # ---- object GET / HEAD
    ("GET", "/b/k", {}, "GetObject"),
    ("GET", "/b/dir/sub/k.txt", {}, "GetObject"),
    ("GET", "/b/k?partNumber=2", {}, "GetObject"),
    ("GET", "/b/k?versionId=v1&response-content-type=text/plain", {}, "GetObject"),
    ("GET", "/b/k?x-id=GetObject", {}, "GetObject"),  # the JS SDK's marker
    ("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=c&X-Amz-Signature=s", {}, "GetObject"),
    ("GET", "/b/k", {"range": "bytes=0-1", "x-amz-checksum-mode": "ENABLED"}, "GetObject"),
    ("GET", "/b/k?uploadId=u", {}, "ListParts"),
    ("GET", "/b/k?uploadId=u&max-parts=2&part-number-marker=1", {}, "ListParts"),
    ("GET", "/b/k?acl", {}, "GetObjectAcl"),
    ("GET", "/b/k?attributes", {"x-amz-object-attributes": "ETag"}, "GetObjectAttributes"),
    ("GET", "/b/k?legal-hold", {}, "GetObjectLegalHold"),
    ("GET", "/b/k?retention", {}, "GetObjectRetention"),
    ("GET", "/b/k?tagging", {}, "GetObjectTagging"),
    ("GET", "/b/k?tagging&versionId=v", {}, "GetObjectTagging"),
    ("GET", "/b/k?torrent", {}, "GetObjectTorrent"),
    ("GET", "/b/k?annotation&annotationName=n", {}, "GetObjectAnnotation"),
    ("GET", "/b/k?annotation", {}, "ListObjectAnnotations"),
    ("HEAD", "/b/k", {}, "HeadObject"),
    ("HEAD", "/b/k?partNumber=1&versionId=v", {}, "HeadObject"),
    # ---- object PUT
    ("PUT", "/b/k", {}, "PutObject"),
    ("PUT", "/b/k", {"content-type": "multipart/form-data"}, "PutObject"),
    ("PUT", "/b/k", COPY, "CopyObject"),
    ("PUT", "/b/k?partNumber=1&uploadId=u", {}, "UploadPart"),
    ("PUT", "/b/k?uploadId=u&partNumber=10000", {}, "UploadPart"),
    ("PUT", "/b/k?partNumber=1&uploadId=u", {**COPY, "x-amz-copy-source-range": "bytes=0-9"}, "UploadPartCopy"),
    ("PUT", "/b/k?tagging", {}, "PutObjectTagging"),
    ("PUT", "/b/k?tagging", COPY, "PutObjectTagging"),  # the subresource wins over the copy source
    ("PUT", "/b/k?acl", {"x-amz-acl": "public-read"}, "PutObjectAcl"),
    ("PUT", "/b/k?legal-hold", {}, "PutObjectLegalHold"),
    ("PUT", "/b/k?retention", {}, "PutObjectRetention"),
    ("PUT", "/b/k?annotation&annotationName=n", {}, "PutObjectAnnotation"),
    ("PUT", "/b/k?renameObject", {"x-amz-rename-source": "/b/old"}, "RenameObject"),
    ("PUT", "/b/k?encryption", {}, "UpdateObjectEncryption"),
    # ---- object DELETE / POST
    ("DELETE", "/b/k", {}, "DeleteObject"),
    ("DELETE", "/b/k?versionId=v", {}, "DeleteObject"),
    ("DELETE", "/b/k?uploadId=u", {}, "AbortMultipartUpload"),
    ("DELETE", "/b/k?tagging", {}, "DeleteObjectTagging"),
    ("DELETE", "/b/k?annotation&annotationName=n", {}, "DeleteObjectAnnotation"),
    ("POST", "/b/k?uploads", {}, "CreateMultipartUpload"),
    ("POST", "/b/k?uploads", {"x-amz-checksum-algorithm": "CRC32"}, "CreateMultipartUpload"),
    ("POST", "/b/k?uploadId=u", {}, "CompleteMultipartUpload"),
    ("POST", "/b/k?restore", {}, "RestoreObject"),
    ("POST", "/b/k?restore&versionId=v", {}, "RestoreObject"),
    ("POST", "/b/k?select&select-type=2", {}, "SelectObjectContent"),
    # ---- method case
    ("get", "/b/k", {}, "GetObject"),
]


@pytest.mark.parametrize("method,target,headers,expected", CASES,
                         ids=[f"{m} {t} {','.join(h)}".strip() for m, t, h, _ in CASES])
def test_classify(method, target, headers, expected):
    assert run(method, target, headers) == expected


def test_every_operation_is_reachable_and_tested():
    named = {expected for *_, expected in CASES}
    assert named - OPERATIONS == set(), "the table names operations OPERATIONS does not list"
    assert OPERATIONS - named == set(), "operations without a request in CASES"


def test_operation_info_is_consistent():
    assert set(OPERATION_INFO) == OPERATIONS
    for name in ALIASES:
        assert name not in OPERATIONS
    assert set(ALIASES.values()) <= OPERATIONS


# (method, target, headers, error code)
REFUSED = [
    ("POST", "/b/k", {}, "MethodNotAllowed"),             # no subresource: not an operation
    ("POST", "/b", {}, "MethodNotAllowed"),               # neither ?delete nor a form upload
    ("PATCH", "/b/k", {}, "MethodNotAllowed"),
    ("TRACE", "/", {}, "MethodNotAllowed"),
    ("DELETE", "/", {}, "MethodNotAllowed"),
    ("PUT", "/", {}, "MethodNotAllowed"),
    ("HEAD", "/", {}, "MethodNotAllowed"),
    ("POST", "/", {}, "MethodNotAllowed"),
    ("OPTIONS", "/", {}, "MethodNotAllowed"),
    ("GET", "/?acl", {}, "MethodNotAllowed"),
    ("DELETE", "/b?versioning", {}, "MethodNotAllowed"),  # would otherwise be DeleteBucket
    ("DELETE", "/b?acl", {}, "MethodNotAllowed"),
    ("DELETE", "/b?uploads", {}, "MethodNotAllowed"),
    ("DELETE", "/b?delete", {}, "MethodNotAllowed"),
    ("PUT", "/b?location", {}, "MethodNotAllowed"),       # would otherwise be CreateBucket
    ("PUT", "/b?uploads", {}, "MethodNotAllowed"),
    ("GET", "/b?restore", {}, "MethodNotAllowed"),        # would otherwise be ListObjects
    ("GET", "/b?uploadId=u", {}, "MethodNotAllowed"),
    ("GET", "/b/k?cors", {}, "MethodNotAllowed"),         # would otherwise be GetObject
    ("GET", "/b/k?location", {}, "MethodNotAllowed"),
    ("GET", "/b/k?tagging&cors", {}, "MethodNotAllowed"),  # a misplaced subresource wins
    ("GET", "/b/k?uploads", {}, "MethodNotAllowed"),
    ("GET", "/b/k?encryption", {}, "MethodNotAllowed"),
    ("HEAD", "/b/k?uploadId=u", {}, "MethodNotAllowed"),
    ("HEAD", "/b?acl", {}, "MethodNotAllowed"),
    ("PUT", "/b/k?uploads", {}, "MethodNotAllowed"),      # would otherwise be PutObject
    ("PUT", "/b/k?restore", {}, "MethodNotAllowed"),
    ("DELETE", "/b/k?acl", {}, "MethodNotAllowed"),       # would otherwise be DeleteObject
    ("DELETE", "/b/k?retention", {}, "MethodNotAllowed"),
    ("POST", "/b/k?tagging", {}, "MethodNotAllowed"),
    ("POST", "/b/k", FORM, "MethodNotAllowed"),           # a form upload goes to the bucket
    ("PUT", "/b/k?uploadId=u", {}, "InvalidArgument"),    # a part without its number
    ("PUT", "/b/k?uploadId=u", COPY, "InvalidArgument"),
    ("PUT", "/b/k?partNumber=1", {}, "InvalidArgument"),  # a part without its upload
    ("PUT", "/b/k?partNumber=1", COPY, "InvalidArgument"),
    ("GET", "/b?list-type=1", {}, "InvalidArgument"),
    ("GET", "/b?list-type", {}, "InvalidArgument"),
    ("POST", "/b/k?select", {}, "InvalidArgument"),
    ("POST", "/b/k?select&select-type=1", {}, "InvalidArgument"),
]


@pytest.mark.parametrize("method,target,headers,code", REFUSED,
                         ids=[f"{m} {t} {','.join(h)}".strip() for m, t, h, _ in REFUSED])
def test_refused(method, target, headers, code):
    with pytest.raises(S3Error) as e:
        run(method, target, headers)
    assert e.value.code == code
    if code == "MethodNotAllowed":
        assert e.value.status == 405
        assert e.value.fields["Method"] == method
        assert e.value.fields["ResourceType"] in ("SERVICE", "BUCKET", "OBJECT")


def test_misplaced_subresources_are_refused_everywhere():
    """Every subresource, sent where no operation uses it, is refused rather than ignored."""
    valid = {(m, t.split("?")[0].count("/"), q) for m, t, _, _ in CASES
             for q in _query(t.partition("?")[2]) if q in SUBRESOURCES}
    paths = {1: "/b", 2: "/b/k"}
    for method in ("GET", "PUT", "DELETE", "POST", "HEAD"):
        for depth, path in paths.items():
            for sub in SUBRESOURCES:
                if (method, depth, sub) in valid:
                    continue
                with pytest.raises(S3Error) as e:
                    run(method, f"{path}?{sub}", {})
                assert e.value.code == "MethodNotAllowed", (method, path, sub)


def test_unknown_parameters_do_not_change_the_operation():
    for target, expected in [("/b/k", "GetObject"), ("/b", "ListObjects"), ("/", "ListBuckets")]:
        assert run("GET", target + "?foo=bar&x-id=Whatever&versionId=1&id=3", {}) == expected


def test_botocore_requests_classify_as_their_operation():
    """Each operation of botocore's S3 model, built from its request URI and required members, is
    named as botocore names it (deprecated aliases: as their current name)."""
    import botocore.session
    model = botocore.session.get_session().get_service_model("s3")
    unknown = set(model.operation_names) - OPERATIONS - set(ALIASES)
    assert not unknown, f"botocore knows operations the classifier does not: {sorted(unknown)}"
    for name in model.operation_names:
        op = model.operation_model(name)
        uri = op.http["requestUri"].replace("{Bucket}", "b").replace("{Key+}", "k")
        path, _, qs = uri.partition("?")
        query = _query(qs)
        headers: dict[str, str] = {}
        shape = op.input_shape
        for member in (shape.required_members if shape else []):
            ser = shape.members[member].serialization
            if ser.get("location") == "querystring":
                query.setdefault(ser["name"], "1")
            elif ser.get("location") == "header":
                headers[ser["name"].lower()] = "x"
        if name == "ListDirectoryBuckets":
            query["max-directory-buckets"] = "10"
        bucket, key = _split(path)
        got = classify(op.http["method"], bucket, key, query, headers)
        assert got == ALIASES.get(name, name), (name, uri, query, headers)
