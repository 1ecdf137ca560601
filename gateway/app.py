"""The gateway process: its parts (``Gateway``: settings, keys, rules, extensions, the stores),
the client-facing server built on them, start-up, the listeners, and the drain at shut-down.
Internal endpoints are :mod:`.internal`; the embedded upstream is :mod:`.embedded`."""
from __future__ import annotations

import asyncio
import gc
import os
import secrets
import signal
import ssl

from aiohttp import web

from .auth.credentials import Credentials
from .auth.keys import Key, KeyStore
from .billing import Billing, load_classes
from .config import Settings
from .extensions import default_extensions
from . import checksums, credentials_api, observability
from .observability import Metrics, log
from .errors import S3Error
from .embedded import EmbeddedUpstream
from .exchange import error_response, new_request_id
from .internal import InternalEndpoints
from .proxy import entry
from .report import endpoint as report_endpoint
from .report.live import Readiness
from .rules import keys as key_rules, response as response_rules
from .rules.mode import Rules
from .rules.profile import load_profile
from .server import Request, Response, Server
from .stores import Stores
from .stores.on_read import MigrateOnRead
from .upstream.client import Upstream

class Gateway:
    """Everything one gateway process holds: settings, keys, rules, extensions, the stores (one
    upstream client each, gateway/stores) and the background copies of migration on read."""

    def __init__(self, settings: Settings, generated_key: Key | None = None) -> None:
        self.settings = settings
        self.in_flight = 0
        self.metrics = Metrics(in_flight=lambda: self.in_flight)
        keys = [Key(k.access_key_id, k.secret_access_key.get_secret_value(), k.permission,
                    frozenset(k.buckets) if k.buckets is not None else None)
                for k in settings.client_keys()]
        if not keys:
            generated_key = generated_key or Key("R2GW" + secrets.token_hex(8).upper(), secrets.token_hex(32))
            keys = [generated_key]
        self.generated_key = generated_key if generated_key in keys else None
        self.keys = KeyStore(keys)
        self.virtual_host_domains = tuple(d.lower().strip(".") for d in settings.virtual_host_domains)
        self.profile = load_profile(settings.profile)
        self.credentials = Credentials.from_settings(self.keys, settings, self.metrics,
                                                     session_tokens=self.profile.session_tokens)
        if settings.storage_class_map:
            self.profile = self.profile.with_storage_class_map(settings.storage_class_map)
        self.rules = Rules(self.profile, settings.mode, self.metrics)
        # the profile's rules on keys (NFC, per-key write limit); None: nothing to do
        self.key_rules = key_rules.build(self.profile, settings.limits.key_write_limit)
        # headers stripped / storage classes mapped back in answers; None: nothing to do
        self.response_rules = response_rules.build(self.profile, settings.mode)
        self.extensions = default_extensions()
        self.embedded: EmbeddedUpstream | None = None
        self.stores: Stores | None = None
        self.migrate_on_read = MigrateOnRead(settings.migrate_on_read, self.metrics)
        self.draining = False
        self.internal = InternalEndpoints(self)
        # the readiness report (gateway/report/) and the R2 billing preview (gateway/billing.py)
        self.readiness = Readiness(settings, self.profile)
        report_endpoint.install(self)
        self.billing = Billing(load_classes()) if settings.billing_metrics else None
        if self.billing is not None:
            self.metrics.registry.register(self.billing)
        credentials_api.install(self)   # Cloudflare's temp-access-credentials endpoint, when enabled

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def upstream(self) -> Upstream | None:
        """The default store's client."""
        return self.stores.default if self.stores is not None else None

    async def start(self) -> None:
        embedded = None
        if self.settings.upstream.endpoint is None:
            self.embedded = await asyncio.to_thread(EmbeddedUpstream.start)
            log.warning("embedded_upstream", endpoint=self.embedded.endpoint,
                        message="NO UPSTREAM CONFIGURED: using an in-memory S3 (moto). NOTHING IS PERSISTED.")
            embedded = self.embedded.endpoint
        self.stores = Stores(self.settings, embedded)
        await self.stores.start()

    async def stop(self, timeout: float = 0.0) -> None:
        """Close the stores once the background copies have finished (or, after ``timeout``
        seconds, been aborted: nothing partial is left)."""
        await self.migrate_on_read.close(timeout)
        if self.stores is not None:
            await self.stores.close()
        if self.embedded is not None:
            self.embedded.stop()

    # -- internal endpoints (gateway/internal.py) --------------------------------------------
    def internal_endpoint(self, request: Request):
        """The handler of an internal endpoint this request asks for, else None (it is S3)."""
        return self.internal.route(request)

    def metrics_body(self) -> tuple[bytes, str]:
        for store in self.stores or ():
            self.metrics.upstream_pool.labels(store.name).set(store.pool_size)
        return self.metrics.render()


