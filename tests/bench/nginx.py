"""Debian's nginx as a plain reverse proxy in front of the same upstream, for comparison.

The configuration is generated into a work directory of its own (config, pid file, logs, temp
paths: nothing under /etc/nginx or /var/lib/nginx is touched), on free ports:

* ``endpoint``: ``proxy_pass`` to the upstream with ``proxy_request_buffering off``,
  ``proxy_buffering off``, ``proxy_http_version 1.1`` and a keep-alive upstream pool. The client's
  ``Host`` header is passed through (``proxy_set_header Host $http_host``), so a request signed for
  nginx's own address verifies at the upstream.
* ``static_endpoint``: ``/static`` serves a small static file and ``/ok`` answers ``return 200``:
  what the load generator's own ceiling is measured against.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..gateway_process import free_port

STATIC_SIZE = 1024

_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{
    worker_connections 4096;
    multi_accept on;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_max_body_size 0;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    default_type application/octet-stream;

    upstream s3_upstream {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{
            proxy_pass http://s3_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_connect_timeout 10s;
            proxy_send_timeout 300s;
            proxy_read_timeout 300s;
        }}
    }}

    server {{
        listen 127.0.0.1:{static_port} backlog=1024;
        root {dir}/www;
        location = /ok {{
            return 200 "ok";
        }}
        location /static {{
        }}
    }}
}}
"""


class NginxProxy:
    """``NginxProxy(workdir, upstream_endpoint).start()``; ``stop()`` (SIGQUIT, then SIGKILL)."""

    def __init__(self, workdir: Path, upstream_endpoint: str, workers: int = 1) -> None:
        self.workdir = Path(workdir)
        self.upstream = urlsplit(upstream_endpoint).netloc
        self.workers = workers
        self.port = free_port()
        self.static_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.static_endpoint = f"http://127.0.0.1:{self.static_port}"
        self.proc: subprocess.Popen | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    def write_config(self) -> Path:
        d = self.workdir
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "www/static"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "www" / "static" / "1k").write_bytes(b"x" * STATIC_SIZE)
        # as root, workers run as root too (the work directory is not readable by nobody)
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf_path.write_text(_CONF.format(dir=d, upstream=self.upstream, port=self.port,
                                               static_port=self.static_port, user=user,
                                               workers=self.workers))
        return self.conf_path

    def start(self, timeout: float = 10.0) -> "NginxProxy":
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.write_config()
        args = [binary, "-p", str(self.workdir), "-c", str(self.conf_path), "-e", str(self.workdir / "error.log")]
        check = subprocess.run(args + ["-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self._log = open(self.workdir / "stderr.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.error_tail()}")
            if _connects(self.port) and _connects(self.static_port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen in {timeout}s: {self.error_tail()}")

    def error_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.workdir / "error.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.proc = None

    def __enter__(self) -> "NginxProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
