"""The aiohttp application: the gateway's parts, start-up and shut-down, internal endpoints, drain.

Internal endpoints (``/healthz``, ``/readyz``, ``/metrics``) answer only *unsigned* GET/HEAD
requests with no query. Every S3 request is signed (the gateway allows no anonymous access), so a
bucket named ``healthz`` stays reachable: ``GET /healthz`` signed is ListObjects on it.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from .auth.keys import Key, KeyStore
from .config import Settings
from .extensions import default_extensions
from .observability import Metrics, log
from .proxy import entry
from .rules import response as response_rules
from .rules.mode import Rules
from .rules.profile import load_profile
from .upstream.client import Upstream

INTERNAL_PATHS = ("/healthz", "/readyz", "/metrics")


@dataclass
class EmbeddedUpstream:
    """moto's S3 server in a child process: the in-memory upstream used when none is configured."""
    process: subprocess.Popen
    endpoint: str

    @classmethod
    def start(cls, timeout: float = 30.0) -> "EmbeddedUpstream":
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


class Gateway:
    """Everything one gateway process holds: settings, keys, rules, extensions, the upstream."""

    def __init__(self, settings: Settings, generated_key: Key | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        keys = [Key(k.access_key_id, k.secret_access_key.get_secret_value(), k.permission,
                    frozenset(k.buckets) if k.buckets is not None else None)
                for k in settings.client_keys()]
        if not keys:
            generated_key = generated_key or Key("R2GW" + secrets.token_hex(8).upper(), secrets.token_hex(32))
            keys = [generated_key]
        self.generated_key = generated_key if generated_key in keys else None
        self.keys = KeyStore(keys)
        self.internal_bucket = settings.upstream.internal_bucket
        self.virtual_host_domains = tuple(d.lower().strip(".") for d in settings.virtual_host_domains)
        self.profile = load_profile(settings.profile)
        if settings.storage_class_map:
            self.profile = self.profile.with_storage_class_map(settings.storage_class_map)
        self.rules = Rules(self.profile, settings.mode, self.metrics)
        # headers stripped / storage classes mapped back in answers; None: nothing to do
        self.response_rules = response_rules.build(self.profile, settings.mode)
        self.extensions = default_extensions()
        self.embedded: EmbeddedUpstream | None = None
        self.upstream: Upstream | None = None
        self.draining = False
        self.in_flight = 0
        self._ready_at = 0.0
        self._ready = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        up = self.settings.upstream
        if up.endpoint is None:
            self.embedded = await asyncio.to_thread(EmbeddedUpstream.start)
            endpoint, ak, sk, region = self.embedded.endpoint, "embedded", "embedded", up.region
            log.warning("embedded_upstream", endpoint=endpoint,
                        message="NO UPSTREAM CONFIGURED: using an in-memory S3 (moto). NOTHING IS PERSISTED.")
        else:
            endpoint, ak, sk, region = up.endpoint, up.access_key_id, up.secret_access_key.get_secret_value(), up.region
        self.upstream = Upstream(endpoint, ak, sk, region, max_connections=up.max_connections,
                                 connect_timeout=up.timeouts.connect, read_timeout=up.timeouts.read,
                                 verify_tls=up.verify_tls, dialect=up.dialect,
                                 transport=up.transport)
        await self.upstream.start()

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.close()
        if self.embedded is not None:
            self.embedded.stop()

    # -- internal endpoints --------------------------------------------------------------------
    def internal_endpoint(self, request: web.BaseRequest):
        path = request.raw_path
        if path not in INTERNAL_PATHS or request.method not in ("GET", "HEAD"):
            return None
        if "Authorization" in request.headers:
            return None
        if path == "/healthz":
            return self._healthz
        if path == "/readyz":
            return self._readyz
        if self.settings.metrics.enabled and not self.settings.metrics.listen:
            return self.metrics_handler
        return None

    async def _healthz(self, request: web.BaseRequest) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.BaseRequest) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining"}, status=503)
        now = time.monotonic()
        if now - self._ready_at > 2.0:
            self._ready = await self._probe_upstream()
            self._ready_at = now
        if self._ready:
            return web.json_response({"status": "ready", "profile": self.profile.name})
        return web.json_response({"status": "upstream unreachable"}, status=503)

    async def _probe_upstream(self) -> bool:
        from .upstream.client import UpstreamRequest
        try:
            # any answer below 500 proves the upstream is up; a HEAD of a bucket that is not
            # there is cheap everywhere (RGW mis-answers HEAD /, and GET / lists every bucket)
            resp = await asyncio.wait_for(self.upstream.send(UpstreamRequest("HEAD", "/r2gw-readiness-probe")), 5)
            resp.release()
            return resp.status < 500
        except Exception:
            return False

    async def metrics_handler(self, request: web.BaseRequest) -> web.Response:
        self.metrics.upstream_pool.set(self.upstream.pool_size if self.upstream else 0)
        body, ctype = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": ctype})


