"""Storing events that already carry their positions (a restore), and bulk loads: the store's side.

Writes go through the store's single writer thread in large batches, between the commits of any
concurrent appends, so the writer's positions stay right and subscribers see the imported events
like any others. Each batch is checked against the writer's state (`Continuity`) and written in
the writer thread; stream deletions of an earlier Photon (`stream-deleted` without a mode) delete
the stream at that point, as in the source.

A reader that checked the events already (`photon.ops.restore`) says so by handing in an
`ImportSnapshot` that took the store's write generation when its check began: when nothing else
was written since (the usual case), the writer skips checking the same events a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING

from photon.core.events import CONFIG_STREAM, RecordedEvent
from photon.core.gc_pause import cycle_collection_paused
from photon.core.positioned import Continuity, deleted_stream

if TYPE_CHECKING:
    from photon.core.committer import Committer
    from photon.core.store import EventStore

BATCH_SIZE = 20_000
"""Events written per batch (one writer action, one backend transaction)."""


class ImportSnapshot:
    """Events checked (by their reader) against the store as it was at one write generation.

    A reader subclasses this and calls `take_generation` when its check starts (in `__iter__`),
    before it reads the store's state."""

    generation: int | None = None
    """The store's write generation the check started from (None before it starts)."""

    def take_generation(self, store: EventStore | None) -> None:
        self.generation = store.write_generation() if store is not None else None


class _Checked:
    """What the writer knows of a batch's events before it checks them itself."""

    __slots__ = ("generation",)

    def __init__(self, generation: int | None) -> None:
        self.generation = generation
        """The write generation the events were checked against; None when they were not
        checked, or when something else wrote to the store since."""


def _write_batch(batch: list[RecordedEvent], first: bool, checked: _Checked, committer: Committer) -> None:
    """Runs in the writer thread: check `batch` against the committed state and store it."""
    backend = committer.backend
    flush = committer.store_positioned
    try:
        if checked.generation is not None and checked.generation == committer.generation:
            # Checked against the store as it still is: only the stream deletions need the writer.
            start = 0
            for index in [i for i, record in enumerate(batch) if record[1] == CONFIG_STREAM]:
                ended = deleted_stream(batch[index])
                if ended is not None:
                    flush(batch[start:index])
                    start = index
                    if backend.stream_versions([ended]).get(ended, 0) > 0:
                        backend.delete_stream(ended)
            flush(batch[start:])
            committer.forget_versions()  # a cache: refilled from the backend by the next commit
            checked.generation += 1  # this write's own step (see Committer._run_action)
            return
        # Something else wrote since the events were checked (or they never were): check them
        # here, and from now on every batch of this import.
        checked.generation = None
        continuity = Continuity(committer.last_order_id, committer.versions, backend.stream_versions)
        if not first:
            continuity.accepted = 1  # an order problem past the first batch is the file's, not the store's
        continuity.prefetch(batch)
        start = 0
        for index, record in enumerate(batch):
            ended = continuity.check(record)
            if ended is not None:
                # As in the source: the stream's events go, then the deletion is recorded.
                flush(batch[start:index])
                start = index
                backend.delete_stream(ended)
        flush(batch[start:])
    except BaseException:
        # The cached versions may hold positions that were never stored: ask the backend again.
        checked.generation = None
        committer.reload()
        raise


def import_events(
    store: EventStore,
    records: Iterable[RecordedEvent],
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Store events that already carry their positions, in batches through the writer thread.

    Each batch is checked (see `Continuity`) and written atomically; on an error the store holds
    exactly the batches before the one that failed. Returns the number of events stored.
    Events from an `ImportSnapshot` were checked already: the writer checks them again only if
    something else wrote to the store since.

    Reading the next batch does not overlap with writing this one: the database driver takes
    the interpreter back after every row it inserts, and a thread parsing meanwhile makes
    those waits longer than the parsing it would hide (measured: overlapping was slower).
    """
    written = 0
    checked = _Checked(None)
    with cycle_collection_paused():
        iterator = iter(records)  # an ImportSnapshot takes its snapshot (and generation) here
        if isinstance(records, ImportSnapshot):
            checked.generation = records.generation
        batch: list[RecordedEvent] = []
        for record in iterator:
            batch.append(record)
            if len(batch) >= batch_size:
                written += _submit(store, batch, written == 0, checked, on_batch)
                batch = []
        if batch:
            written += _submit(store, batch, written == 0, checked, on_batch)
    return written


def _submit(
    store: EventStore,
    batch: list[RecordedEvent],
    first: bool,
    checked: _Checked,
    on_batch: Callable[[int], object] | None,
) -> int:
    store.in_writer(partial(_write_batch, batch, first, checked))
    if on_batch is not None:
        on_batch(len(batch))
    return len(batch)


def _begin_bulk_load(committer: Committer) -> bool:
    return bool(committer.backend.begin_bulk_load())


def _end_bulk_load(ok: bool, committer: Committer) -> None:
    try:
        committer.backend.end_bulk_load(ok)
    finally:
        committer.metadata.load(committer.backend)
        committer.reload()
        # A failed load was emptied again: readers must not be told of events now gone.
        committer.broadcaster.head = committer.last_order_id


@contextmanager
def bulk_load(store: EventStore) -> Iterator[bool]:
    """Let the backend load faster when the store is empty.

    Yields True when a failure inside will leave the store empty again (the backend can undo a
    bulk load), False otherwise (a store that holds events, or a backend without bulk loading).
    """
    if not store.backend.bulk_load or store.last_order_id() != 0 or store.streams():
        yield False
        return
    undoable: bool = store.in_writer(_begin_bulk_load)
    try:
        yield undoable
    except BaseException:
        store.in_writer(partial(_end_bulk_load, False))
        raise
    store.in_writer(partial(_end_bulk_load, True))
