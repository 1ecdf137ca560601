"""JSON logs (structlog), Prometheus metrics, and the health/readiness/metrics endpoints.

Nothing secret is ever passed to the logger: the access line carries the access key *id* only,
and ``redact()`` scrubs anything that looks like a credential out of free text.
"""
from __future__ import annotations

import logging
import re
import sys

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

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


def configure_logging(level: str = "info", stream=None) -> None:
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
    access_log = AccessLog(getattr(stream, "buffer", None))


log = structlog.get_logger("r2gw")


class AccessLog:
    """The one JSON line per request, on a structlog logger of its own with a short processor
    chain (level, timestamp, orjson) — it runs on every request, so it skips what only free-form
    log events need. Only the object key is client-chosen text, so only it is scrubbed."""

    def __init__(self, stream=None) -> None:
        self._logger = structlog.wrap_logger(
            structlog.BytesLogger(stream or sys.stderr.buffer),
            processors=[structlog.processors.add_log_level,
                        structlog.processors.TimeStamper(fmt="iso", utc=True),
                        structlog.processors.JSONRenderer(serializer=orjson.dumps)],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))

    def request(self, **fields) -> None:
        key = fields.get("key")
        if key and ("=" in key or ":" in key):
            fields["key"] = redact(key)
        self._logger.info("request", **fields)


access_log = AccessLog()

_LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Every metric the gateway exports, on one registry (one per process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, int], tuple] = {}
        self._upstream_children: dict[str, Histogram] = {}
        self.requests = Counter("r2gw_requests_total", "Requests answered, by S3 operation and HTTP status.",
                                ["operation", "status"], registry=r)
        self.latency = Histogram("r2gw_request_duration_seconds", "Time to answer a request, by operation.",
                                 ["operation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.bytes_in = Counter("r2gw_received_bytes_total", "Request body bytes received from clients.",
                                registry=r)
        self.bytes_out = Counter("r2gw_sent_bytes_total", "Response body bytes sent to clients.",
                                 registry=r)
        self.upstream_latency = Histogram("r2gw_upstream_duration_seconds",
                                          "Time until the upstream's response headers, by operation.",
                                          ["operation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter("r2gw_upstream_errors_total",
                                       "Upstream failures: unreachable, timeout, broken stream, 5xx.",
                                       ["reason"], registry=r)
        self.in_flight = Gauge("r2gw_requests_in_flight", "Requests being served now.", registry=r)
        self.auth_failures = Counter("r2gw_auth_failures_total", "Requests refused by authentication, by reason.",
                                     ["reason"], registry=r)
        self.rejected = Counter("r2gw_rejected_features_total",
                                "Requests using a feature the compatibility profile does not allow, by "
                                "operation and feature (counted in enforce and audit modes).",
                                ["operation", "feature", "mode"], registry=r)
        self.upstream_pool = Gauge("r2gw_upstream_connections", "Connections open to the upstream.", registry=r)

    def observe_request(self, operation: str, status: int, seconds: float) -> None:
        """Count one answered request; labelled children are cached (labels() costs µs a call)."""
        key = (operation, status)
        pair = self._children.get(key)
        if pair is None:
            pair = self._children[key] = (self.requests.labels(operation, str(status)),
                                          self.latency.labels(operation))
        pair[0].inc()
        pair[1].observe(seconds)

    def observe_upstream(self, operation: str, seconds: float) -> None:
        child = self._upstream_children.get(operation)
        if child is None:
            child = self._upstream_children[operation] = self.upstream_latency.labels(operation)
        child.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
