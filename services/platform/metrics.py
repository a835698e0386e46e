"""Prometheus metrics shared by every service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPCS = Counter("engage_grpc_requests_total", "gRPC calls handled", ["service", "method", "code"])
RPC_SECONDS = Histogram(
    "engage_grpc_request_seconds",
    "gRPC call latency",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PUBLISHED = Counter("engage_outbox_published_total", "Events published to JetStream", ["service"])
OUTBOX_DUPLICATES = Counter("engage_outbox_duplicates_total", "Publishes JetStream dropped as duplicates", ["service"])
OUTBOX_FAILURES = Counter("engage_outbox_publish_failures_total", "Failed publish attempts", ["service"])
OUTBOX_LAG = Histogram(
    "engage_outbox_lag_seconds",
    "Time from commit to JetStream acknowledgement",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTBOX_BACKLOG = Gauge("engage_outbox_backlog", "Events waiting to be published (counted up to 100,000)", ["service"])
READY = Gauge("engage_ready", "1 when the database and NATS are reachable", ["service"])


def serve_metrics(host: str, port: int) -> object | None:
    if not port:
        return None
    server, _thread = start_http_server(port, addr=host)
    return server
