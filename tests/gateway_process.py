"""The real gateway in a child process (``python -m gateway serve``), for tests and benchmarks.

It listens on free ports (HTTP, and HTTPS with a throw-away certificate), logs JSON to a file
(tests grep those logs for secrets), and is stopped with SIGTERM like Kubernetes would.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# every gateway log file and every secret the test run used: tests/integration/test_no_secrets_in_logs.py
# (marked runs_last) greps the one for the other
LOG_FILES: list[Path] = []
SECRETS: set[str] = set()


def remember_secret(value: str) -> str:
    """Register a secret a test sends (an SSE-C key, a password) so the final check looks for it."""
    if value and len(value) >= 8:
        SECRETS.add(value)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl, as any operator would)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class GatewayProcess:
    def __init__(self, workdir: Path, *, upstream=None, env: dict[str, str] | None = None,
                 config_path: Path | None = None, tls: bool = True, workers: int | None = None,
                 access_key: str = "gw-test-key", secret_key: str = "gw-test-secret-0123456789abcdef",
                 name: str = "gateway") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key, self.secret_key = access_key, secret_key
        self.log_path = self.workdir / f"{name}.log"
        self.https_endpoint = None
        self.ca_bundle = None
        e = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
        e["R2GW_LISTEN"] = f"127.0.0.1:{self.port}"
        if access_key:
            e["R2GW_ACCESS_KEY_ID"], e["R2GW_SECRET_ACCESS_KEY"] = access_key, secret_key
        if upstream is not None:
            e.update({"R2GW_UPSTREAM_ENDPOINT": upstream.endpoint,
                      "R2GW_UPSTREAM_REGION": getattr(upstream, "region", "us-east-1"),
                      "R2GW_UPSTREAM_ACCESS_KEY_ID": upstream.access_key,
                      "R2GW_UPSTREAM_SECRET_ACCESS_KEY": upstream.secret_key})
        if tls:
            cert, key = make_cert(self.workdir)
            tls_port = free_port()
            e.update({"R2GW_TLS_CERT": str(cert), "R2GW_TLS_KEY": str(key),
                      "R2GW_TLS_LISTEN": f"127.0.0.1:{tls_port}"})
            self.https_endpoint = f"https://127.0.0.1:{tls_port}"
            self.ca_bundle = str(cert)
        # TEST_UPSTREAM_TRANSPORT=lean runs every test gateway on that upstream transport (not an
        # R2GW_* name: the gateway refuses unknown R2GW_* variables, and some tests inherit os.environ)
        if os.environ.get("TEST_UPSTREAM_TRANSPORT"):
            e["R2GW_UPSTREAM_TRANSPORT"] = os.environ["TEST_UPSTREAM_TRANSPORT"]
        e.update(env or {})
        self.env = e
        self.args = [sys.executable, "-m", "gateway", "serve"]
        if config_path:
            self.args += ["--config", str(config_path)]
        if workers:
            self.args += ["--workers", str(workers)]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "GatewayProcess":
        LOG_FILES.append(self.log_path)
        for name, value in self.env.items():
            if name.startswith("R2GW_") and "SECRET" in name and not name.endswith("_FILE"):
                remember_secret(value)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not answer /healthz in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, https: bool = False, access_key: str | None = None, secret_key: str | None = None,
               region: str = "auto", **config):
        """A boto3 client for the gateway with default settings (except no hidden retries)."""
        import boto3
        from botocore.config import Config
        config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
        config.setdefault("s3", {"addressing_style": "path"})
        return boto3.client(
            "s3", endpoint_url=self.https_endpoint if https else self.endpoint,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key, region_name=region,
            verify=self.ca_bundle if https else None, config=Config(**config))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
