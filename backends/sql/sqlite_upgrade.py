"""Bringing a SQLite store written by an older Photon up to the current file format, once, when
a writer opens it: in the transaction that makes the missing tables, so that a killed upgrade
leaves the file as it was (SQLite's DDL is transactional), and logged.

The changes, oldest first:

- 2026-11: ``photon_streams`` without a rowid, keyed by the stream's name (`schema.tables`):
  the rows are copied into the new table, the old one (with its automatic index on the name and
  its index on the number) is dropped.
- 2026-11: the category and event-type indexes of ``photon_events`` give way to the read index
  (`read_index`): they are dropped here, `open` makes its tables, and the writer's first
  catch-up (`ReadIndexer.catch_up`, also in `open`) files every event into it.
- 2026-11: the index on the streams' numbers (``photon_streams_stream_id``) is dropped; the
  highest number it gave is kept in the row the writer reads in its place (`stream_numbers`:
  a truncated stream's number may be missing from the stream index's first block).
"""

from __future__ import annotations

import logging
from typing import Any

from .schema import CATEGORY_INDEX, NUMBER_INDEX, STREAMS_TABLE, TYPE_INDEX
from .stream_numbers import keep_number

log = logging.getLogger("photon.sqlite")

OLD_STREAMS = "photon_streams_before_upgrade"
"""The old streams table's name while its rows are copied."""


def streams_have_rowid(conn: Any) -> bool:
    """Whether the file's streams table is the older one with a rowid (False: none yet, or new)."""
    row = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (STREAMS_TABLE,)
    ).first()
    return row is not None and "WITHOUT ROWID" not in str(row[0]).upper()


def upgrade(conn: Any, streams: Any) -> None:
    """Convert the file on `conn` (in its transaction) to the current format, where it is older;
    `streams` is the current streams table (SQLAlchemy). Run before the tables are made."""
    drop_read_indexes(conn)
    highest = drop_number_index(conn)
    if streams_have_rowid(conn):
        key_streams_by_name(conn, streams)
    if highest:
        keep_number(conn, streams, highest)


def key_streams_by_name(conn: Any, streams: Any) -> None:
    """Copy the older streams table (with a rowid) into the current one."""
    conn.exec_driver_sql(f"ALTER TABLE {STREAMS_TABLE} RENAME TO {OLD_STREAMS}")
    for index in streams.indexes:  # the renamed table's indexes keep their names: free them
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    streams.create(conn)  # with its indexes
    columns = ", ".join(column.name for column in streams.columns)
    copied = conn.exec_driver_sql(
        f"INSERT INTO {STREAMS_TABLE} ({columns}) SELECT {columns} FROM {OLD_STREAMS}"
    ).rowcount
    conn.exec_driver_sql(f"DROP TABLE {OLD_STREAMS}")
    log.info("upgraded the SQLite store's streams table to one keyed by name (%d streams)", copied)


def drop_read_indexes(conn: Any) -> None:
    """Drop the older category and event-type indexes of ``photon_events``, where they are."""
    found = [
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN (?, ?)", (CATEGORY_INDEX, TYPE_INDEX)
        )
    ]
    for name in found:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    if found:
        log.info("dropped the events' own category and event-type indexes: the read index takes their place")


def drop_number_index(conn: Any) -> int | None:
    """Drop the index on the streams' numbers, where it is; the highest number it held (to keep)."""
    found = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (NUMBER_INDEX,)
    ).first()
    if found is None:
        return None
    highest = conn.exec_driver_sql(f"SELECT max(stream_id) FROM {STREAMS_TABLE}").scalar()
    conn.exec_driver_sql(f"DROP INDEX {NUMBER_INDEX}")
    log.info("dropped the index on the streams' numbers: the highest (%s) is kept in a row", highest)
    return int(highest) if highest else None
