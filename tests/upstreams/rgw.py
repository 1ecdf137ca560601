"""A throwaway Ceph RGW (one mon, one memstore OSD, radosgw/beast) for tests and benchmarks.

Everything the cluster writes (config, data, logs, pid files, admin sockets) lives under the
work directory given to :class:`CephRGW`, every TCP port is picked free at start, and nothing
reads or writes ``/etc/ceph``, ``/var/lib/ceph`` or ``/var/log/ceph``: two instances never
collide, and neither does a daemon someone started by hand on the default ports.

Usage::

    rgw = CephRGW(Path("/tmp/rgw1"))
    rgw.start()                 # ~1.5 s cold on a 2-core machine
    rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.region
    rgw.restart_rgw()           # bounce only radosgw, same port, data kept
    rgw.stop()

``CephRGW(dir, ops_log=True)`` turns on RGW's operations log; ``rgw.ops_log()`` reads it
(tests/upstreams/opslog.py): the record of what radosgw executed, one per request.

Command line (benchmarks)::

    python -m tests.upstreams.rgw start --workdir DIR [--memstore-gib 4] [--port N]

prints one JSON line (endpoint, access_key, secret_key, region, pids) and runs until
SIGINT/SIGTERM. See /work/shared/upstream-notes.md for why the settings are what they are.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import random
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from pathlib import Path
from typing import Iterable

__all__ = ["CephRGW", "CephRGWError", "ceph_binaries_missing", "pick_free_port", "REQUIRED_BINARIES"]

REQUIRED_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")

GiB = 1024**3

# Ports are drawn from here: below the Linux ephemeral range (32768+) so that an outgoing
# connection cannot grab the port between our probe and the daemon's bind, and away from
# Ceph's defaults (3300, 6789, 6800-7300, 7480).
_PORT_RANGE = (10000, 32000)


class CephRGWError(RuntimeError):
    """The cluster could not be started or a ceph command failed."""


class _DaemonExited(CephRGWError):
    """A daemon died during start (for instance: its port was taken after we picked it)."""


def ceph_binaries_missing() -> list[str]:
    """Names of the Ceph executables that are not on PATH (empty when all are there)."""
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # No SO_REUSEADDR: a port with lingering TIME_WAIT sockets counts as taken too.
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_free_port(exclude: Iterable[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to, below the ephemeral range."""
    excluded = set(exclude)
    rnd = random.SystemRandom()
    for _ in range(500):
        port = rnd.randint(*_PORT_RANGE)
        if port in excluded or 6780 <= port <= 7500:
            continue
        if _port_is_free(port):
            return port
    raise CephRGWError("no free TCP port found on 127.0.0.1")


def _pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # state is the field after the ")" that closes the command name
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")


