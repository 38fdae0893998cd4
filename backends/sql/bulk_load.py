"""SQLite's fast path for a bulk load (a restore into an empty store): many rows per INSERT, and
the file written through a rollback journal instead of the write-ahead log.

The generic part, dropping the unique indexes and building them again at the end, is
`SQLBackend.begin_bulk_load`; `SQLiteBackend` adds these.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from photon.core.events import RecordedEvent

from .multi_row import MultiRow

log = logging.getLogger("photon.backends.sql")

BULK_ROWS = 2048
"""Rows per INSERT statement in a bulk load: 8 parameters a row stays under SQLite's limit of
32766 parameters a statement."""


def insert_rows(connection: Any, insert: str, events: Sequence[tuple[Any, ...]], statements: MultiRow) -> None:
    """Insert many rows with few statements: each one inserts up to BULK_ROWS rows (against a
    table without indexes, a third less than `executemany`, which steps SQLite once per row)."""
    statements.run(connection, insert, events, BULK_ROWS)


def ids_ascend(events: Sequence[RecordedEvent]) -> bool:
    """Whether the batch's event ids ascend (the store's own ids are time-ordered, so a backup of
    them does): then the id index can be kept during the load, see `SQLiteBackend`."""
    return all(a[3] < b[3] for a, b in pairwise(events))  # RecordedEvent.event_id


def leave_wal(writer: Any, path: Path) -> bool:
    """Switch the file to a rollback journal on the writer's only connection; True if it did.

    When another process has the file open, the switch fails at once and the load stays with the log.
    """
    import sqlite3

    writer.execute("PRAGMA busy_timeout=0")  # another process on the file: do not wait for it
    try:
        mode = writer.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:  # "database is locked": keep the log
        log.info("bulk load of %s keeps the write-ahead log: %s", path, exc)
        mode = "wal"
    finally:
        writer.execute("PRAGMA busy_timeout=10000")
    return str(mode).lower() != "wal"


def back_to_wal(writer: Any, path: Path) -> None:
    """Switch the file back to the write-ahead log after a load that left it."""
    import sqlite3

    try:
        mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.OperationalError as exc:
        mode = f"its rollback journal ({exc})"
    if str(mode).lower() != "wal":
        log.warning("%s stays in %s until a connection can switch it back to the log", path, mode)
