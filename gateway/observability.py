"""JSON logs (structlog), the access log, and Prometheus metrics (rendered for ``/metrics``, which
:mod:`gateway.internal` serves with ``/healthz`` and ``/readyz``).

Nothing secret is ever passed to the logger: the access line carries the access key *id* only,
and ``redact()`` scrubs anything that looks like a credential out of free text.
"""
from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from bisect import bisect_left

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

_SECRETISH = re.compile(
    r"(Signature=|X-Amz-Signature=|Credential=|x-amz-server-side-encryption-customer-key[^:]*:|"
    r"authorization:|secret[_-]?access[_-]?key['\"]?[:=]\s*['\"]?)([^\s,&'\"]+)", re.I)


def redact(text: str) -> str:
    if "=" not in text and ":" not in text:  # every pattern above needs one of them
        return text
    return _SECRETISH.sub(lambda m: m.group(1) + "<redacted>", text)


def _scrub(_, __, event: dict) -> dict:
    for k, v in event.items():
        if isinstance(v, str) and k != "event":
            event[k] = redact(v)
    if isinstance(event.get("event"), str):
        event["event"] = redact(event["event"])
    return event


def configure_logging(level: str = "info", stream=None, access_flush_seconds: float = 0.1,
                      access_shape: str = "gateway") -> None:
    stream = stream or sys.stderr
    logging.basicConfig(level=_LEVELS[level], stream=stream, format="%(message)s", force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # one write per line (print() makes two on an unbuffered stream: the line, then "\n")
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # third-party loggers (aiohttp, botocore) through the same JSON renderer
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        foreign_pre_chain=[structlog.processors.add_log_level,
                           structlog.processors.TimeStamper(fmt="iso", utc=True),
                           structlog.processors.format_exc_info, _scrub]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.getLogger("aiohttp.access").disabled = True
    global access_log
    access_log.flush()
    access_log = AccessLog(getattr(stream, "buffer", None), flush_seconds=access_flush_seconds,
                           shape=access_shape)


log = structlog.get_logger("r2gw")


_AUTH_QUERY = ("X-Amz-Signature=", "X-Amz-Security-Token=", "Signature=", "X-Amz-Credential=")
MAX_USER_AGENT = 512   # a longer User-Agent is cut here, in the access line and in the report


def request_line(method: str, raw_path: str, raw_query: str) -> str:
    """``METHOD /path?query`` as the client sent it, with the query's credentials left out (a
    presigned URL's signature, credential and session token): safe to log and to show."""
    if raw_query:
        if "=" in raw_query and any(p in raw_query for p in _AUTH_QUERY):
            raw_query = "&".join(p.partition("=")[0] + "=<redacted>" if p.startswith(_AUTH_QUERY) else p
                                 for p in raw_query.split("&"))
        line = f"{method} {raw_path}?{raw_query}"
    else:
        line = f"{method} {raw_path}"
    if len(line) > 2048:
        line = line[:2048] + "…"
    return redact(line)


def user_agent(headers) -> str | None:
    """The request's User-Agent as it is logged and reported: cut at MAX_USER_AGENT, scrubbed."""
    ua = headers.get("user-agent")
    if ua is None:
        return None
    if len(ua) > MAX_USER_AGENT:
        ua = ua[:MAX_USER_AGENT]
    return redact(ua) if "=" in ua or ":" in ua else ua


class AccessLog:
    """The one JSON line per request, written in batches.

    It runs on every request, so it skips structlog's processor chain (~6 µs a line here) and
    renders the same fields (``event``, ``level``, ``timestamp``, then the request's) with orjson
    into a buffer. The buffer is written out when it holds ``buffer_bytes``, ``flush_seconds``
    after its first line, and at shutdown — as nginx's ``access_log … buffer= flush=`` does — so
    a busy gateway makes one write for many requests instead of one each. Only the object key and
    the User-Agent are client-chosen text, so only they are scrubbed.

    ``shape``: ``gateway`` (the fields below) or ``r2``, a record in the shape of R2's Data Access
    Logs (``action``, ``actor.accessKeyId``, ``interface``, ``resource.bucket``/``key``, ``status``,
    ``bytes``) with the gateway's own fields under ``r2gw`` (docs/observability.md).

    A line for a request with readiness findings (``features``) also carries ``request``, its
    request line (credentials left out), and, when its authentication failed, ``claimed_key_id``:
    what ``r2-gateway report --from`` needs to build the report from logs alone.
    """

    def __init__(self, stream=None, *, flush_seconds: float = 0.1, buffer_bytes: int = 64 * 1024,
                 shape: str = "gateway") -> None:
        self._stream = stream or sys.stderr.buffer
        self._buf = bytearray()
        self._flush_seconds = flush_seconds
        self._buffer_bytes = buffer_bytes
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""
        self.shape = shape
        self._render = self._r2_record if shape == "r2" else self._gateway_record

    def _timestamp(self) -> str:
        now = time.time()
        sec = int(now)
        if sec != self._second:
            self._second = sec
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._stamp}.{int((now - sec) * 1e6):06d}Z"

    def request(self, ex, status: int, error_code: str | None, duration_ms: float) -> None:
        """One answered request (``ex``: its Exchange)."""
        self._buf += orjson.dumps(self._render(ex, status, error_code, duration_ms),
                                  option=orjson.OPT_APPEND_NEWLINE)
        if len(self._buf) >= self._buffer_bytes or self._flush_seconds <= 0:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._flush_seconds, self.flush)

    @staticmethod
    def _client_text(ex) -> tuple[str | None, str | None]:
        key = ex.key
        if key and ("=" in key or ":" in key):
            key = redact(key)
        return key, user_agent(ex.headers)

    @staticmethod
    def _copy_source(ex) -> str | None:
        """``bucket/key`` a copy read (CopyObject, UploadPartCopy), once authenticated; else None."""
        if ex.auth is None or "x-amz-copy-source" not in ex.headers:
            return None
        try:
            bucket, key, _ = ex.copy_source()
        except Exception:      # a malformed header: refused, and shown nowhere
            return None
        return f"{bucket}/{redact(key) if '=' in key or ':' in key else key}"

    def _optional(self, ex, into: dict, copy_source: str, claimed_key_id: str) -> None:
        """The fields only some lines have, under each shape's names: the copy's source; with
        findings, the request line and the key id a failed authentication named."""
        source = self._copy_source(ex)
        if source is not None:
            into[copy_source] = source
        if ex.features:
            into["request"] = request_line(ex.method, ex.raw_path, ex.raw_query)
            if ex.claimed_key_id is not None:
                into[claimed_key_id] = ex.claimed_key_id

    def _gateway_record(self, ex, status: int, error_code: str | None, duration_ms: float) -> dict:
        key, ua = self._client_text(ex)
        auth = ex.auth
        rec = {"event": "request", "request_id": ex.request_id,
               "access_key_id": auth.access_key_id if auth is not None else None,
               "operation": ex.op, "method": ex.method, "bucket": ex.bucket, "key": key, "status": status,
               "error_code": error_code, "upstream_status": ex.upstream_status,
               "upstream_request_id": ex.upstream_request_id, "bytes_in": ex.bytes_in,
               "bytes_out": ex.bytes_out, "duration_ms": duration_ms, "features": ex.features or None,
               "user_agent": ua, "credential": ex.client_key.kind if ex.client_key is not None else None,
               "level": "info", "timestamp": self._timestamp()}
        self._optional(ex, rec, "copy_source", "claimed_key_id")
        return rec

    def _r2_record(self, ex, status: int, error_code: str | None, duration_ms: float) -> dict:
        key, ua = self._client_text(ex)
        auth = ex.auth
        extra = {"method": ex.method, "upstreamStatus": ex.upstream_status,
                 "upstreamRequestId": ex.upstream_request_id, "bytesIn": ex.bytes_in,
                 "bytesOut": ex.bytes_out, "userAgent": ua, "features": ex.features or None,
                 "credential": ex.client_key.kind if ex.client_key is not None else None}
        self._optional(ex, extra, "copySource", "claimedKeyId")
        return {"timestamp": self._timestamp(), "requestId": ex.request_id, "action": ex.op,
                "interface": "S3", "status": status, "errorCode": error_code,
                "actor": {"accessKeyId": auth.access_key_id if auth is not None else None},
                "resource": {"bucket": ex.bucket, "key": key},
                "bytes": ex.bytes_in + ex.bytes_out, "durationMs": duration_ms, "r2gw": extra}

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            pass   # a closed or broken log stream must not fail requests


