"""The front ends' append metrics (`photon_appends`, `photon_events_appended`,
`photon_append_seconds`), kept as plain numbers and made into metric families when scraped.

Every stored emit updates all three. Through `prometheus_client`'s `Counter` and `Histogram`
children that was three calls and 16 Python calls on the event loop per emit (each value behind
its own lock, the histogram's bucket found by a loop over its bounds), on the way of every
answer. Here one call under one lock updates a transport's numbers (the bucket found by
`bisect`), and `AppendCollector` makes the families at each scrape: the same names, help texts,
labels, samples and order as `prometheus_client` gives for them, and every value exact at the
moment of the scrape (an emit that has its answer is counted).
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

APPENDS = ("photon_appends", "Append requests, by front end and outcome.")
EVENTS = ("photon_events_appended", "Events stored, by front end.")
SECONDS = ("photon_append_seconds", "Time from receiving an append to its durable acknowledgement.")

# As `prometheus_client` decides whether its counters and histograms show `_created` samples.
_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in ("true", "1", "t")


class TransportAppends:
    """One front end's append counts and latency histogram (`transport` is its label)."""

    __slots__ = (
        "bounds",
        "buckets",
        "created",
        "events",
        "les",
        "lock",
        "rejected",
        "seconds",
        "stored",
        "transport",
    )

    def __init__(self, transport: str, buckets: Sequence[float]) -> None:
        self.transport = transport
        self.bounds = (*sorted(buckets), INF) if buckets[-1] != INF else tuple(buckets)
        self.les = [floatToGoString(bound) for bound in self.bounds]  # type: ignore[no-untyped-call]
        """The buckets' `le` labels, written as `prometheus_client` writes them."""
        self.lock = threading.Lock()
        self.stored = 0
        self.rejected = 0
        self.events = 0
        self.seconds = 0.0
        """The sum of the observed latencies (added in the order observed, as a histogram does)."""
        self.buckets = [0] * len(self.bounds)
        """Observations per bucket, not cumulative: the first bound at or above the latency."""
        now = time.time()
        self.created = (now, now, now, now)
        """When each of this transport's series began: stored, rejected, events, seconds."""

    def stored_append(self, events: int, seconds: float) -> None:
        """An append stored (`events` events), `seconds` after it was received."""
        with self.lock:
            self.stored += 1
            self.events += events
            self.seconds += seconds
            self.buckets[bisect_left(self.bounds, seconds)] += 1

    def rejected_append(self) -> None:
        with self.lock:
            self.rejected += 1


class AppendCollector(Collector):
    """The three families of `transports`' numbers, read at scrape time."""

    def __init__(self, transports: Sequence[TransportAppends]) -> None:
        self.transports = tuple(transports)

    def collect(self) -> Iterable[Metric]:
        appends = Metric(*APPENDS, "counter")
        events = Metric(*EVENTS, "counter")
        seconds = Metric(*SECONDS, "histogram")
        for t in self.transports:
            with t.lock:
                stored, rejected, count, total, buckets = t.stored, t.rejected, t.events, t.seconds, list(t.buckets)
            name = t.transport
            for outcome, value, created in (("stored", stored, t.created[0]), ("rejected", rejected, t.created[1])):
                labels = {"transport": name, "outcome": outcome}
                appends.add_sample(APPENDS[0] + "_total", labels, float(value))
                if _CREATED:
                    appends.add_sample(APPENDS[0] + "_created", labels, created)
            events.add_sample(EVENTS[0] + "_total", {"transport": name}, float(count))
            if _CREATED:
                events.add_sample(EVENTS[0] + "_created", {"transport": name}, t.created[2])
            cumulative = 0.0
            for le, observed in zip(t.les, buckets, strict=True):
                cumulative += observed
                seconds.add_sample(SECONDS[0] + "_bucket", {"transport": name, "le": le}, cumulative)
            seconds.add_sample(SECONDS[0] + "_count", {"transport": name}, cumulative)
            seconds.add_sample(SECONDS[0] + "_sum", {"transport": name}, total)
            if _CREATED:
                seconds.add_sample(SECONDS[0] + "_created", {"transport": name}, t.created[3])
        yield appends
        yield events
        yield seconds
