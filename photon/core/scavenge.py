"""Scavenging: remove the events that stream metadata has deleted, expired or truncated, online.

Each stream's metadata gives the first version a reader may see (`truncate-before`, which a
soft or hard delete sets past the last version; `max-count`) and the oldest event-time
(`max-age`); everything of the stream before that is removed, a prefix of the stream. The work
goes through the store's single writer in steps of at most `STEP` events, each one atomic and
run between two commits, so writers wait at most one step, and a scavenge killed at any point
leaves whole steps done: running it again finds the rest. Order-ids are never reused (each
backend keeps its highest order-id) and streams keep their versions.

Then the backend gives the space back (`Backend.reclaim_step`, step by step through the writer
as well): SQLite by incremental vacuum and a truncating checkpoint, the file backend by writing
the file again; the server backends rely on their own compaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from photon.core.backend import Query
from photon.core.errors import BackendError
from photon.core.events import CONFIG_STREAM, now_millis

if TYPE_CHECKING:
    from photon.core.committer import Committer
    from photon.core.store import EventStore

STEP = 2000
"""Most events one writer step removes (about one commit's worth of work)."""
Progress = Callable[[int, int], None]
"""Called with (events removed so far, events planned)."""


@dataclass
class ScavengeReport:
    streams: int
    """Streams that had events to remove."""
    removed: int
    """Events removed."""
    reclaim_steps: int
    seconds: float

    def to_json(self) -> dict[str, int | float]:
        return {
            "streams": self.streams,
            "removed-events": self.removed,
            "reclaim-steps": self.reclaim_steps,
            "seconds": round(self.seconds, 3),
        }


def plan(store: EventStore) -> list[tuple[str, int, int]]:
    """(stream, first stored version, first version to keep) of each stream with events to remove."""
    backend = store.backend
    now = now_millis()
    found: list[tuple[str, int, int]] = []
    for stream, metadata in sorted(store.metadata_snapshot().items()):
        if not metadata.limits_reads:
            continue
        first = backend.read(Query(stream=stream, limit=1))
        if not first:
            continue
        current = store.stream_version(stream)
        keep = metadata.first_version(current)
        earliest = metadata.first_time(now)
        if earliest is not None:
            keep = _first_recent(store, stream, max(keep, first[0].stream_version), earliest, current)
        if keep > first[0].stream_version:
            found.append((stream, first[0].stream_version, keep))
    return found


def _first_recent(store: EventStore, stream: str, version: int, earliest: int, current: int) -> int:
    """The first version from `version` on whose event is not older than `earliest`: the expired
    events are the stream's prefix before it (what max-age removes; a later event with an older
    time, which clients may set, stays hidden from reads until the ones before it expire)."""
    backend = store.backend
    while version <= current:
        page = backend.read(Query(stream=stream, from_version=version, limit=backend.read_page_size))
        if not page:
            return current + 1
        for event in page:
            if event.event_time >= earliest:
                return event.stream_version
        version = page[-1].stream_version + 1
    return current + 1


def scavenge(store: EventStore, progress: Progress | None = None) -> ScavengeReport:
    started = time.perf_counter()
    work = plan(store)
    if work and not store.backend.scavenging:
        raise BackendError(f"the {store.backend.name} backend cannot scavenge: reads hide the removed events only")
    planned = sum(keep - first for _, first, keep in work)
    removed = 0
    if progress is not None:
        progress(0, planned)
    for stream, first, keep in work:
        version = first
        while version < keep:
            bound = min(keep, version + STEP)
            removed += store.in_writer(partial(_truncate, stream=stream, before=bound))
            version = bound
            if progress is not None:
                progress(min(removed, planned), planned)
    steps = reclaim(store)
    report = ScavengeReport(len(work), removed, steps, time.perf_counter() - started)
    if removed:
        store.append_internal(CONFIG_STREAM, "scavenged", report.to_json())
    return report


def _truncate(committer: Committer, *, stream: str, before: int) -> int:
    return committer.backend.truncate_stream(stream, before)


def reclaim(store: EventStore) -> int:
    """Give freed space back, a step at a time through the writer; returns the steps taken."""
    steps = 0
    while store.in_writer(_reclaim_step):
        steps += 1
    return steps


def _reclaim_step(committer: Committer) -> bool:
    return committer.backend.reclaim_step()
