"""Prometheus metrics of the gateway: requests by route template, method and status, and their latency.

Labels use the route template (`/api/v1/people/{person_id}`), never the concrete
path, so people's ids stay out of the metrics and the label set stays small.
Each app has its own registry (tests build several apps in one process).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "engage_gateway_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "engage_gateway_request_seconds",
            "Time to answer an HTTP request (until its last byte), by route template and method.",
            ["route", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        # (route template, method, status) -> its counter and histogram; templates are few, so this stays small.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "unmatched")
        key = (template, scope["method"], status)
        series = self._series.get(key)
        if series is None:  # looking the labelled series up costs more than counting: once per label set
            series = self._series[key] = (
                self.requests.labels(template, scope["method"], str(status)),
                self.latency.labels(template, scope["method"]),
            )
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
