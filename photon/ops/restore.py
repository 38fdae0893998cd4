"""Restore: load a backup (JSON lines of stored events) into a store, keeping every position.

A backup is what a cold replay of `__all__` prints: one stored event per line, exactly the
event's stored JSON (`RecordedEvent.data`), with its `id`, `order-id`, `stream-version` and
`event-time`. Restoring writes those events as they are, so consumers' positions (order-ids),
idempotency (ids) and projections (the `__config__` events, which are in `__all__`) stay valid.

The pieces: `photon.ops.backup_parse` reads a line as a stored event; `photon.core.positioned`
holds the rule the events must follow (order-ids increase, stream-versions continue each
stream) and its errors; `photon.ops.restore_records` checks a whole backup against the store;
the store stores positioned events through its single writer (`EventStore.import_events`,
`EventStore.bulk_load`, see `photon.core.positioned_import`). This module is the sequence that
puts them together, for the Python API and `photon restore` alike: a bad backup leaves the store
as it was.

A file restored into an empty store whose backend can undo a bulk load (`restore_file`,
`photon restore`) is checked in a second process while this one loads it (`load_verified`,
`photon.ops.restore_check`): the load succeeds only if the check does, and a failed check
empties the store again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from photon.core.gc_pause import cycle_collection_paused
from photon.core.positioned import (
    STREAM_DELETED,
    BackupFormatError,
    Continuity,
    RestoreConflict,
    deleted_stream,
)
from photon.core.positioned_import import BATCH_SIZE, bulk_load, import_events
from photon.ops.backup_files import backup_lines, reading
from photon.ops.backup_parse import parse_line, parse_lines
from photon.ops.restore_check import Checker, check_file
from photon.ops.restore_records import (
    BackupSummary,
    CheckedRecords,
    UncheckedRecords,
    check_backup,
    checked_records,
)

if TYPE_CHECKING:
    from photon.core.store import EventStore

__all__ = [
    "BATCH_SIZE",
    "STREAM_DELETED",
    "BackupFormatError",
    "BackupSummary",
    "CheckedRecords",
    "Continuity",
    "RestoreConflict",
    "UncheckedRecords",
    "bulk_load",
    "check_backup",
    "check_file",
    "checked_records",
    "cycle_collection_paused",
    "deleted_stream",
    "import_events",
    "load_verified",
    "parse_line",
    "parse_lines",
    "restore",
    "restore_file",
]

log = logging.getLogger("photon.restore")


def load_verified(
    store: EventStore,
    path: str | Path,
    summary: BackupSummary,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Load a backup file into an empty store, checking it in a second process at the same time.

    For use inside `store.bulk_load()` when it yields True: a bad line makes the load fail, and the
    bulk load then leaves the store empty again. Reading and checking each line costs about as
    much as storing it; split over two processes, the two run side by side instead of one after
    the other. The checker reads the same file as `check_backup` would; this process takes from
    each line only what it stores. Fills `summary`; returns the number of events stored.
    """
    try:
        checker = Checker(path)
    except OSError as exc:  # no interpreter to start (an embedded Python): check while loading
        log.warning("cannot start the backup check in a second process (%s); checking as it loads", exc)
        with reading(path) as stream:
            return store.import_events(
                CheckedRecords(backup_lines(stream), store, summary), batch_size=batch_size, on_batch=on_batch
            )
    try:
        try:
            with reading(path) as stream:
                records = UncheckedRecords(backup_lines(stream), store, checker.poll)
                written = store.import_events(records, batch_size=batch_size, on_batch=on_batch)
        except Exception:
            # A line the load could not take, or a value the database refused: when the file is
            # at fault, the checker's error names the first bad line.
            checker.result()
            raise
        checked = checker.result()
    finally:
        checker.close()
    if checked.events != written:
        raise BackupFormatError(
            None, f"the backup changed while it was restored: checked {checked.events} events, stored {written}"
        )
    summary.events, summary.skipped, summary.lines = checked.events, checked.skipped, checked.lines
    summary.first_order_id, summary.last_order_id = checked.first_order_id, checked.last_order_id
    return written


def restore(
    store: EventStore,
    open_lines: Callable[[], Iterable[bytes]],
    *,
    batch_size: int = BATCH_SIZE,
    on_checked: Callable[[int], object] | None = None,
    on_written: Callable[[int], object] | None = None,
    on_checked_all: Callable[[BackupSummary], None] | None = None,
) -> BackupSummary:
    """Check a whole backup and write it: a bad backup leaves the store as it was.

    Into an empty store whose backend can undo a bulk load, one pass reads, checks and writes
    (a bad line undoes what was written). Otherwise a first pass checks every line and writes
    nothing, and a second writes: `open_lines` is then called twice and must give the same lines.
    """
    with store.bulk_load() as undoable:
        if undoable:
            summary = BackupSummary()
            records = checked_records(open_lines(), store, summary, on_event=on_checked)
            store.import_events(records, batch_size=batch_size, on_batch=on_written)
            if on_checked_all is not None:
                on_checked_all(summary)
            return summary
    summary = check_backup(open_lines(), store, on_event=on_checked)
    if on_checked_all is not None:
        on_checked_all(summary)
    if summary.events:
        parsed = (record for _number, record in parse_lines(open_lines()))
        written = store.import_events(parsed, batch_size=batch_size, on_batch=on_written)
        if written != summary.events:
            raise BackupFormatError(
                None, f"the backup changed while it was restored: checked {summary.events} events, wrote {written}"
            )
    return summary


def restore_file(
    store: EventStore,
    path: str | Path,
    *,
    batch_size: int = BATCH_SIZE,
    on_start: Callable[[bool], object] | None = None,
    on_checked: Callable[[int], object] | None = None,
    on_written: Callable[[int], object] | None = None,
    on_checked_all: Callable[[BackupSummary], None] | None = None,
) -> BackupSummary:
    """Restore a backup file (plain or gzip): as `restore`, but into an empty store whose backend
    can undo a bulk load, the file is checked in a second process while this one loads it.

    `on_start(True)` is called before such a load (one pass: only `on_written` follows);
    `on_start(False)` before the check of the two-pass restore (`on_checked` counts the events
    checked, `on_checked_all` gets what the backup holds, then `on_written` counts the writes).
    `photon restore` is this call with progress bars.
    """
    with store.bulk_load() as undoable:
        if undoable:
            if on_start is not None:
                on_start(True)
            summary = BackupSummary()
            load_verified(store, path, summary, batch_size=batch_size, on_batch=on_written)
            return summary
    if on_start is not None:
        on_start(False)
    return restore(
        store,
        partial(_file_lines, path),
        batch_size=batch_size,
        on_checked=on_checked,
        on_written=on_written,
        on_checked_all=on_checked_all,
    )


def _file_lines(path: str | Path) -> Iterator[bytes]:
    with reading(path) as stream:
        yield from backup_lines(stream)
