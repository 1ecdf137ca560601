"""The embedded upstream: moto's in-memory S3 server in a child process, what the gateway serves
from when no upstream is configured (a first run, a demo, the tests). Nothing it holds is persisted.
moto comes with the ``embedded`` extra: ``pip install 'r2-gateway[embedded]'``."""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass


class EmbeddedUnavailable(RuntimeError):
    """moto is not installed (a production install): an upstream must be configured."""


@dataclass
class EmbeddedUpstream:
    """moto's S3 server in a child process: the in-memory upstream used when none is configured."""
    process: subprocess.Popen
    endpoint: str

    @classmethod
    def start(cls, timeout: float = 30.0) -> "EmbeddedUpstream":
        if importlib.util.find_spec("moto") is None:
            raise EmbeddedUnavailable(
                "no upstream is configured and the embedded in-memory upstream is not installed: "
                "set upstream.endpoint (R2GW_UPSTREAM_ENDPOINT), or pip install 'r2-gateway[embedded]'")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the embedded upstream (moto) exited at start")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return cls(proc, f"http://127.0.0.1:{port}")
            except OSError:
                time.sleep(0.1)
        proc.kill()
        raise RuntimeError("the embedded upstream (moto) did not start in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
