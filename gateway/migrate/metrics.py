"""Prometheus metrics of a running migration (``--metrics-listen host:port``, served at ``/metrics``
from a thread of prometheus-client's own, on a registry of the run's own)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from .report import RESULTS, Tally


class Metrics:
    def __init__(self, tally: Tally) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.objects = Counter("r2gw_migrate_objects", "Objects the migration decided about, by result",
                               ["result"], registry=self.registry)
        for result in RESULTS:
            self.objects.labels(result)
        self.bytes = Counter("r2gw_migrate_bytes", "Bytes of the objects copied", registry=self.registry)
        self.failures = Counter("r2gw_migrate_failures", "Objects that failed to copy", registry=self.registry)
        self.listed = Gauge("r2gw_migrate_listed_objects", "Source objects of this shard listed so far",
                            registry=self.registry)
        self.listed.set_function(lambda: tally.listed)
        self.in_flight = Gauge("r2gw_migrate_in_flight", "Copies (or deletes) in progress", registry=self.registry)
        self.in_flight.set_function(lambda: tally.in_flight)
        self.read = Gauge("r2gw_migrate_read_bytes", "Bytes read from the source so far (copies in "
                          "flight included, failed attempts not)", registry=self.registry)
        self.read.set_function(lambda: tally.moving)
        self._server = None

    def on_result(self, result: str, line: dict) -> None:
        self.objects.labels(result).inc()
        if result == "copied":
            self.bytes.inc(line.get("size", 0))
        elif result == "failed":
            self.failures.inc()

    def serve(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self._server = start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            server.server_close()
