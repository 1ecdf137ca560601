"""Shared helpers of the reliability suite: process resource readings, metrics, raw requests."""
from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote, urlsplit

from tests import s3raw


@dataclass(frozen=True)
class UpstreamRef:
    """What GatewayProcess needs to know about an upstream (here: a FaultProxy in front of RGW)."""
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


# -- the gateway process's resources -----------------------------------------------------------------

def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def metric(endpoint: str, name: str) -> float:
    """One sample of an unlabelled metric from the gateway's unsigned GET /metrics."""
    with urllib.request.urlopen(endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} ([0-9.eE+-]+)$", text, re.M)
    if m is None:
        raise KeyError(name)
    return float(m.group(1))


def metric_sum(endpoint: str, name: str, **labels: str) -> float:
    """Sum of a labelled metric's samples whose labels include ``labels``."""
    with urllib.request.urlopen(endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} ([0-9.eE+-]+)$", text, re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


@dataclass
class Resources:
    fds: int
    rss_kib: int
    pool: float

    @classmethod
    def of(cls, gw) -> "Resources":
        return cls(fd_count(gw.pid), rss_kib(gw.pid), metric_sum(gw.endpoint, "r2gw_upstream_connections"))


def settle(gw, baseline: Resources, *, fd_slack: int = 6, rss_slack_mib: int = 24,
           timeout: float = 10.0) -> Resources:
    """Wait until the gateway's fds and RSS are back near ``baseline``; assert they get there.

    Connections closing (client and upstream sides) take a moment after a fault, so this polls.
    """
    deadline = time.monotonic() + timeout
    while True:
        now = Resources.of(gw)
        ok = (now.fds <= baseline.fds + fd_slack
              and now.rss_kib <= baseline.rss_kib + rss_slack_mib * 1024)
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert now.fds <= baseline.fds + fd_slack, f"fd leak: {baseline.fds} -> {now.fds}"
    assert now.rss_kib <= baseline.rss_kib + rss_slack_mib * 1024, \
        f"RSS grew: {baseline.rss_kib} KiB -> {now.rss_kib} KiB"
    return now


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


# -- hand-built requests -------------------------------------------------------------------------------

def signed_headers(gw, method: str, path: str, headers: dict[str, str] | None = None,
                   payload_hash: str = "UNSIGNED-PAYLOAD", **kw) -> dict[str, str]:
    return s3raw.sign(method, gw.endpoint + path, dict(headers or {}), payload_hash, gw.access_key,
                      gw.secret_key, **kw)


def obj_path(bucket: str, key: str) -> str:
    return f"/{quote(bucket, safe='')}/{quote(key, safe='/')}"


def request(gw, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
            *, sign: bool = True, timeout: float = 30, **kw) -> tuple[int, dict[str, str], bytes]:
    """One request through the gateway with http.client (signed with UNSIGNED-PAYLOAD by default)."""
    h = dict(headers or {})
    if sign:
        h = signed_headers(gw, method, path, h, **kw)
    return s3raw.send(gw.endpoint, method, path, h, body, timeout=timeout)


def error_code(body: bytes) -> str | None:
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def raw_connection(endpoint: str, timeout: float = 30) -> socket.socket:
    u = urlsplit(endpoint)
    return socket.create_connection((u.hostname, u.port), timeout=timeout)


def read_response_head(sock: socket.socket, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Read a status line and headers from a raw socket; returns (status, headers, extra bytes)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed before a response head")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def get_streaming(gw, bucket: str, key: str, timeout: float = 30) -> tuple[int, int | None, int, str | None]:
    """GET an object with http.client, reading the body to its end.

    Returns (status, Content-Length, bytes received, error): ``error`` names the exception that
    ended the read early (IncompleteRead, ConnectionResetError, ...), None when it was complete.
    """
    path = obj_path(bucket, key)
    h = signed_headers(gw, "GET", path, {}, s3raw.EMPTY)
    u = urlsplit(gw.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    received = 0
    try:
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        length = r.getheader("Content-Length")
        length = int(length) if length is not None else None
        try:
            while True:
                chunk = r.read(65536)
                if not chunk:
                    break
                received += len(chunk)
        except (http.client.IncompleteRead, ConnectionError, OSError) as e:
            return r.status, length, received, type(e).__name__
        if length is not None and received != length:
            return r.status, length, received, "short body"
        return r.status, length, received, None
    finally:
        conn.close()


def sockets_to_port(pid: int, port: int) -> int:
    """How many TCP sockets process ``pid`` holds to (or from) local port ``port`` (/proc/net/tcp)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            if port in (local_port, remote_port) and parts[3] == "01":  # ESTABLISHED
                inodes.add(parts[9])
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            n += 1
    return n