access_log = AccessLog()

_LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)


class _Latencies:
    """Latency histograms by operation (or by a tuple of label values), kept as plain lists: an
    observation is one bisect and two additions (prometheus_client's Histogram takes a lock and
    walks its buckets in Python: ~1 µs a call, on every request). ``collect()`` renders them as a
    histogram family at scrape time."""

    __slots__ = ("name", "doc", "bounds", "by_op", "labels")

    def __init__(self, name: str, doc: str, bounds: tuple[float, ...],
                 labels: tuple[str, ...] = ("operation",)) -> None:
        self.name, self.doc, self.bounds, self.labels = name, doc, bounds, labels
        self.by_op: dict = {}

    def observe(self, op, seconds: float) -> None:
        h = self.by_op.get(op)
        if h is None:
            h = self.by_op[op] = [0] * (len(self.bounds) + 1) + [0.0]   # counts per bucket, +Inf, sum
        h[bisect_left(self.bounds, seconds)] += 1
        h[-1] += seconds

    def family(self) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(self.name, self.doc, labels=list(self.labels))
        for op, h in sorted(self.by_op.items()):
            cumulative, buckets = 0, []
            for bound, n in zip(self.bounds, h):
                cumulative += n
                buckets.append((floatToGoString(bound), cumulative))
            buckets.append(("+Inf", cumulative + h[len(self.bounds)]))
            fam.add_metric(list(op) if isinstance(op, tuple) else [op], buckets, sum_value=h[-1])
        return fam


