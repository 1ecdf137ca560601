"""The access log: one JSON line per request, written in batches (timer, size, explicit flush)."""
import asyncio
import io
import json
from types import SimpleNamespace

from gateway.observability import AccessLog, request_line


def _exchange(i: int = 0, key: str = "k", **kw) -> SimpleNamespace:
    ex = SimpleNamespace(request_id=f"REQ{i}", auth=SimpleNamespace(access_key_id="AKID"), op="GetObject",
                         method="GET", bucket="b", key=key, upstream_status=200, bytes_in=0, bytes_out=10,
                         features=[], headers={"user-agent": "Boto3/1.40.0 md/Botocore#1.40.0"},
                         raw_path=f"/b/{key}", raw_query="", claimed_key_id=None, upstream_request_id=None,
                         client_key=SimpleNamespace(kind="key"))
    for k, v in kw.items():
        setattr(ex, k, v)
    return ex


def _line(log: AccessLog, i: int, key: str = "k") -> None:
    log.request(_exchange(i, key), 200, None, 1.5)


def test_lines_leave_after_the_flush_interval_not_before():
    async def t():
        out = io.BytesIO()
        log = AccessLog(out, flush_seconds=0.1)
        for i in range(3):
            _line(log, i)
        assert out.getvalue() == b""                 # batched: nothing written yet
        await asyncio.sleep(0.25)
        lines = [json.loads(x) for x in out.getvalue().splitlines()]
        assert [x["request_id"] for x in lines] == ["REQ0", "REQ1", "REQ2"]
        assert lines[0]["event"] == "request" and lines[0]["level"] == "info"
        assert lines[0]["timestamp"].endswith("Z") and lines[0]["bytes_out"] == 10
        assert lines[0]["credential"] == "key"
    asyncio.run(t())


def test_the_line_says_which_kind_of_credential_signed():
    out = io.BytesIO()
    log = AccessLog(out, flush_seconds=0)
    log.request(_exchange(1, client_key=SimpleNamespace(kind="temporary")), 200, None, 1.0)
    log.request(_exchange(2, auth=None, client_key=None), 403, "AccessDenied", 1.0)
    first, second = [json.loads(x) for x in out.getvalue().splitlines()]
    assert (first["access_key_id"], first["credential"]) == ("AKID", "temporary")
    assert (second["access_key_id"], second["credential"]) == (None, None)
    r2 = AccessLog(io.BytesIO(), flush_seconds=0, shape="r2")
    r2.request(_exchange(3, client_key=SimpleNamespace(kind="temporary")), 200, None, 1.0)
    record = json.loads(r2._stream.getvalue())
    assert record["actor"]["accessKeyId"] == "AKID" and record["r2gw"]["credential"] == "temporary"


def test_a_full_buffer_is_written_at_once_and_flush_empties_it():
    async def t():
        out = io.BytesIO()
        log = AccessLog(out, flush_seconds=60, buffer_bytes=1000)
        for i in range(22):
            _line(log, i)
        written = len(out.getvalue().splitlines())
        assert 0 < written < 22
        log.flush()                                  # what shutdown does
        assert len(out.getvalue().splitlines()) == 22
    asyncio.run(t())


def test_zero_interval_writes_each_line_and_keys_are_scrubbed():
    out = io.BytesIO()
    log = AccessLog(out, flush_seconds=0)
    _line(log, 1, key="a/Signature=abcdef0123")
    line = json.loads(out.getvalue())
    assert "abcdef0123" not in out.getvalue().decode() and "<redacted>" in line["key"]


def test_a_failed_request_carries_its_error_code_and_a_finding_its_request_line():
    out = io.BytesIO()
    log = AccessLog(out, flush_seconds=0)
    log.request(_exchange(1), 403, "SignatureDoesNotMatch", 0.4)
    ex = _exchange(2, op="PutObject", method="PUT", features=["x-amz-acl=public-read"],
                   raw_query="X-Amz-Signature=0123456789abcdef&x-id=PutObject")
    log.request(ex, 501, "NotImplemented", 0.7)
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert (first["status"], first["error_code"]) == (403, "SignatureDoesNotMatch")
    assert "request" not in first and first["user_agent"].startswith("Boto3/")
    assert second["features"] == ["x-amz-acl=public-read"] and second["error_code"] == "NotImplemented"
    assert second["request"] == "PUT /b/k?X-Amz-Signature=<redacted>&x-id=PutObject"
    assert b"0123456789abcdef" not in out.getvalue()


def test_the_r2_shape_has_r2s_fields_and_the_gateways_under_r2gw():
    out = io.BytesIO()
    log = AccessLog(out, flush_seconds=0, shape="r2")
    log.request(_exchange(3, bytes_out=1234), 200, None, 2.0)
    rec = json.loads(out.getvalue())
    assert rec["action"] == "GetObject" and rec["interface"] == "S3" and rec["status"] == 200
    assert rec["actor"] == {"accessKeyId": "AKID"} and rec["resource"] == {"bucket": "b", "key": "k"}
    assert rec["bytes"] == 1234 and rec["requestId"] == "REQ3" and rec["errorCode"] is None
    assert rec["r2gw"]["bytesOut"] == 1234 and rec["r2gw"]["userAgent"].startswith("Boto3/")


def test_request_lines_never_show_credentials():
    line = request_line("GET", "/b/k", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F2026"
                        "&X-Amz-Security-Token=tok-secret-123&X-Amz-Signature=abcdef&partNumber=2")
    assert "tok-secret-123" not in line and "abcdef" not in line and "AKID" not in line
    assert line.startswith("GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&") and line.endswith("&partNumber=2")
