"""Prometheus metrics of one server: appends, events, replay connections, latencies.

Each store gets its own registry (tests run several servers in one process); every front end
of that store records into the same one, and `/metrics` exposes it.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .store import EventStore

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, store: EventStore) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.appends = Counter(
            "photon_appends", "Append requests, by front end and outcome.", ["transport", "outcome"], registry=r
        )
        self.events = Counter("photon_events_appended", "Events stored, by front end.", ["transport"], registry=r)
        self.append_seconds = Histogram(
            "photon_append_seconds",
            "Time from receiving an append to its durable acknowledgement.",
            ["transport"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # Children bound once: `labels()` costs a lookup per call on the hot paths.
        self.http = _Transport(self, "http")
        self.tcp = _Transport(self, "tcp")
        self.replays = Gauge("photon_replay_connections", "Open replay and subscription streams.", registry=r)
        self.replayed = Counter("photon_events_replayed", "Events sent to replay and subscription streams.", registry=r)
        self.tcp_connections = Gauge("photon_tcp_connections", "Open TCP ingest connections.", registry=r)
        last = Gauge("photon_last_order_id", "Order-id of the newest durable event.", registry=r)
        store_ref = weakref.ref(store)
        last.set_function(lambda: float(s.last_order_id()) if (s := store_ref()) is not None else 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Transport:
    """The metrics of one front end, with their labels bound."""

    def __init__(self, metrics: Metrics, transport: str) -> None:
        self.stored = metrics.appends.labels(transport, "stored")
        self.rejected = metrics.appends.labels(transport, "rejected")
        self.events = metrics.events.labels(transport)
        self.seconds = metrics.append_seconds.labels(transport)


_metrics: weakref.WeakKeyDictionary[EventStore, Metrics] = weakref.WeakKeyDictionary()


def metrics_for(store: EventStore) -> Metrics:
    found = _metrics.get(store)
    if found is None:
        found = _metrics[store] = Metrics(store)
    return found
