"""The floor of the growth benchmark on SQLite: raw `sqlite3` doing the same database work as
Photon, on the same file, interleaved with Photon's runs (see `benchmarks.growth`).

- Appends: the rows Photon's batch just stored (read back from its file, untimed) inserted by raw
  `sqlite3` into a copy of the filled store taken before the appends, with the same upsert of
  the streams' versions, the same indexes and the same durability (WAL, synchronous=FULL, the
  writer's page cache); SQLite's own checkpoints (its default, every 1,000 pages of log).
- Stream read: the statement Photon's read of a stream runs first (the stream's first nine
  blocks of versions, joined to its streams row), by raw `sqlite3` on the store's own file.

Whatever grows here grows in SQLite itself, for this schema, whatever Photon does around it.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from backends.sql.sqlite import WRITER_CACHE_KIB

STREAM_READ_SQL = (
    "SELECT e.order_id, e.stream_name, e.stream_version, e.event_id, e.event_type, e.event_time, e.data, s.version"
    " FROM photon_streams s JOIN photon_events e ON e.stream_id = s.stream_id"
    " WHERE s.stream_name = ? AND (e.stream_version >> 6) IN (0, 1, 2, 3, 4, 5, 6, 7, 8) AND e.stream_version >= 1"
    " ORDER BY e.stream_version >> 6, e.stream_version LIMIT 1000"
)
COLUMNS = "order_id, stream_name, stream_version, event_id, event_type, event_time, data, stream_id"
INSERT_SQL = f"INSERT INTO photon_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_SQL = (
    "INSERT INTO photon_streams (stream_name, version, stream_id) VALUES (?, ?, ?)"
    " ON CONFLICT (stream_name) DO UPDATE SET version = excluded.version"
)


class SQLiteFloor:
    """Raw `sqlite3` beside a Photon store at `path` (a SQLite file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.copy = str(Path(path).with_name("floor-" + Path(path).name))
        self._writer: sqlite3.Connection | None = None
        self._source: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    def start_appends(self) -> None:
        """Copy the filled store (Photon's store closed, its log checkpointed into the file)."""
        source = sqlite3.connect(self.path)
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        source.close()
        shutil.copyfile(self.path, self.copy)
        writer = sqlite3.connect(self.copy, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", f"cache_size=-{WRITER_CACHE_KIB}"):
            writer.execute(f"PRAGMA {pragma}")
        self._writer = writer
        self._source = sqlite3.connect(self.path)

    def append_like(self, first: int, last: int) -> tuple[float, float]:
        """Insert the events Photon stored at order-ids `first`..`last`; (wall, CPU) seconds."""
        assert self._writer is not None and self._source is not None
        rows = self._source.execute(
            f"SELECT {COLUMNS} FROM photon_events WHERE order_id BETWEEN ? AND ? ORDER BY order_id", (first, last)
        ).fetchall()
        heads: dict[str, tuple[str, int, int]] = {}
        for row in rows:
            heads[row[1]] = (row[1], row[2], row[7])
        streams = list(heads.values())
        started, cpu = time.perf_counter(), time.thread_time()
        writer = self._writer
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany(INSERT_SQL, rows)
        writer.executemany(UPSERT_SQL, streams)
        writer.execute("COMMIT")
        return time.perf_counter() - started, time.thread_time() - cpu

    def end_appends(self) -> None:
        for connection in (self._writer, self._source):
            if connection is not None:
                connection.close()
        self._writer = self._source = None
        for suffix in ("", "-wal", "-shm"):
            Path(self.copy + suffix).unlink(missing_ok=True)

    def read_stream(self, stream: str) -> tuple[float, float, int]:
        """The stream read's statement on the store's own file: (wall, CPU) seconds and rows."""
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        started, cpu = time.perf_counter(), time.thread_time()
        rows: list[Any] = self._reader.execute(STREAM_READ_SQL, (stream,)).fetchall()
        return time.perf_counter() - started, time.thread_time() - cpu, len(rows)

    def close(self) -> None:
        self.end_appends()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
