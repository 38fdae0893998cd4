"""Python's cycle collector in processes that move many events: paused while millions of small
objects are made (a restore), and run less often where batches of events come and go (a server,
a projection worker)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a backup is read: it makes millions of small objects
    and no reference cycles, and each collection would scan the batch held so far again
    (measured: 15% of a restore's time). Process-wide; enabled again after, if it was before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


BATCH_THRESHOLD = 50_000
"""The cycle collector's first threshold (live containers made since its last run) in a process
whose events go by in batches. A batch's events are each a few containers (a parsed event, its
payload, the tuples the store makes of it) that reference counting frees when the batch is done;
at Python's default of 700 the collector runs every few hundred events and walks the batch in
flight each time, and the batches it finds alive are moved to the older generations, whose
collections (the full ones too) walk them again. Measured: a projection worker's collections
cost 1.4 of its 2.4 µs an event; the server's, in TCP ingest, 1.5 µs an event, 0.7 with this
(docs/benchmarks.md, "TCP ingest: the writer's work, counted, and the cycle collector's
threshold in the server")."""


def collect_less_often() -> None:
    """Run the cycle collector at `BATCH_THRESHOLD` (for the whole process: its entry point calls
    this); the older generations keep their thresholds."""
    gc.set_threshold(BATCH_THRESHOLD, *gc.get_threshold()[1:])