def build_server(gateway: Gateway) -> web.Server:
    """aiohttp's low-level server with the gateway's handler: every path is S3 (or an internal
    endpoint), so there is no router and no middleware chain to pay for on each request."""
    limits = gateway.settings.limits

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.version == (1, 1) and "Expect" in request.headers:
            # what aiohttp's router would do: SDKs (boto3) wait for this before sending a body
            if request.headers["Expect"].lower() == "100-continue":
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0
        return await entry(gateway, request)

    return web.Server(handler, max_line_size=limits.max_header_bytes, max_field_size=limits.max_header_bytes,
                      keepalive_timeout=limits.keepalive_timeout, auto_decompress=False, access_log=None)


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def banner(gateway: Gateway, endpoints: list[str]) -> str:
    lines = ["r2-gateway is serving", *(f"  endpoint:          {e}" for e in endpoints),
             f"  upstream:          {gateway.upstream.endpoint if gateway.upstream else '?'}"
             + ("  (embedded, in memory: NOTHING IS PERSISTED)" if gateway.embedded else ""),
             f"  profile:           {gateway.profile.name} ({gateway.settings.mode})"]
    if gateway.generated_key is not None:
        lines += [f"  access key id:     {gateway.generated_key.access_key_id}",
                  f"  secret access key: {gateway.generated_key.secret_access_key}",
                  "  (a key generated for this run; configure keys to choose your own)"]
    else:
        ids = ", ".join(gateway.keys.ids())
        lines.append(f"  access key ids:    {ids}")
    lines.append("  region:            auto")
    return "\n".join(lines)


async def drain(runner: web.BaseRunner, gateway: Gateway, timeout: float) -> None:
    """Stop accepting, let in-flight requests finish (up to ``timeout``), then shut down.

    aiohttp's own shutdown closes every connection first, which makes it drop the rest of an
    upload still arriving; so the gateway waits for its in-flight requests itself, answering
    each with ``Connection: close``, and only then lets aiohttp cancel what is left.
    """
    gateway.draining = True
    log.info("draining", timeout_seconds=timeout, in_flight=gateway.in_flight)
    for site in list(runner.sites):
        await site.stop()
    deadline = asyncio.get_running_loop().time() + timeout
    while gateway.in_flight and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    if gateway.in_flight:
        log.warning("drain_timeout", cancelled=gateway.in_flight)
    runner._shutdown_timeout = 0.5  # what is left is cancelled: its upstream writes are aborted
    await runner.cleanup()


async def serve(settings: Settings, *, reuse_port: bool = False, ready_fd: int | None = None,
                quiet: bool = False) -> int:
    """Run until SIGTERM/SIGINT, then drain: stop accepting, finish in-flight requests, exit 0."""
    gateway = Gateway(settings)
    await gateway.start()
    runner = web.ServerRunner(build_server(gateway), handle_signals=False,
                              shutdown_timeout=settings.drain_timeout)
    await runner.setup()
    endpoints = []
    if settings.listen:
        host, port = _split(settings.listen)
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=1024,
                           shutdown_timeout=settings.drain_timeout)
        await site.start()
        endpoints.append(f"http://{settings.listen}")
    if settings.tls.enabled:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(settings.tls.cert), str(settings.tls.key))
        host, port = _split(settings.tls.listen)
        await web.TCPSite(runner, host, port, ssl_context=ctx, reuse_port=reuse_port or None,
                          backlog=1024, shutdown_timeout=settings.drain_timeout).start()
        endpoints.append(f"https://{settings.tls.listen}")
    metrics_runner = None
    if settings.metrics.enabled and settings.metrics.listen:
        mapp = web.Application()
        mapp.router.add_get("/metrics", gateway.metrics_handler)
        metrics_runner = web.AppRunner(mapp, access_log=None)
        await metrics_runner.setup()
        host, port = _split(settings.metrics.listen)
        await web.TCPSite(metrics_runner, host, port, reuse_port=reuse_port or None).start()
        endpoints.append(f"http://{settings.metrics.listen}/metrics (metrics)")
    if not quiet:
        print(banner(gateway, endpoints), flush=True)
    log.info("started", endpoints=endpoints, profile=gateway.profile.name, mode=settings.mode, pid=os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    await stop.wait()
    await drain(runner, gateway, settings.drain_timeout)
    await gateway.stop()
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    log.info("stopped")
    return 0
