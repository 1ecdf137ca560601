"""The access log: one JSON line per request, written in batches (timer, size, explicit flush)."""
import asyncio
import io
import json

from gateway.observability import AccessLog


def _line(log: AccessLog, i: int, key: str = "k") -> None:
    log.request(f"REQ{i}", "AKID", "GetObject", "GET", "b", key, 200, 200, 0, 10, 1.5, None)


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
    asyncio.run(t())


def test_a_full_buffer_is_written_at_once_and_flush_empties_it():
    async def t():
        out = io.BytesIO()
        log = AccessLog(out, flush_seconds=60, buffer_bytes=1000)
        for i in range(21):
            _line(log, i)
        written = len(out.getvalue().splitlines())
        assert 0 < written < 21
        log.flush()                                  # what shutdown does
        assert len(out.getvalue().splitlines()) == 21
    asyncio.run(t())


def test_zero_interval_writes_each_line_and_keys_are_scrubbed():
    out = io.BytesIO()
    log = AccessLog(out, flush_seconds=0)
    _line(log, 1, key="a/Signature=abcdef0123")
    line = json.loads(out.getvalue())
    assert "abcdef0123" not in out.getvalue().decode() and "<redacted>" in line["key"]
