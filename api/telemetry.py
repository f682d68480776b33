"""Prometheus metrics of one app: HTTP requests, GraphQL operations and errors, subscriptions, the pool."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from graphql import GraphQLError
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from ptw.api.errors import error_code

if TYPE_CHECKING:
    from ptw.infra.bootstrap import Services

log = logging.getLogger(__name__)

# Paths are a label: only known routes get their own value, so a scan of random URLs cannot blow it up.
KNOWN_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})


class Telemetry:
    """A registry per app, so two apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "ptw_http_requests", "HTTP requests served", ["method", "path", "status"], registry=r
        )
        self.operations = Counter(
            "ptw_graphql_operations", "GraphQL operations executed", ["type", "name"], registry=r
        )
        self.errors = Counter("ptw_graphql_errors", "GraphQL errors answered, by code", ["code"], registry=r)
        self.subscriptions = Gauge(
            "ptw_graphql_active_subscriptions", "Subscriptions streaming now", ["field"], registry=r
        )
        self.workers = Gauge("ptw_executor_workers", "Executors alive", registry=r)
        self.busy = Gauge("ptw_executor_busy", "Executors running a job", registry=r)
        self.queue_depth = Gauge("ptw_queue_depth", "Runs waiting for an executor", registry=r)
        # The autoscalers' signal, per class: GPU executors scale on the gpu queue alone.
        self.queue_depth_by_class = Gauge(
            "ptw_queue_depth_by_class", "Runs waiting for an executor", ["resource_class"], registry=r
        )
        self.desired_workers = Gauge(
            "ptw_executor_desired_workers",
            "Workers the autoscalers want (the pool's bounds without one)",
            registry=r,
        )
        self.autoscaled = Gauge(
            "ptw_autoscaler_workers", "Worker processes the autoscalers hold, by state", ["state"], registry=r
        )
        self.cache = CacheCounters()
        r.register(self.cache)
        self.set_aside = SetAsideCounter()
        r.register(self.set_aside)

    def count_errors(self, errors: list[GraphQLError]) -> None:
        for error in errors:
            self.errors.labels(error_code(error)).inc()

    @contextmanager
    def subscription(self, field: str) -> Iterator[None]:
        gauge = self.subscriptions.labels(field)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    async def scrape(self, services: Services) -> bytes:
        try:
            state = await services.pool.state()
        except Exception:  # Redis down (production): the rest, the cache errors included, still answers
            log.warning("the executor pool's state is unavailable for /metrics", exc_info=True)
        else:
            self.workers.set(state.workers)
            self.busy.set(state.busy)
            self.queue_depth.set(state.queue_depth)
            for resource_class, depth in state.queue_by_class.items():
                self.queue_depth_by_class.labels(resource_class).set(depth)
            self.autoscaled.labels("serving").set(sum(a.workers for a in state.autoscalers))
            self.autoscaled.labels("draining").set(sum(a.draining for a in state.autoscalers))
            self.desired_workers.set(state.desired_workers)
        self.cache.stats = services.cache_stats()
        try:
            self.set_aside.value = await services.metrics_set_aside()
        except Exception:
            log.warning("the count of metric entries set aside is unavailable for /metrics", exc_info=True)
        return generate_latest(self.registry)


class CacheCounters(Collector):
    """The read cache's counters (``ptw_cache_{hits,misses,errors}_total`` by kind), copied at each scrape:
    the cache counts in plain integers, and the services it belongs to outlive any one app's registry."""

    HELP = {
        "hits": "Objects read from the Redis cache",
        "misses": "Objects looked up in the Redis cache and read from the database",
        "errors": "Redis cache operations that failed (the database answered instead)",
    }

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, int]] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, help_text in self.HELP.items():
            family = CounterMetricFamily(f"ptw_cache_{name}", help_text, labels=["kind"])
            for kind, value in sorted(self.stats.get(name, {}).items()):
                family.add_metric([kind], value)
            yield family


class SetAsideCounter(Collector):
    """``ptw_ingest_set_aside_total``: metric log entries the ingesters could not store and set aside (all
    replicas' and workers' together: the count lives in Redis), copied at each scrape."""

    def __init__(self) -> None:
        self.value = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "ptw_ingest_set_aside", "Metric log entries set aside, unable to be stored", value=self.value
        )


class OperationMetrics(SchemaExtension):
    """Counts each GraphQL operation by type and name, and the codes of the errors it answered."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        telemetry: Telemetry | None = getattr(context.context, "telemetry", None)
        if telemetry is None:
            return
        try:
            kind = context.operation_type.value
        except Exception:  # an unparsable document has no operation type
            kind = "invalid"
        # Clients choose operation names: bounded in length, they stay a useful label.
        telemetry.operations.labels(kind, (context.operation_name or "anonymous")[:64]).inc()
        result = context.result
        errors = getattr(result, "errors", None)
        if errors:
            telemetry.count_errors(errors)


class HttpMetrics:
    """ASGI middleware counting HTTP requests by method, route and status (WebSockets not included)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            self.telemetry.http_requests.labels(scope["method"], path, str(status)).inc()
