"""upstream.client.may_resend: which broken requests are sent again."""
import aiohttp
import pytest

from gateway.upstream.client import may_resend

GONE = aiohttp.ServerDisconnectedError()


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_idempotent_with_a_held_body(method):
    assert may_resend(method, None, GONE)
    assert may_resend(method, b"body", GONE)


@pytest.mark.parametrize("method", ["POST", "PATCH", "post"])
def test_never_a_post(method):
    assert not may_resend(method, None, GONE)
    assert not may_resend(method, b"<Delete/>", GONE)


def test_never_a_streaming_body():
    async def body():
        yield b"x"
    assert not may_resend("PUT", body(), GONE)


def test_never_after_the_write_broke():
    assert not may_resend("GET", None, aiohttp.ClientOSError("connection lost while sending the request"))
    assert not may_resend("GET", None, aiohttp.ClientPayloadError("connection closed in the response head"))
