"""Splitting a stream of validated events into batches the store appends atomically.

A front end that takes events one at a time but appends them together (TCP ingest: one line
each, one acknowledgement each) must keep each event's outcome its own. Two events with the
same client-chosen id cannot share one atomic append (`EventStore.append_validated` wants
distinct ids): the second is a retry of the first, and is answered after the first is stored,
so a batch ends before an id it already holds. Store-made ids never repeat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from photon.core.events import PendingEvent


def split_batches(events: Sequence[PendingEvent], max_batch: int) -> Iterator[list[PendingEvent]]:
    """Consecutive runs of `events`, in order, each of at most `max_batch` events and with no
    client-chosen id twice."""
    batch: list[PendingEvent] = []
    ids: set[str] = set()
    # By position, as the writer reads them: the batch validation's events are plain tuples.
    for event in events:
        chosen, event_id = event[5], event[1]  # client_id, event_id
        if len(batch) >= max_batch or (chosen and event_id in ids):
            yield batch
            batch = []
            ids = set()
        batch.append(event)
        if chosen:  # only ids a client chose can repeat
            ids.add(event_id)
    if batch:
        yield batch
