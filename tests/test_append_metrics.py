"""The front ends' append metrics as plain numbers (`photon.core.append_metrics`): the same
exposition as `prometheus_client`'s own counters and histogram, exact at every scrape."""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from photon.core.append_metrics import APPENDS, EVENTS, SECONDS, AppendCollector, TransportAppends

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Below, on and between the bounds, above the last one, and a batch's size.
OBSERVED = [(1, 0.0001), (1, 0.0005), (3, 0.0007), (1, 0.001), (1000, 0.02), (2, 5.0), (1, 7.5), (1, 0.0)]


def _without_created_values(text: str) -> str:
    """The exposition with the `_created` timestamps blanked (each side takes its own time)."""
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)


def _prometheus_client_exposition() -> str:
    registry = CollectorRegistry(auto_describe=True)
    appends = Counter(APPENDS[0], APPENDS[1], ["transport", "outcome"], registry=registry)
    events = Counter(EVENTS[0], EVENTS[1], ["transport"], registry=registry)
    seconds = Histogram(SECONDS[0], SECONDS[1], ["transport"], buckets=BUCKETS, registry=registry)
    for transport in ("http", "tcp"):
        appends.labels(transport, "stored")
        appends.labels(transport, "rejected")
        events.labels(transport)
        seconds.labels(transport)
    for count, latency in OBSERVED:
        appends.labels("http", "stored").inc()
        events.labels("http").inc(count)
        seconds.labels("http").observe(latency)
    appends.labels("http", "rejected").inc()
    appends.labels("tcp", "stored").inc()
    events.labels("tcp").inc(2)
    seconds.labels("tcp").observe(0.003)
    return _without_created_values(generate_latest(registry).decode())


def test_the_exposition_is_prometheus_clients_own() -> None:
    registry = CollectorRegistry(auto_describe=True)
    http, tcp = TransportAppends("http", BUCKETS), TransportAppends("tcp", BUCKETS)
    registry.register(AppendCollector([http, tcp]))
    for count, latency in OBSERVED:
        http.stored_append(count, latency)
    http.rejected_append()
    tcp.stored_append(2, 0.003)
    ours = _without_created_values(generate_latest(registry).decode())
    assert ours == _prometheus_client_exposition()
    assert 'photon_append_seconds_bucket{le="0.0005",transport="http"} 3.0' in ours  # 0.0, 0.0001, on the bound
    assert 'photon_append_seconds_bucket{le="+Inf",transport="http"} 8.0' in ours
    assert 'photon_events_appended_total{transport="http"} 1010.0' in ours


def test_appends_from_many_threads_are_all_counted() -> None:
    http = TransportAppends("http", BUCKETS)

    def record() -> None:
        for _ in range(20_000):
            http.stored_append(2, 0.002)

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registry = CollectorRegistry()
    registry.register(AppendCollector([http]))
    assert registry.get_sample_value("photon_appends_total", {"transport": "http", "outcome": "stored"}) == 80_000
    assert registry.get_sample_value("photon_events_appended_total", {"transport": "http"}) == 160_000
    assert registry.get_sample_value("photon_append_seconds_bucket", {"transport": "http", "le": "0.0025"}) == 80_000