class _RequestCollector:
    """The per-request metrics (counted in plain ints and lists by ``Metrics``) as Prometheus
    families, built when /metrics is scraped."""

    def __init__(self, metrics: "Metrics") -> None:
        self._m = metrics

    def describe(self):
        return []

    def collect(self):
        m = self._m
        requests = CounterMetricFamily("r2gw_requests", "Requests answered, by S3 operation and HTTP status.",
                                       labels=["operation", "status"])
        for (op, status), n in sorted(m.request_counts.items()):
            requests.add_metric([op, str(status)], n)
        yield requests
        yield m.latency.family()
        yield CounterMetricFamily("r2gw_received_bytes", "Request body bytes received from clients.",
                                  value=m.received_bytes)
        yield CounterMetricFamily("r2gw_sent_bytes", "Response body bytes sent to clients.", value=m.sent_bytes)
        yield m.upstream_latency.family()
        kinds = CounterMetricFamily("r2gw_authenticated_requests", "Authenticated requests, by the kind of "
                                    "credential that signed them: key or temporary.", labels=["credential"])
        for kind, n in sorted(m.credential_requests.items()):
            kinds.add_metric([kind], n)
        yield kinds


class Metrics:
    """Every metric the gateway exports, on one registry (one per process). What changes on every
    request is counted in plain Python numbers (the gateway is one thread per process) and turned
    into Prometheus families at scrape time; the rest are prometheus_client's own metrics."""

    def __init__(self, in_flight=None) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.request_counts: dict[tuple[str, int], int] = {}
        self.received_bytes = 0
        self.sent_bytes = 0
        self.latency = _Latencies("r2gw_request_duration_seconds", "Time to answer a request, by operation.",
                                  _LATENCY_BUCKETS)
        self.upstream_latency = _Latencies("r2gw_upstream_duration_seconds",
                                           "Time until the upstream's response headers, by operation and store.",
                                           _LATENCY_BUCKETS, ("operation", "upstream"))
        r.register(_RequestCollector(self))
        self.upstream_errors = Counter("r2gw_upstream_errors_total",
                                       "Upstream failures: unreachable, timeout, broken stream, 5xx; by store.",
                                       ["reason", "upstream"], registry=r)
        self.in_flight = Gauge("r2gw_requests_in_flight", "Requests being served now.", registry=r)
        if in_flight is not None:
            self.in_flight.set_function(in_flight)
        self.auth_failures = Counter("r2gw_auth_failures_total", "Requests refused by authentication, by reason.",
                                     ["reason"], registry=r)
        self.rejected = Counter("r2gw_rejected_features_total",
                                "Requests using a feature the compatibility profile does not allow, by "
                                "operation and feature (counted in enforce and audit modes).",
                                ["operation", "feature", "mode"], registry=r)
        self.upstream_pool = Gauge("r2gw_upstream_connections", "Connections open to each store.", ["upstream"],
                                   registry=r)
        # authenticated requests by the kind of credential that signed them (auth/credentials.py)
        self.credential_requests: dict[str, int] = {"key": 0, "temporary": 0}
        self.temporary_refusals = Counter(
            "r2gw_temporary_credential_refusals_total",
            "Requests refused for their temporary credential (a token not accepted, or a request beyond "
            "its scope), by reason.", ["reason"], registry=r)
        # the last exchange with the upstream: answered (1), or unreachable / timed out (0)
        self.upstream_ok = True
        Gauge("r2gw_upstream_up", "1 if the upstream answered the last request sent to it (or the last "
              "readiness probe), 0 if it was unreachable or timed out.",
              registry=r).set_function(lambda: 1.0 if self.upstream_ok else 0.0)
        # migration on read (gateway/stores/on_read.py)
        self.migrated_objects = Counter("r2gw_migrated_objects_total",
                                        "Objects copied on read from a bucket's migration source, by bucket and "
                                        "result (copied, already_present, failed).", ["bucket", "result"], registry=r)
        self.migrated_bytes = Counter("r2gw_migrated_bytes_total", "Bytes of the objects counted in "
                                      "r2gw_migrated_objects_total.", ["bucket", "result"], registry=r)
        self.migrations_in_flight = Gauge("r2gw_migration_copies_in_flight",
                                          "Copies on read in progress (in requests and in the background).",
                                          registry=r)
        self.migrations_queued = Gauge("r2gw_migration_queue_length", "Background copies waiting.", registry=r)
        self.migrations_handed_off = Counter("r2gw_migration_handoffs_total",
                                             "Copies on read moved from the reading request to the background "
                                             "(destination_behind: it fell further behind than the buffer; "
                                             "read_stopped: the read ended early).", ["reason"], registry=r)
        self.migrations_dropped = Counter("r2gw_migration_dropped_total", "Background copies not queued (the "
                                          "queue was full; the next read tries again).", registry=r)

    def temporary_refused(self, reason: str) -> None:
        self.temporary_refusals.labels(reason).inc()

    def observe_request(self, operation: str, status: int, seconds: float, received: int, sent: int) -> None:
        """Count one answered request."""
        key = (operation, status)
        counts = self.request_counts
        counts[key] = counts.get(key, 0) + 1
        self.latency.observe(operation, seconds)
        self.received_bytes += received
        self.sent_bytes += sent

    def observe_upstream(self, operation: str, store: str, seconds: float) -> None:
        self.upstream_latency.observe((operation, store), seconds)
        self.upstream_ok = True

    def upstream_failed(self, reason: str, store: str = "default") -> None:
        """A store could not be asked (unreachable, timeout) or failed (5xx, a broken body)."""
        self.upstream_errors.labels(reason, store).inc()
        if reason in ("ServiceUnavailable", "GatewayTimeout"):
            self.upstream_ok = False

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
