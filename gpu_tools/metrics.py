"""Prometheus metrics of a gpu-tools process (`gpu-mcp --transport http`, `gpu-guard --metrics-port`).

Imported only by the processes that serve metrics: the operations core knows nothing of Prometheus (a
provider request reaches the counters through `gpu_tools.http.observe_requests`).

Counters and the histogram count what this process did; the gauges are read from the journal at each
scrape, so every replica on a shared journal reports the same fleet. No label carries a secret, an
argument value or an unbounded id: tools are the registry's names, providers the four providers,
operations HTTP methods, statuses classes (2xx..5xx, timeout, error), budgets the two budget settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpu_tools.budget import budgets
from gpu_tools.catalog import GUARD_LAST_PASS
from gpu_tools.http import observe_requests
from gpu_tools.journal import Journal
from gpu_tools.settings import Settings

log = logging.getLogger("gpu_tools.metrics")

OUTCOMES = ("ok", "error", "refused", "input_required", "exception")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class JournalCollector(Collector):
    """Gauges read from the journal at scrape time (nothing at all when the journal cannot be read:
    a scrape that fails there is an absent series, which alerts say plainly)."""

    def __init__(self, journal: Callable[[], Journal], settings: Settings, providers: list[str]) -> None:
        self.journal = journal
        self.settings = settings
        self.providers = providers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except Exception as exc:  # the journal is unreachable: /readyz says so; no half series here
            log.warning("metrics: the journal cannot be read (%s)", type(exc).__name__)

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        journal = self.journal()
        now = datetime.now(UTC)
        live = journal.live()
        count = GaugeMetricFamily(
            "gpu_tools_live_resources", "Billable resources the journal says are live", labels=["provider"]
        )
        usd = GaugeMetricFamily(
            "gpu_tools_live_usd_per_hour",
            "Summed hourly cost of the running live resources whose cost is known",
            labels=["provider"],
        )
        unpriced = GaugeMetricFamily(
            "gpu_tools_live_unpriced_resources",
            "Running live resources whose hourly cost is unknown (not in gpu_tools_live_usd_per_hour)",
            labels=["provider"],
        )
        providers = sorted(
            set(self.providers) | {entry.provider for entry in live if entry.provider in self.providers}
        )
        for provider in providers:
            mine = [entry for entry in live if entry.provider == provider]
            running = [entry for entry in mine if not entry.stopped]  # a stopped one bills no GPU
            count.add_metric([provider], len(mine))
            usd.add_metric([provider], sum(e.usd_per_hour for e in running if e.usd_per_hour is not None))
            unpriced.add_metric([provider], sum(1 for e in running if e.usd_per_hour is None))
        pending = GaugeMetricFamily("gpu_tools_approvals_pending", "Approvals asked and not yet answered")
        pending.add_metric([], journal.pending_approvals())
        left = GaugeMetricFamily(
            "gpu_tools_budget_left_usd", "USD left in each configured budget", labels=["budget"]
        )
        for budget in budgets(self.settings, now, journal.first_at()):
            left.add_metric([budget.name], budget.limit - journal.spent(budget.since, now))
        yield from (count, usd, unpriced, pending, left)
        last = journal.meta(GUARD_LAST_PASS)
        if last:
            stamp = datetime.fromisoformat(last)
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            guard = GaugeMetricFamily(
                "gpu_tools_guard_last_pass_timestamp_seconds",
                "When gpu-guard last finished a pass (Unix time)",
            )
            guard.add_metric([], stamp.timestamp())
            yield guard


class Metrics:
    """One process's registry: tool calls, provider requests, and the journal's gauges."""

    def __init__(self, journal: Callable[[], Journal], settings: Settings, providers: list[str]) -> None:
        self.registry = CollectorRegistry()
        self.tool_calls = Counter(
            "gpu_tools_tool_calls",
            "MCP tool calls by tool and outcome",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.provider_requests = Counter(
            "gpu_tools_provider_requests",
            "Provider HTTP requests by provider, operation (HTTP method) and status class",
            ["provider", "operation", "status"],
            registry=self.registry,
        )
        self.provider_seconds = Histogram(
            "gpu_tools_provider_request_seconds",
            "Provider HTTP request duration",
            ["provider"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.known_providers = providers
        self.registry.register(JournalCollector(journal, settings, providers))
        observe_requests(self.observe_request)

    def observe_request(self, provider: str, method: str, status: str, seconds: float) -> None:
        if provider not in self.known_providers:
            provider = "other"
        method = method if method in METHODS else "OTHER"
        self.provider_requests.labels(provider, method, status).inc()
        self.provider_seconds.labels(provider).observe(seconds)

    def tool_call(self, tool: str, outcome: str) -> None:
        self.tool_calls.labels(tool, outcome if outcome in OUTCOMES else "error").inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def serve_metrics(metrics: Metrics, host: str, port: int) -> None:
    """`/metrics` on a port of its own, without a token (a thread of this process)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=metrics.registry)
