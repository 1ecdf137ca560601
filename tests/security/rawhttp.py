"""Raw HTTP/1.1 over a socket: requests as bytes (so that nothing rewrites them), several sent in one
write (pipelining), and a small response reader. Loopback only."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class Raw:
    """One request as it goes on the wire: ``headers`` in order (duplicates allowed)."""
    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    label: str = ""

    def encode(self) -> bytes:
        head = f"{self.method} {self.target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers)
        return head.encode("utf-8", "surrogateescape") + b"\r\n" + self.body


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.buf += data
        return True

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("short body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self, method: str) -> Answer | None:
        line = self.line()
        if not line:
            return None
        status = int(line.split(b" ")[1])
        headers: dict[str, str] = {}
        while True:
            h = self.line()
            if h is None:
                raise ConnectionError("connection closed in a response head")
            if not h:
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if status == 100:
            return self.answer(method)
        if method == "HEAD" or status in (204, 304):
            return Answer(status, headers, b"")
        if "content-length" in headers:
            return Answer(status, headers, self.exactly(int(headers["content-length"])))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((self.line() or b"0").split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    return Answer(status, headers, body)
                body += self.exactly(size)
                self.exactly(2)
        body = self.buf
        while self._fill():
            body, self.buf = body + self.buf, b""
        self.buf = b""
        return Answer(status, headers, body)


def exchange(address: tuple[str, int], requests: list[Raw], timeout: float = 10.0) -> list[Answer | None]:
    """Send ``requests`` pipelined in one write on one connection; the answers, in order (None for
    those the server closed the connection before answering)."""
    out: list[Answer | None] = []
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(b"".join(r.encode() for r in requests))
        reader = _Reader(sock)
        for r in requests:
            try:
                a = reader.answer(r.method)
            except (ConnectionError, OSError, ValueError, IndexError):
                a = None
            out.append(a)
            if a is None or a.headers.get("connection", "").lower() == "close":
                break
    return out + [None] * (len(requests) - len(out))


def send_bytes(address: tuple[str, int], data: bytes, timeout: float = 5.0) -> bytes:
    """Write ``data`` (anything, malformed included), half-close, read until the server closes."""
    got = b""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        try:
            sock.shutdown(socket.SHUT_WR)
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, OSError):
            pass
    return got
