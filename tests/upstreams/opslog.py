"""Ceph RGW's operations log, read live: what the upstream actually executed.

With ``CephRGW(..., ops_log=True)`` radosgw streams one JSON record per request it handled to
whoever is connected to its unix socket (``rgw_ops_log_socket_path``; records are sent only while a
reader is connected). The stream is a JSON array written a record at a time: ``[`` first, then
``{...},`` lines. :class:`OpsLog` connects, parses records as they come (in a thread) and keeps
them; tests join them with the gateway's access log on ``trans_id`` (the ``x-amz-request-id`` RGW
answered, which the gateway logs as ``upstream_request_id``).

A record: ``bucket``, ``operation`` (RGW's names: ``get_obj``, ``put_obj``, ``copy_obj``,
``delete_obj``, ``multi_object_delete``, ``init_multipart``, ``complete_multipart``, …), ``uri``
(``PUT /bucket/key?query HTTP/1.1`` as RGW received it), ``http_status``, ``error_code``,
``trans_id``, ``access_key_id``, ``object_size``, … (no object key field: :func:`uri_key` reads it
from ``uri``).
"""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import unquote


class OpsLog:
    def __init__(self, socket_path: Path | str) -> None:
        self.socket_path = str(socket_path)
        self._records: list[dict] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []    # lines that were not JSON records

    def start(self, timeout: float = 10.0) -> "OpsLog":
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._sock = s
        self._thread = threading.Thread(target=self._read, name="rgw-ops-log", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(5)

    def _read(self) -> None:
        buf = b""
        sock = self._sock
        while True:
            try:
                data = sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._line(line)

    def _line(self, raw: bytes) -> None:
        line = raw.strip().lstrip(b"[").rstrip(b",").rstrip(b"]").strip()
        if not line:
            return
        try:
            rec = json.loads(line)
        except ValueError:
            self.errors.append(line[:200].decode(errors="replace"))
            return
        with self._lock:
            self._records.append(rec)

    def records(self) -> list[dict]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def wait_quiet(self, quiet: float = 0.5, timeout: float = 15.0) -> list[dict]:
        """The records, once none has arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        n, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            m = len(self._records)
            if m != n:
                n, since = m, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.05)
        return self.records()

    def __enter__(self) -> "OpsLog":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def uri_target(rec: dict) -> tuple[str, str, str]:
    """(method, raw path, raw query) of a record's ``uri``."""
    method, _, rest = rec.get("uri", "").partition(" ")
    target = rest.rsplit(" ", 1)[0] if " HTTP/" in rest else rest
    path, _, query = target.partition("?")
    return method, path, query


def uri_key(rec: dict) -> str | None:
    """The object key RGW's record is about (decoded from its ``uri``), None at bucket level."""
    _, path, _ = uri_target(rec)
    _, _, rest = path[1:].partition("/")
    return unquote(rest) if rest else None
