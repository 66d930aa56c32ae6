"""Prometheus metrics of one application, and the `/metrics` endpoint that shows them."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from qwen_free_api.dialects import openai
from qwen_free_api.errors import Unauthenticated
from qwen_free_api.pool import Pool, describe
from qwen_free_api.respond import error_response
from qwen_free_api.web import bearer, gateway_of

SCOPE_KEY = "qfa.metrics"  # where the middleware leaves the app's metrics for the endpoint
STATES = ("live", "cooling", "disabled", "paused", "expired")
UPSTREAMS = ("cn", "intl")
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    """Every metric of one app, in its own registry (tests run many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "qfa_requests", "Requests by route, client dialect and status.",
            ["endpoint", "dialect", "status"], registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "qfa_request_duration_seconds", "Time from request to the end of its response body.",
            ["endpoint", "dialect"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "qfa_time_to_first_token_seconds",
            "Time to the first frame of a streamed answer, or to the whole non-streamed answer.",
            ["dialect", "upstream", "stream"], buckets=SECONDS, registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "qfa_errors", "Errors answered to clients, by client dialect and error class.",
            ["dialect", "class"], registry=r,
        )  # fmt: skip
        self.failures = Counter(
            "qfa_upstream_failures", "Failed upstream attempts (before any failover), by class.",
            ["upstream", "class"], registry=r,
        )  # fmt: skip
        self.credentials = Gauge(
            "qfa_credentials", "Pool credentials by backend and state (at scrape time).",
            ["upstream", "state"], registry=r,
        )  # fmt: skip
        self.streams = Gauge("qfa_streams_in_flight", "Streamed answers now open.", registry=r)
        self.tasks = Gauge(
            "qfa_asyncio_tasks", "asyncio tasks alive in this process (at scrape time).",
            registry=r,
        )  # fmt: skip

    def record(self, facts: dict[str, Any], endpoint: str, dialect: str, end: float) -> None:
        """Count one finished request from the facts gathered while it was served."""
        status = int(facts.get("status", 500))
        self.requests.labels(endpoint, dialect, str(status)).inc()
        self.duration.labels(endpoint, dialect).observe(end - facts["start"])
        if "error" in facts:
            self.errors.labels(dialect, facts["error"]).inc()
        for upstream, kind in facts.get("failures", ()):
            self.failures.labels(upstream, kind).inc()
        if "upstream" in facts and status < 400:
            first = facts.get("first_token") or facts.get("first_byte") or end
            stream = "true" if facts.get("stream") else "false"
            self.ttft.labels(dialect, facts["upstream"], stream).observe(first - facts["start"])

    async def count_credentials(self, pool: Pool) -> None:
        counts = {(u, s): 0 for u in UPSTREAMS for s in STATES}
        for view in await describe(pool, pool.accounts):
            key = (str(view["dialect"]), str(view["state"]))
            counts[key] = counts.get(key, 0) + 1
        for (upstream, state), count in counts.items():
            self.credentials.labels(upstream, state).set(count)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics | None = request.scope.get(SCOPE_KEY)
    if metrics is None:  # the app was built without the observing middleware
        return Response("metrics are off\n", 404, media_type="text/plain")
    gateway = gateway_of(request)
    settings = gateway.settings
    if settings.metrics_require_admin:
        key = bearer(request) or request.headers.get("x-admin-key", "")
        expected = settings.admin_key or ""
        if not expected or not key or not hmac.compare_digest(key.encode(), expected.encode()):
            return error_response(openai.DIALECT, Unauthenticated("missing or invalid admin key"))
    await metrics.count_credentials(gateway.pool)
    metrics.tasks.set(len(asyncio.all_tasks()))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
