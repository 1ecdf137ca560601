"""Fixtures for the real-client tests: the payloads, a clean environment for client processes, and
a runner for those processes. The gateway (HTTP and HTTPS) in front of Ceph RGW and the direct
RGW client come from tests/conftest.py (``gateway``, ``rgw_s3``).

The clients other than the Python SDKs are installed by tests/clients/install-clients.sh (run by
``make test``); a missing one fails the test with that hint, it is never skipped.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOOLS = HERE / ".tools"
AWS = TOOLS / "awscli" / "bin" / "aws"
JS = HERE / "js"

SMALL_SIZE = 10 * 1024 + 7
LARGE_SIZE = 21 * 1024 * 1024 + 333  # a partial last part for every client's part size


@dataclass(frozen=True)
class Payloads:
    small: Path
    large: Path
    small_bytes: bytes
    large_sha256: str


@pytest.fixture(scope="session")
def payloads(tmp_path_factory) -> Payloads:
    d = tmp_path_factory.mktemp("payloads")
    small = d / "small.txt"
    small_bytes = (b"hello from a real client\n" * 400 + os.urandom(SMALL_SIZE))[:SMALL_SIZE]
    small.write_bytes(small_bytes)
    large = d / "large.bin"
    h = hashlib.sha256()
    with open(large, "wb") as f:
        left = LARGE_SIZE
        while left:
            block = os.urandom(min(left, 1 << 20))
            h.update(block)
            f.write(block)
            left -= len(block)
    return Payloads(small, large, small_bytes, h.hexdigest())


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a client process: no AWS_*/RCLONE_* or proxy settings leak in from
    the developer's shell, and HOME is a scratch directory (no ~/.aws, ~/.s3cfg, rclone.conf)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "TMPDIR": str(home), "NO_PROXY": "*", "no_proxy": "*"}
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = 120, cwd: Path | None = None,
        ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    """Run a client command; a non-zero exit fails the test with the client's own output."""
    started = time.monotonic()
    try:
        proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                              timeout=timeout, text=True)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{cmd[0]} timed out after {timeout}s: {' '.join(map(str, cmd))}\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}", pytrace=False)
    if os.environ.get("CLIENT_TIMING"):  # CLIENT_TIMING=1 pytest -s: where the time goes
        print(f"\n{time.monotonic() - started:6.2f}s {' '.join(map(str, cmd))[-150:]}", file=sys.stderr)
    if proc.returncode not in ok:
        pytest.fail(f"{' '.join(map(str, cmd))}\n→ exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                    f"stderr:\n{proc.stderr[-4000:]}", pytrace=False)
    return proc


def require(path_or_name: str | Path) -> str:
    """The executable, or a test failure that says how to install it (never a skip)."""
    p = Path(path_or_name)
    found = str(p) if p.is_absolute() and os.access(p, os.X_OK) else shutil.which(str(path_or_name))
    if not found:
        pytest.fail(f"{path_or_name} is not installed: run `bash tests/clients/install-clients.sh`",
                    pytrace=False)
    return found


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture(scope="module")
def vhost_gateway(rgw, tmp_path_factory):
    """A gateway that also takes virtual-hosted-style requests for ``<bucket>.localhost``."""
    from tests.gateway_process import GatewayProcess
    gw = GatewayProcess(tmp_path_factory.mktemp("gateway-vhost"), upstream=rgw, tls=False,
                        env={"R2GW_VIRTUAL_HOST_DOMAINS": "localhost"}, name="gateway-vhost")
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def localhost_subdomains(monkeypatch):
    """``*.localhost`` resolves to 127.0.0.1 in this process, as a wildcard DNS record for a
    gateway's domain would (glibc here resolves only ``localhost`` itself)."""
    import socket
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.lower().endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
