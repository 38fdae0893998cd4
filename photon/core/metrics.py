"""Prometheus metrics of one server: appends, events, replay connections, latencies, the backend, the
projections, durable consumers, subscribers and the process.

Each store gets its own registry (tests run several servers in one process); every front end
of that store records into the same one, and `/metrics` exposes it. Values that already live
somewhere (a projection's position, a subscriber's queue) are read when scraped, by collectors,
rather than copied on every change. `docs/grafana/photon.json` is a dashboard over these metrics.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from photon.core.append_metrics import AppendCollector, TransportAppends
from photon.core.errors import (
    AppendConditionFailed,
    BackendError,
    EventTooLarge,
    InternalStreamError,
    StoreClosed,
    ValidationError,
    VersionConflict,
)
from photon.core.store import EventStore

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BACKEND_BUCKETS = (0.0001, 0.00025, *_LATENCY_BUCKETS)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

#: Why an append was refused, as the `reason` label of photon_appends_refused.
REFUSAL_REASONS = (
    "invalid",
    "too-large",
    "internal-stream",
    "version-conflict",
    "condition-failed",
    "unavailable",
    "other",
)


def refusal_reason(error: BaseException) -> str:
    """The `reason` label for an error that refused an append (one place for every front end)."""
    if isinstance(error, InternalStreamError):
        return "internal-stream"
    if isinstance(error, ValidationError):
        return "too-large" if isinstance(error, EventTooLarge) else "invalid"
    if isinstance(error, VersionConflict):
        return "version-conflict"
    if isinstance(error, AppendConditionFailed):
        return "condition-failed"
    if isinstance(error, (BackendError, StoreClosed)):
        return "unavailable"
    status = getattr(error, "status", None)  # a request error of a front end (malformed JSON, ...)
    if status == 413:
        return "too-large"
    if status == 400:
        return "invalid"
    return "other"


class Metrics:
    def __init__(self, store: EventStore) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The front ends' append counts and latencies: plain numbers, one call an append
        # (see `photon.core.append_metrics`), in the registry's first place as before.
        self.http = TransportAppends("http", _LATENCY_BUCKETS)
        self.tcp = TransportAppends("tcp", _LATENCY_BUCKETS)
        r.register(AppendCollector([self.http, self.tcp]))
        self.replays = Gauge("photon_replay_connections", "Open replay and subscription streams.", registry=r)
        self.replayed = Counter("photon_events_replayed", "Events sent to replay and subscription streams.", registry=r)
        self.tcp_connections = Gauge("photon_tcp_connections", "Open TCP ingest connections.", registry=r)
        last = Gauge("photon_last_order_id", "Order-id of the newest durable event.", registry=r)
        store_ref = weakref.ref(store)
        last.set_function(lambda: float(s.last_order_id()) if (s := store_ref()) is not None else 0.0)
        self.refused = Counter(
            "photon_appends_refused",
            "Append requests refused, by front end and reason (nothing of a refused append is stored).",
            ["transport", "reason"],
            registry=r,
        )
        self.backend_append_seconds = Histogram(
            "photon_backend_append_seconds",
            "Time the backend takes to store one group-commit transaction durably.",
            buckets=_BACKEND_BUCKETS,
            registry=r,
        )
        self.backend_read_seconds = Histogram(
            "photon_backend_read_seconds",
            "Time the backend takes to read one page of events.",
            buckets=_BACKEND_BUCKETS,
            registry=r,
        )
        self.commit_batch_events = Histogram(
            "photon_commit_batch_events",
            "Events written per group-commit transaction.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        store.observe_backend(self._appended, self.backend_read_seconds.observe)
        self.consumers = ConsumerPositions()
        r.register(_StoreCollector(store_ref, self.consumers))
        ProcessCollector(registry=r)  # process_resident_memory_bytes, CPU seconds, open files

    def _appended(self, seconds: float, events: int) -> None:
        self.backend_append_seconds.observe(seconds)
        self.commit_batch_events.observe(events)

    def refuse(self, transport: str, error: BaseException) -> None:
        self.refused.labels(transport, refusal_reason(error)).inc()

    def add_collector(self, collector: Collector) -> None:
        """A collector of another part of the server (the projections) on this store's registry."""
        self.registry.register(collector)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ConsumerPositions:
    """The durable consumers this server has served or acknowledged since it started, and their positions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acked: dict[str, int] = {}

    def seen(self, name: str, acked: int) -> None:
        with self._lock:
            self._acked[name] = max(acked, self._acked.get(name, 0))

    def forget(self, name: str) -> None:
        with self._lock:
            self._acked.pop(name, None)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._acked)


class _StoreCollector(Collector):
    """Read at scrape time: subscribers and their buffered events, durable consumers' lag."""

    def __init__(self, store_ref: Callable[[], EventStore | None], consumers: ConsumerPositions) -> None:
        self.store_ref = store_ref
        self.consumers = consumers

    def collect(self) -> Iterable[Metric]:
        store = self.store_ref()
        if store is None:
            return
        subscribers, buffered = store.subscriber_stats()
        yield GaugeMetricFamily("photon_subscribers", "Live subscribers (replays, subscriptions, ...).", subscribers)
        yield GaugeMetricFamily(
            "photon_subscriber_buffered_events", "Live events waiting in subscribers' buffers.", buffered
        )
        last = store.last_order_id()
        lag = GaugeMetricFamily(
            "photon_consumer_lag",
            "Events in __all__ after a durable consumer's last acknowledged order-id.",
            labels=["consumer"],
        )
        acked = GaugeMetricFamily(
            "photon_consumer_acked_order_id", "A durable consumer's last acknowledged order-id.", labels=["consumer"]
        )
        for name, order_id in sorted(self.consumers.snapshot().items()):
            lag.add_metric([name], max(0, last - order_id))
            acked.add_metric([name], order_id)
        yield lag
        yield acked


class ProjectionCollector(Collector):
    """Per projection, read at scrape time: lag behind __all__, events folded (rate() is the fold rate), status."""

    STATUSES = ("loading", "running", "failed", "stopped")

    def __init__(self, store: EventStore, projections: Callable[[], Iterable[object]]) -> None:
        self.store_ref = weakref.ref(store)
        self.projections = projections

    def collect(self) -> Iterable[Metric]:
        store = self.store_ref()
        last = store.last_order_id() if store is not None else 0
        lag = GaugeMetricFamily(
            "photon_projection_lag", "Events in __all__ the projection has not reached yet.", labels=["projection"]
        )
        folded = CounterMetricFamily(
            "photon_projection_events_processed",
            "Events the projection has folded (its rate is the fold rate).",
            labels=["projection"],
        )
        status = GaugeMetricFamily(
            "photon_projection_status", "1 for the projection's current status.", labels=["projection", "status"]
        )
        for projection in list(self.projections()):
            name = str(getattr(projection, "name", ""))
            lag.add_metric([name], max(0, last - int(getattr(projection, "position", 0))))
            folded.add_metric([name], int(getattr(projection, "processed", 0)))
            status_of = getattr(projection, "status", "")
            current = str(getattr(status_of, "shown", status_of))  # a projection's `Status`, as shown
            for state in self.STATUSES:
                status.add_metric([name, state], 1.0 if current == state else 0.0)
        yield lag
        yield folded
        yield status


_metrics: weakref.WeakKeyDictionary[EventStore, Metrics] = weakref.WeakKeyDictionary()


def metrics_for(store: EventStore) -> Metrics:
    found = _metrics.get(store)
    if found is None:
        found = _metrics[store] = Metrics(store)
    return found
