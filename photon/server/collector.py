"""Python's cycle collector in a server process: collecting less often, and never what start-up made.

A server allocates a few thousand container objects per request (the ASGI scope and messages,
each event's dicts, the answer) that reference counting frees, and a long-lived heap (modules,
the app and its routes, the store) that never becomes garbage. At Python's default threshold
(700) the collector ran about once per request and walked the young objects each time, and every
so often the whole heap: measured with `python -m benchmarks.es_remote_cost --trees`, the server's
event loop spent about 115 µs less CPU per remote eventsourcing insert (733 against 617 µs, load
6) with the threshold below and the start-up heap frozen. Projection workers do the same
(`photon.projections.worker.GC_THRESHOLD`).
"""

from __future__ import annotations

import gc

SERVER_GC_THRESHOLD = 50_000
"""The collector's first threshold in a server process (Python's default: 700)."""


def collect_less() -> None:
    """Raise the collector's first threshold (before the server starts)."""
    gc.set_threshold(SERVER_GC_THRESHOLD, *gc.get_threshold()[1:])


def freeze_start_up() -> None:
    """Leave what start-up made out of every later collection (once the server is ready)."""
    gc.collect()
    gc.freeze()
