"""moto's S3 server as a throwaway upstream, in a subprocess on a free port of 127.0.0.1.

moto checks no signature, Content-MD5, checksum or SSE-C key (see shared/upstream-notes.md):
it is a convenience upstream, never the one a test of integrity or authentication relies on.
It runs in its own process so that its CPU time does not share the test process's GIL.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

__all__ = ["MotoServer", "MotoServerError"]


class MotoServerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_INSTANCES: "weakref.WeakSet[MotoServer]" = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for inst in list(_INSTANCES):
        try:
            inst.stop()
        except Exception:  # pragma: no cover
            pass


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1:<free port>.

    ``log_path``: where the server's output (one line per request) goes; None discards it.
    """

    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(self, port: int | None = None, *, log_path: Path | str | None = None,
                 start_timeout: float = 30.0) -> None:
        self._port = port
        self.log_path = Path(log_path) if log_path is not None else None
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise MotoServerError("not started")
        return self._port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise MotoServerError("already started")
        if self._port is None:
            self._port = _free_port()
        env = dict(os.environ)
        # never let moto pick up real credentials or talk to AWS
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION=self.region)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")
        else:
            out = open(os.devnull, "wb")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self._port)],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
        _INSTANCES.add(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise MotoServerError(f"moto server exited with {self._proc.returncode} at start"
                                      + (f" (log: {self.log_path})" if self.log_path else ""))
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=2) as r:
                    r.read()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise MotoServerError(f"moto server did not answer on {self.endpoint} "
                                      f"within {self.start_timeout:.0f}s")
            time.sleep(0.05)

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API)."""
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def stop(self, grace: float = 3.0) -> None:
        proc, self._proc = self._proc, None
        _INSTANCES.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> "MotoServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
