"""The readiness report of a running gateway: findings recorded as requests are answered, kept in
memory (bounded), and, when ``report.state_file`` is set, saved there atomically every
``report.save_seconds`` and at shutdown, and read back at start-up.

With several worker processes each keeps its own file (``<state_file>.<worker>``), and each
worker's report adds the others' last saved findings to its own.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import orjson

from ..addressing import parse_query
from ..errors import S3Error
from ..observability import log, request_line, user_agent
from ..operations import classify
from .detect import auth_findings
from .findings import Findings, finding_id
from .render import document


class Readiness:
    def __init__(self, settings, profile) -> None:
        cfg = settings.report
        self.enabled = cfg.enabled and settings.mode != "off"
        self.profile = profile
        self.mode = settings.mode
        self.findings = Findings(cfg.max_rows)
        self.state_file: Path | None = Path(cfg.state_file) if cfg.state_file else None
        self.save_seconds = cfg.save_seconds
        self.workers = settings.workers   # > 1: state_file is this worker's ``<file>.<i>`` (cli.py)
        self._dirty = False
        self._task: asyncio.Task | None = None

    # -- recording (on the request path, only for requests with findings) ---------------------
    def record(self, ex, status: int, error_code: str | None) -> None:
        now = time.time()
        auth = ex.auth
        key_id = auth.access_key_id if auth is not None else ex.claimed_key_id
        ua = user_agent(ex.headers)
        add = self.findings.add
        for feature in ex.features:
            row = add(finding_id(feature), ex.op, key_id, ua, ex.bucket, now)
            if row.example is None:
                row.example = {"request": request_line(ex.method, ex.raw_path, ex.raw_query), "feature": feature,
                               "status": status, "error_code": error_code, "request_id": ex.request_id,
                               "user_agent": ua}
        self._dirty = True

    def refused_auth(self, ex) -> None:
        """A request refused at authentication: what of it R2 would refuse too (SigV2, …)."""
        features, key_id = auth_findings(ex.headers, ex.raw_query)
        if features:
            ex.features.extend(features)
            ex.claimed_key_id = key_id
            if ex.op == "Unknown":   # authentication comes first: the operation is named for the report
                try:
                    ex.op = classify(ex.method, ex.bucket, ex.key, parse_query(ex.raw_query), ex.headers)
                except S3Error:
                    pass

    # -- the report ---------------------------------------------------------------------------
    def document(self) -> dict:
        findings = self.findings
        siblings = self._sibling_states()
        if siblings:
            merged = Findings(findings.max_rows * (1 + len(siblings)))
            merged.merge(findings)
            for other in siblings:
                merged.merge(other)
            findings = merged
        return document(findings, self.profile, mode=self.mode, source="live")

    def _sibling_states(self) -> list[Findings]:
        path = self.state_file
        if path is None or self.workers <= 1 or not path.suffix[1:].isdigit():
            return []
        base = path.with_suffix("")
        out = []
        for i in range(self.workers):
            other = base.with_name(f"{base.name}.{i}")
            if other != path:
                loaded = _load(other, self.findings.max_rows)
                if loaded is not None:
                    out.append(loaded)
        return out

    # -- kept across restarts -----------------------------------------------------------------
    async def start(self) -> None:
        if not self.enabled or self.state_file is None:
            return
        loaded = _load(self.state_file, self.findings.max_rows)
        if loaded is not None:
            loaded.merge(self.findings)
            self.findings = loaded
            log.info("readiness_state_loaded", path=str(self.state_file), rows=len(loaded))
        self._task = asyncio.get_running_loop().create_task(self._save_every())

    async def _save_every(self) -> None:
        while True:
            await asyncio.sleep(self.save_seconds)
            if self._dirty:
                self._dirty = False
                try:
                    data = orjson.dumps(self.findings.to_state())
                    await asyncio.to_thread(self._write, data)
                except Exception:   # the next round tries again; requests never see it
                    self._dirty = True
                    log.exception("readiness_state_not_saved", path=str(self.state_file))

    def stop(self) -> None:
        """At shutdown: the last save."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.enabled and self.state_file is not None:
            self._write(orjson.dumps(self.findings.to_state()))

    def _write(self, data: bytes) -> None:
        path = self.state_file
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)   # readers see the old file or the new one, never half of one
        except OSError as e:
            log.warning("readiness_state_not_saved", path=str(path), error=e.strerror or type(e).__name__)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _load(path: Path, max_rows: int) -> Findings | None:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as e:
        log.warning("readiness_state_unreadable", path=str(path), error=str(e)[:200])
        return None
    try:
        return Findings.from_state(data, max_rows)
    except ValueError as e:
        log.warning("readiness_state_unreadable", path=str(path), error=str(e)[:200])
        return None
