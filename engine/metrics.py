"""The host's Prometheus metrics, in a registry of its own (several hosts may run in
one process, as tests do).

Counters and histograms are updated where things happen (the SCIM middleware, the
export worker, the importer); the gauges (queue depth, failed events, age of the
oldest pending change, connector state) are set from the space's cheap queue
summary just before each scrape. Labels carry only configured names and fixed
words, never user data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from ecmahost.engine.space.health import QueueSummary
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

__all__ = ["CONTENT_TYPE", "IMPORT_CHANGES", "HostMetrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""What ``generate_latest`` writes (the classic text format every Prometheus reads)."""

IMPORT_CHANGES = ("added", "updated", "removed")
"""The import counts that become ``ecmahost_import_objects_total{change=...}``."""

_EXPORT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_IMPORT_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class HostMetrics:
    """Every metric of one host. ``process=True`` adds the process and platform
    collectors (CPU, memory, open files, Python version)."""

    def __init__(self, *, process: bool = False) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.scim_requests = Counter(
            "ecmahost_scim_requests",
            "SCIM and admin requests answered, by route template and status.",
            ["connector", "method", "route", "status"],
            registry=r,
        )
        self.scim_seconds = Histogram(
            "ecmahost_scim_request_duration_seconds",
            "Time to answer a request.",
            ["connector", "method", "route"],
            registry=r,
        )
        self.exports = Counter(
            "ecmahost_exports",
            "Export outcomes per change: done, failed (for good) or retrying.",
            ["connector", "operation", "outcome"],
            registry=r,
        )
        self.export_seconds = Histogram(
            "ecmahost_export_duration_seconds",
            "Time the connector took to export one change (a batch's time, shared).",
            ["connector", "operation"],
            buckets=_EXPORT_BUCKETS_S,
            registry=r,
        )
        self.imports = Counter(
            "ecmahost_imports",
            "Full imports finished, by result.",
            ["connector", "result"],
            registry=r,
        )
        self.import_seconds = Histogram(
            "ecmahost_import_duration_seconds",
            "Time a full import took.",
            ["connector"],
            buckets=_IMPORT_BUCKETS_S,
            registry=r,
        )
        self.import_objects = Counter(
            "ecmahost_import_objects",
            "Objects full imports added, updated or removed in the connector space.",
            ["connector", "change"],
            registry=r,
        )
        self.queue_pending = Gauge(
            "ecmahost_export_queue_pending",
            "Changes waiting to be exported or being exported.",
            ["connector"],
            registry=r,
        )
        self.queue_failed = Gauge(
            "ecmahost_export_failed_events",
            "Export events that failed for good and wait for an operator.",
            ["connector"],
            registry=r,
        )
        self.queue_oldest_s = Gauge(
            "ecmahost_export_oldest_pending_age_seconds",
            "Age of the oldest change waiting to be exported (0 with none).",
            ["connector"],
            registry=r,
        )
        self.connector_state = Gauge(
            "ecmahost_connector_state",
            "1 for the connector's current state (serving, importing, degraded), else 0.",
            ["connector", "state"],
            registry=r,
        )
        self.tls_expiry = Gauge(
            "ecmahost_tls_certificate_expiry_timestamp_seconds",
            "When the served certificate expires (Unix time); 0 when the host serves no TLS.",
            registry=r,
        )
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)

    def export_outcomes(
        self, connector: str, outcomes: Iterable[tuple[str, str]], duration_s: float
    ) -> None:
        """One batch: (operation, outcome) per change; each change is charged the
        batch's time divided among them."""
        found = list(outcomes)
        share_s = duration_s / len(found) if found else 0.0
        for operation, outcome in found:
            self.exports.labels(connector, operation, outcome).inc()
            self.export_seconds.labels(connector, operation).observe(share_s)

    def import_finished(
        self, connector: str, result: str, duration_s: float, counts: Mapping[str, int]
    ) -> None:
        self.imports.labels(connector, result).inc()
        self.import_seconds.labels(connector).observe(duration_s)
        for change in IMPORT_CHANGES:
            self.import_objects.labels(connector, change).inc(counts.get(change, 0))

    def set_queue(self, connector: str, summary: QueueSummary, now: datetime) -> None:
        oldest = summary.oldest_pending_at
        self.queue_pending.labels(connector).set(summary.pending)
        self.queue_failed.labels(connector).set(summary.failed)
        age_s = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        self.queue_oldest_s.labels(connector).set(age_s)

    def set_state(self, connector: str, phase: str, phases: Iterable[str]) -> None:
        for each in phases:
            self.connector_state.labels(connector, each).set(1 if each == phase else 0)

    def set_certificate_expiry(self, not_after: datetime) -> None:
        self.tls_expiry.set(not_after.timestamp())

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