def _pid_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _listens(pid: int, port: int) -> bool:
    """True if process ``pid`` itself holds a listening TCP socket on ``port``."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    except OSError:
        return False
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_bytes()[-16384:].decode(errors="replace").splitlines()
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(data[-lines:])


_PR_SET_PDEATHSIG = 1


def _make_preexec(pdeathsig: bool):
    if not pdeathsig:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:  # runs in the child between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


# Every started instance, so that atexit can stop what a crashed run left behind.
_INSTANCES: "weakref.WeakSet[CephRGW]" = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    for inst in list(_INSTANCES):
        try:
            inst.stop()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


atexit.register(_stop_all_at_exit)


class CephRGW:
    """One mon + one memstore OSD + radosgw (beast), all confined to ``workdir``.

    ``start()`` always creates a fresh, empty cluster (the work directory's previous cluster
    data is wiped); ``restart_rgw()`` bounces only radosgw and keeps the data.
    """

    MON_ID = "a"
    OSD_ID = 0
    RGW_NAME = "client.rgw.gw"
    CLUSTER = "ceph"

    def __init__(
        self,
        workdir: Path | str,
        *,
        memstore_bytes: int | None = None,
        rgw_port: int | None = None,
        mon_port: int | None = None,
        start_timeout: float = 90.0,
        user_max_buckets: int = 5000,
        extra_conf: dict[str, dict[str, str]] | None = None,
        debug_rgw: int | str | None = None,
        lc_debug_interval: int | None = None,
        ops_log: bool = False,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        if memstore_bytes is None:
            memstore_bytes = int(float(os.environ.get("RGW_MEMSTORE_GIB", "4")) * GiB)
        self.memstore_bytes = int(memstore_bytes)
        self._rgw_port = rgw_port
        self._mon_port = mon_port
        self.start_timeout = start_timeout
        self.user_max_buckets = user_max_buckets
        self.extra_conf = extra_conf or {}
        self.debug_rgw = debug_rgw
        self.lc_debug_interval = lc_debug_interval
        # RGW's operations log on a unix socket (tests/upstreams/opslog.py reads it)
        self.ops_log_enabled = ops_log
        self._access_key: str | None = None
        self._secret_key: str | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.RLock()
        self._started = False
        self._fsid = ""
        self.start_seconds: float | None = None

    # ------------------------------------------------------------------ paths & properties
    @property
    def ops_log_socket(self) -> Path:
        """The unix socket radosgw streams its operations log to (with ``ops_log=True``)."""
        return self.workdir / "run" / "ops-log.sock"

    def ops_log(self):
        """A started :class:`tests.upstreams.opslog.OpsLog` reader of this radosgw's operations
        log (stop it when done; records are sent only while a reader is connected)."""
        from .opslog import OpsLog
        if not self.ops_log_enabled:
            raise CephRGWError("this CephRGW was started without ops_log=True")
        return OpsLog(self.ops_log_socket).start()

    @property
    def conf_path(self) -> Path:
        return self.workdir / "ceph.conf"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{self.CLUSTER}-{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.log_dir / f"{self.CLUSTER}-{name}.log"

    @property
    def _daemons(self) -> tuple[str, str, str]:
        return (f"mon.{self.MON_ID}", f"osd.{self.OSD_ID}", self.RGW_NAME)

    @property
    def port(self) -> int:
        if self._rgw_port is None:
            raise CephRGWError("not started")
        return self._rgw_port

    @property
    def mon_port(self) -> int:
        if self._mon_port is None:
            raise CephRGWError("not started")
        return self._mon_port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_key(self) -> str:
        if self._access_key is None:
            raise CephRGWError("not started")
        return self._access_key

    @property
    def secret_key(self) -> str:
        if self._secret_key is None:
            raise CephRGWError("not started")
        return self._secret_key

    @property
    def region(self) -> str:
        # RGW does not check the region in the SigV4 credential scope (any name signs fine);
        # its zonegroup is called "default", which GetBucketLocation reports.
        return "us-east-1"

    @property
    def pid(self) -> int | None:
        """PID of radosgw, or None when it is not running."""
        return self._daemon_pid(self.RGW_NAME)

    def pids(self) -> dict[str, int | None]:
        return {name: self._daemon_pid(name) for name in self._daemons}

    def live_pids(self) -> list[int]:
        """The PIDs of the daemons that are running (mon, osd, radosgw)."""
        return [p for p in self.pids().values() if p]

    def is_running(self) -> bool:
        """True while radosgw is alive (see :meth:`cluster_running` for all three daemons)."""
        return self.pid is not None

    def cluster_running(self) -> bool:
        return all(self._daemon_pid(n) is not None for n in self._daemons)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("CEPH_ARGS", None)
        env["CEPH_CONF"] = str(self.conf_path)
        return env

    def info(self) -> dict:
        return {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "workdir": str(self.workdir),
            "conf": str(self.conf_path),
            "pids": self.pids(),
        }

    # ------------------------------------------------------------------ config
    def _conf_text(self) -> str:
        wd = self.workdir
        sections: dict[str, dict[str, str]] = {
            "global": {
                "fsid": self._fsid,
                "mon_host": f"[v2:127.0.0.1:{self.mon_port}]",
                "public_addr": "127.0.0.1",
                "cluster_addr": "127.0.0.1",
                "ms_bind_msgr1": "false",
                "ms_bind_ipv6": "false",
                # no cephx; every messenger mode must then be crc or radosgw hangs ~5 min
                "auth_cluster_required": "none",
                "auth_service_required": "none",
                "auth_client_required": "none",
                "ms_cluster_mode": "crc",
                "ms_service_mode": "crc",
                "ms_client_mode": "crc",
                "ms_mon_cluster_mode": "crc",
                "ms_mon_service_mode": "crc",
                "ms_mon_client_mode": "crc",
                # everything inside the work directory
                "run_dir": str(wd / "run"),
                "crash_dir": str(wd / "crash"),
                "keyring": str(wd / "keyring"),
                "mon_data": str(wd / "mon" / "$cluster-$id"),
                "osd_data": str(wd / "osd" / "$cluster-$id"),
                "rgw_data": str(wd / "rgw" / "$cluster-$id"),
                "mgr_data": str(wd / "mgr" / "$cluster-$id"),
                "mon_cluster_log_file": str(wd / "log" / "$cluster.$channel.log"),
                "mon_debug_dump_location": str(wd / "log" / "$cluster-$name.tdump"),
                "log_to_stderr": "false",
                "err_to_stderr": "true",
                # one OSD, no mgr
                "osd_pool_default_size": "1",
                "osd_pool_default_min_size": "1",
                "mon_allow_pool_size_one": "true",
                "osd_pool_default_pg_num": "8",
                "osd_pool_default_pgp_num": "8",
                "osd_pool_default_pg_autoscale_mode": "off",
                "mon_max_pg_per_osd": "1000",
                "osd_crush_chooseleaf_type": "0",
                "mon_allow_pool_delete": "true",
                "mon_warn_on_pool_no_redundancy": "false",
                "mon_data_avail_warn": "1",
                "mon_data_avail_crit": "0",
                "paxos_propose_interval": "0.1",
                # a taken port fails the daemon at once (default: 3 tries 5 s apart); start()
                # then retries with fresh ports
                "ms_bind_retry_count": "1",
                "ms_bind_retry_delay": "1",
            },
            "mon": {
                "debug_rocksdb": "0/0",  # no rocksdb stats dumps in the mon log
                "log_file": str(wd / "log" / "$cluster-$name.log"),
                "pid_file": str(wd / "run" / "$cluster-$name.pid"),
            },
            "osd": {
                "log_file": str(wd / "log" / "$cluster-$name.log"),
                "pid_file": str(wd / "run" / "$cluster-$name.pid"),
                "osd_objectstore": "memstore",
                "memstore_device_bytes": str(self.memstore_bytes),
                # SIGTERM exits at once (no 5 s wait for a mon that may be gone already)
                "osd_fast_shutdown": "true",
                "osd_fast_shutdown_notify_mon": "false",
                "osd_mon_shutdown_timeout": "1",
            },
            self.RGW_NAME: {
                "log_file": str(wd / "log" / "$cluster-$name.log"),
                "pid_file": str(wd / "run" / "$cluster-$name.pid"),
                "admin_socket": str(wd / "run" / "$cluster-$name.asok"),
                # tcp_nodelay: without it every small request stalls ~40 ms (Nagle + delayed ACK)
                "rgw_frontends": f"beast endpoint=127.0.0.1:{self.port} tcp_nodelay=1",
                # SSE-C over plain HTTP
                "rgw_crypt_require_ssl": "false",
                "rgw_init_timeout": "60",
                "rgw_thread_pool_size": "128",
                "rgw_dynamic_resharding": "false",
            },
        }
        rgw_sect = sections[self.RGW_NAME]
        if self.lc_debug_interval is None:
            # Lifecycle *processing* off (configurations are still stored and returned): its
            # worker sleeps 5 s at a time inside rgw_lifecycle_work_time (00:00-06:00 UTC),
            # which turns radosgw's SIGTERM shutdown from ~0.1 s into 5+ s.
            rgw_sect["rgw_enable_lc_threads"] = "false"
        else:
            # a lifecycle "day" lasts lc_debug_interval seconds, processing runs all the time
            rgw_sect["rgw_enable_lc_threads"] = "true"
            rgw_sect["rgw_lc_debug_interval"] = str(self.lc_debug_interval)
            rgw_sect["rgw_lifecycle_work_time"] = "00:00-23:59"
        if self.ops_log_enabled:
            rgw_sect["rgw_enable_ops_log"] = "true"
            rgw_sect["rgw_ops_log_rados"] = "false"
            rgw_sect["rgw_ops_log_socket_path"] = str(self.ops_log_socket)
        if self.debug_rgw is not None:
            sections[self.RGW_NAME]["debug_rgw"] = str(self.debug_rgw)
        for sect, opts in self.extra_conf.items():
            sections.setdefault(sect, {}).update({k: str(v) for k, v in opts.items()})
        out = []
        for sect, opts in sections.items():
            out.append(f"[{sect}]")
            out.extend(f"{k} = {v}" for k, v in opts.items())
            out.append("")
        return "\n".join(out)

    # ------------------------------------------------------------------ process helpers
    def _run(self, args: list[str], *, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
        try:
            cp = subprocess.run(
                args,
                env=self.env(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise CephRGWError(f"{' '.join(args)} timed out after {timeout}s\n{self._log_tails()}") from e
        if check and cp.returncode != 0:
            raise CephRGWError(
                f"{' '.join(args)} exited {cp.returncode}\nstdout: {cp.stdout[-2000:]}\nstderr: {cp.stderr[-2000:]}"
            )
        return cp

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.out", "ab")
        try:
            proc = subprocess.Popen(
                argv,
                env=self.env(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C in the terminal goes to us, not to the daemons
                # the daemons die with the thread that started them if it is the main thread
                # (i.e. when this process dies); never for a worker thread, which may end early
                preexec_fn=_make_preexec(threading.current_thread() is threading.main_thread()),
            )
        finally:
            out.close()
        self._procs[name] = proc
        # radosgw in the foreground writes no PID file (mon and OSD do, with the same PID)
        self._pid_file(name).write_text(f"{proc.pid}\n")
        return proc

    def _daemon_pid(self, name: str) -> int | None:
        proc = self._procs.get(name)
        if proc is not None:
            if proc.poll() is None:
                return proc.pid
            return None
        pid = self._read_pid_file(name)
        if pid is not None and _pid_alive(pid):
            return pid
        return None

    def _read_pid_file(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        # guard against PID reuse: it must be one of ours, started with our config
        if str(self.conf_path) not in _pid_cmdline(pid):
            return None
        return pid

    def _kill(self, name: str, grace: float = 5.0) -> None:
        proc = self._procs.pop(name, None)
        pids = set()
        if proc is not None and proc.poll() is None:
            pids.add(proc.pid)
        pf_pid = self._read_pid_file(name)
        if pf_pid is not None and _pid_alive(pf_pid):
            pids.add(pf_pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()
            if not any(_pid_alive(p) for p in pids):
                break
            time.sleep(0.02)
        for pid in pids:
            if _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        try:
            self._pid_file(name).unlink()
        except FileNotFoundError:
            pass

    def _log_tails(self, names: Iterable[str] | None = None, lines: int = 20) -> str:
        names = list(names) if names is not None else list(self._daemons)
        parts = []
        for n in names:
            for p in (self._log_file(n), self.log_dir / f"{n}.out"):
                if p.exists() and p.stat().st_size:
                    parts.append(f"--- tail of {p} ---\n{_tail(p, lines)}")
        return "\n".join(parts)

    def _check_alive(self, names: Iterable[str]) -> None:
        for n in names:
            proc = self._procs.get(n)
            if proc is not None and proc.poll() is not None:
                raise _DaemonExited(f"{n} exited with {proc.returncode} during start\n{self._log_tails([n], 40)}")

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create a fresh cluster in the work directory and wait until RGW answers HTTP."""
        with self._lock:
            if self._started:
                raise CephRGWError("already started")
            missing = ceph_binaries_missing()
            if missing:
                raise CephRGWError(
                    "Ceph binaries missing: " + ", ".join(missing)
                    + " (run `sudo bash tests/upstreams/install-system-deps.sh`)"
                )
            self._stop_stale()
            auto_ports = self._mon_port is None, self._rgw_port is None
            attempts = 2 if any(auto_ports) else 1
            for attempt in range(attempts):
                self._prepare_workdir()
                if auto_ports[0]:
                    self._mon_port = pick_free_port()
                if auto_ports[1]:
                    self._rgw_port = pick_free_port(exclude={self._mon_port})
                self.conf_path.write_text(self._conf_text())
                _INSTANCES.add(self)
                self._started = True
                t0 = time.monotonic()
                try:
                    self._bootstrap(t0 + self.start_timeout)
                except _DaemonExited:
                    self.stop()
                    # a port we picked may have been taken before the daemon bound it: retry
                    # once with fresh ports
                    if attempt + 1 < attempts:
                        continue
                    raise
                except BaseException:
                    self.stop()
                    raise
                self.start_seconds = time.monotonic() - t0
                return

    def _prepare_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for d in ("mon", "osd", "rgw", "mgr", "run", "crash", "log"):
            shutil.rmtree(self.workdir / d, ignore_errors=True)
        for d in ("mon", "osd", f"osd/{self.CLUSTER}-{self.OSD_ID}", "run", "log", "crash", "rgw"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        self._fsid = str(uuid.uuid4())

    def _bootstrap(self, deadline: float) -> None:
        c = ["-c", str(self.conf_path), "--cluster", self.CLUSTER]
        monmap = self.workdir / "monmap"
        self._run(["monmaptool", "--create", "--clobber", "--fsid", self._fsid,
                   "--addv", self.MON_ID, f"[v2:127.0.0.1:{self.mon_port}]", str(monmap)])
        self._run(["ceph-mon", *c, "--mkfs", "-i", self.MON_ID, "--monmap", str(monmap)])
        self._spawn(f"mon.{self.MON_ID}", ["ceph-mon", *c, "-f", "-i", self.MON_ID])

        # the OSD's store is made while the mon comes up (--no-mon-config: no need to ask it)
        osd_uuid = str(uuid.uuid4())
        self._run(["ceph-osd", *c, "--no-mon-config", "--mkfs", "-i", str(self.OSD_ID),
                   "--osd-uuid", osd_uuid])
        self._wait_listen(f"mon.{self.MON_ID}", self.mon_port, deadline)
        self._run(["ceph", *c, "--connect-timeout", str(max(5, int(deadline - time.monotonic()))),
                   "osd", "new", osd_uuid, str(self.OSD_ID)],
                  timeout=max(5.0, deadline - time.monotonic()))
        self._spawn(f"osd.{self.OSD_ID}", ["ceph-osd", *c, "-f", "-i", str(self.OSD_ID)])
        # radosgw waits by itself for the OSD to come up and its pools to be active
        self._start_rgw_process()
        self._wait_http(deadline)

        self._access_key, self._secret_key = self.create_user(
            "r2gw-test", max_buckets=self.user_max_buckets, display_name="r2-gateway tests"
        )

    def _start_rgw_process(self) -> None:
        c = ["-c", str(self.conf_path), "--cluster", self.CLUSTER]
        self._spawn(self.RGW_NAME, ["radosgw", *c, "-f", "-n", self.RGW_NAME])

    def _wait_listen(self, name: str, port: int, deadline: float) -> None:
        """Wait until daemon ``name`` itself listens on ``port`` (not someone else holding it)."""
        while True:
            self._check_alive([name])
            pid = self._daemon_pid(name)
            if pid is not None and _listens(pid, port):
                return
            if time.monotonic() > deadline:
                raise CephRGWError(f"{name} did not listen on port {port} within "
                                   f"{self.start_timeout:.0f}s\n{self._log_tails([name])}")
            time.sleep(0.02)

    def _wait_http(self, deadline: float) -> None:
        self._wait_listen(self.RGW_NAME, self.port, deadline)
        url = self.endpoint + "/"
        while True:
            self._check_alive(self._daemons)
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    r.read()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means beast is serving
            except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
                pass
            if time.monotonic() > deadline:
                raise CephRGWError(
                    f"radosgw did not answer HTTP on {url} within {self.start_timeout:.0f}s\n"
                    + self._log_tails()
                )
            time.sleep(0.05)

    def stop_rgw(self, grace: float = 5.0) -> None:
        """Stop only radosgw (the mon and OSD, and so the data, stay)."""
        with self._lock:
            self._kill(self.RGW_NAME, grace)

    def start_rgw(self, timeout: float | None = None) -> None:
        """Start radosgw again on the same port and wait until it answers HTTP."""
        with self._lock:
            if not self._started:
                raise CephRGWError("cluster not started")
            if self.pid is not None:
                return
            # beast binds with SO_REUSEADDR: TIME_WAIT sockets of the old process do not matter
            self._start_rgw_process()
            self._wait_http(time.monotonic() + (timeout or self.start_timeout))

    def restart_rgw(self, grace: float = 5.0) -> None:
        """Stop and start radosgw only, on the same port; objects and users survive."""
        with self._lock:
            self.stop_rgw(grace)
            self.start_rgw()

    def stop(self, grace: float = 5.0) -> None:
        """Stop all three daemons (radosgw, then OSD, then mon). Safe to call repeatedly."""
        with self._lock:
            for name in (self.RGW_NAME, f"osd.{self.OSD_ID}", f"mon.{self.MON_ID}"):
                self._kill(name, grace)
            self._started = False
            _INSTANCES.discard(self)

    def _stop_stale(self) -> None:
        """Kill daemons a previous run left in this work directory (matched by PID file + config)."""
        if not self.run_dir.is_dir():
            return
        for name in self._daemons:
            if self._read_pid_file(name) is not None:
                self._kill(name, grace=3.0)

    def __enter__(self) -> "CephRGW":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin
    def admin(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``radosgw-admin ARGS`` against this cluster; returns stdout, raises on failure."""
        cp = self._run(["radosgw-admin", "-c", str(self.conf_path), "--cluster", self.CLUSTER,
                        *map(str, args)], timeout=timeout)
        return cp.stdout

    def admin_json(self, *args: str, timeout: float = 60.0):
        out = self.admin(*args, timeout=timeout)
        return json.loads(out) if out.strip() else None

    def ceph(self, *args: str, timeout: float = 60.0) -> str:
        """Run the ``ceph`` CLI against this cluster; returns stdout."""
        cp = self._run(["ceph", "-c", str(self.conf_path), "--cluster", self.CLUSTER,
                        *map(str, args)], timeout=timeout)
        return cp.stdout

    def create_user(
        self, uid: str, max_buckets: int = 1000, display_name: str | None = None
    ) -> tuple[str, str]:
        """Create an S3 user; returns (access_key, secret_key)."""
        alphabet = string.ascii_uppercase + string.digits
        access = "".join(secrets.choice(alphabet) for _ in range(20))
        secret = secrets.token_urlsafe(30)[:40]
        self.admin(
            "user", "create", "--uid", uid, "--display-name", display_name or uid,
            "--max-buckets", str(max_buckets), "--access-key", access, "--secret-key", secret,
        )
        return access, secret


# ---------------------------------------------------------------------------- command line
def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tests.upstreams.rgw")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a cluster and run until SIGINT/SIGTERM")
    st.add_argument("--workdir", required=True, type=Path)
    st.add_argument("--port", type=int, default=None, help="RGW port (default: a free one)")
    st.add_argument("--memstore-gib", type=float, default=None, help="OSD memory cap (default 4)")
    st.add_argument("--max-buckets", type=int, default=5000)
    args = ap.parse_args(argv)

    rgw = CephRGW(
        args.workdir,
        rgw_port=args.port,
        memstore_bytes=None if args.memstore_gib is None else int(args.memstore_gib * GiB),
        user_max_buckets=args.max_buckets,
    )
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        rgw.start()
    except CephRGWError as e:
        print(str(e), file=sys.stderr)
        return 1
    info = rgw.info()
    info["start_seconds"] = round(rgw.start_seconds, 2)
    print(json.dumps(info), flush=True)
    try:
        while not stopping.wait(1.0):
            if not rgw.cluster_running():
                print("a ceph daemon exited:\n" + rgw._log_tails(), file=sys.stderr, flush=True)
                return 1
    finally:
        rgw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