def build_server(gateway: Gateway) -> Server:
    """The client-facing server (gateway/server/) with the gateway's handler: every path is S3 (or
    an internal endpoint), so there is no router and no middleware chain on the request path."""
    limits = gateway.settings.limits

    async def handler(request: Request):
        return await entry(gateway, request)

    def reject(err: S3Error) -> Response:
        # a request that could not be parsed: no operation, no access line, just the S3 error
        return error_response("GET", err, new_request_id())

    return Server(handler, reject, max_field_bytes=limits.max_header_bytes,
                  max_head_bytes=limits.max_header_section_bytes, max_header_fields=limits.max_header_fields,
                  keepalive_timeout=limits.keepalive_timeout, head_timeout=limits.client_read_timeout,
                  send_timeout=limits.client_send_timeout, max_connections=limits.max_connections)


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def banner(gateway: Gateway, endpoints: list[str]) -> str:
    lines = ["r2-gateway is serving", *(f"  endpoint:          {e}" for e in endpoints),
             f"  upstream:          {gateway.upstream.endpoint if gateway.upstream else '?'}"
             + ("  (embedded, in memory: NOTHING IS PERSISTED)" if gateway.embedded else ""),
             *(f"  store {s.name + ':':<12} {s.endpoint}" for s in gateway.stores or () if s.name != "default"),
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


async def drain(listeners: list[asyncio.AbstractServer], server: Server, gateway: Gateway,
                timeout: float) -> None:
    """Stop accepting, let in-flight requests finish (up to ``timeout``), then shut down.

    Idle keep-alive connections close at once; each in-flight request is answered with
    ``Connection: close``; what is still running at the deadline is aborted (its upstream writes
    are aborted with it, so a half-received upload never lands).
    """
    gateway.draining = True
    log.info("draining", timeout_seconds=timeout, in_flight=gateway.in_flight)
    for listener in listeners:
        listener.close()
    server.begin_shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while gateway.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if gateway.in_flight:
        log.warning("drain_timeout", cancelled=gateway.in_flight)
    await asyncio.sleep(0.05)   # answers just written leave before their connections are cut
    server.abort_all()
    await asyncio.sleep(0)


async def serve(settings: Settings, *, reuse_port: bool = False, ready_fd: int | None = None,
                quiet: bool = False) -> int:
    """Run until SIGTERM/SIGINT, then drain: stop accepting, finish in-flight requests, exit 0."""
    gateway = Gateway(settings)
    await gateway.start()
    await gateway.readiness.start()
    server = build_server(gateway)
    checksums.preload()   # not on the first request that carries a CRC32C or CRC64NVME
    # what start-up made lives as long as the process: out of the cycle collector's sight, so that
    # a full collection (rare: requests leave no cycles, tests/integration/test_no_cycles.py) does
    # not traverse it on someone's request
    gc.freeze()
    loop = asyncio.get_running_loop()
    listeners: list[asyncio.AbstractServer] = []
    endpoints = []
    if settings.listen:
        host, port = _split(settings.listen)
        listeners.append(await loop.create_server(server, host, port, reuse_port=reuse_port or None,
                                                  backlog=1024))
        endpoints.append(f"http://{settings.listen}")
    if settings.tls.enabled:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(settings.tls.cert), str(settings.tls.key))
        host, port = _split(settings.tls.listen)
        listeners.append(await loop.create_server(server, host, port, ssl=ctx, reuse_port=reuse_port or None,
                                                  backlog=1024))
        endpoints.append(f"https://{settings.tls.listen}")
    metrics_runner = None
    if settings.metrics.enabled and settings.metrics.listen:
        mapp = web.Application()
        mapp.router.add_get("/metrics", gateway.internal.metrics_aiohttp)
        report_endpoint.install_aiohttp(gateway, mapp)
        metrics_runner = web.AppRunner(mapp, access_log=None)
        await metrics_runner.setup()
        host, port = _split(settings.metrics.listen)
        await web.TCPSite(metrics_runner, host, port, reuse_port=reuse_port or None).start()
        endpoints.append(f"http://{settings.metrics.listen}/metrics (metrics)")
    if not quiet:
        print(banner(gateway, endpoints), flush=True)
    log.info("started", endpoints=endpoints, profile=gateway.profile.name, mode=settings.mode, pid=os.getpid())
    for warning in settings.shared_internal_buckets():
        log.warning("internal_bucket_shared", detail=warning)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    await stop.wait()
    drain_started = loop.time()
    await drain(listeners, server, gateway, settings.drain_timeout)
    observability.access_log.flush()
    gateway.readiness.stop()   # the findings' last save
    # background copies of migration on read share the drain's deadline
    await gateway.stop(max(0.0, settings.drain_timeout - (loop.time() - drain_started)))
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    log.info("stopped")
    return 0
