"""The floor of the growth benchmark: raw `sqlite3` (or, on PostgreSQL, raw `psycopg`) doing the
same database work as Photon, on the same store, interleaved with Photon's runs (see
`benchmarks.growth`).

- Appends: the rows Photon's batch just stored (read back from its file, untimed) inserted by raw
  `sqlite3` into a copy of the filled store taken before the appends, with the same upsert of
  the streams' versions, the same indexes and the same durability (WAL, synchronous=FULL, the
  writer's page cache); SQLite's own checkpoints (its default, every 1,000 pages of log).
- Stream read: the statement Photon's read of a stream runs first (the stream's first nine
  blocks of versions, joined to its streams row), by raw `sqlite3` on the store's own file.
- Catch-up: the pages of `__all__` a hot-cold subscription reads from an order-id up to the head,
  the statement Photon's page runs (order-ids from the last page's end, up to the head, in order,
  `LIMIT` the backend's page size), page after page until the head.

On PostgreSQL the same, with `psycopg`: the copy is a database made from the filled one
(``CREATE DATABASE ... TEMPLATE``), the append one pipeline (BEGIN, the inserts, the upsert,
COMMIT: Photon's round trip), the read the same statement without Photon's byte bound.

Whatever grows here grows in the database itself, for this schema, whatever Photon does around it.
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
ALL_PAGE_SQL = (
    "SELECT order_id, stream_name, stream_version, event_id, event_type, event_time, data FROM photon_events"
    " WHERE order_id >= ? AND order_id <= ? ORDER BY order_id LIMIT ?"
)
UPSERT_SQL = (
    "INSERT INTO photon_streams (stream_name, version, stream_id) VALUES (?, ?, ?)"
    " ON CONFLICT (stream_name) DO UPDATE SET version = excluded.version"
)


def file_read_index(connection: sqlite3.Connection, last: int) -> None:
    """In a raw append's transaction: the category and event-type index's step, as Photon's
    writer runs it (`read_index`), when the append takes the order-ids past the mark by a step."""
    from photon_backends.sql import read_index

    mark = read_index.stored_mark(connection)
    if last - mark >= read_index.EVERY:
        for statement in read_index.STEP:
            connection.execute(statement, (mark, last))
        connection.execute(read_index.SET_MARK, (last,))


def stream_heads(rows: list[Any]) -> list[tuple[str, int, int]]:
    """The streams upsert's rows for a batch of event rows (in `COLUMNS` order): each stream's
    name, its last version in the batch and its id."""
    heads: dict[str, tuple[str, int, int]] = {}
    for row in rows:
        heads[row[1]] = (row[1], row[2], row[7])
    return list(heads.values())


class SQLiteFloor:
    """Raw `sqlite3` beside a Photon store at `path` (a SQLite file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.copy = str(Path(path).with_name("floor-" + Path(path).name))
        self._writer: sqlite3.Connection | None = None
        self._source: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    def settle_store(self) -> float:
        """Nothing to settle in a SQLite store after its fill: 0 seconds."""
        return 0.0

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
        streams = stream_heads(rows)
        started, cpu = time.perf_counter(), time.thread_time()
        writer = self._writer
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany(INSERT_SQL, rows)
        writer.executemany(UPSERT_SQL, streams)
        file_read_index(writer, rows[-1][0])
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

    def read_all(self, first: int, last: int, page: int) -> tuple[float, float, int]:
        """`__all__` from `first` to `last` in pages of `page` events, as a catch-up reads it:
        (wall, CPU) seconds and rows."""
        if self._reader is None:
            self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        reader = self._reader
        return read_pages(lambda at: reader.execute(ALL_PAGE_SQL, (at, last, page)).fetchall(), first, last, page)

    def close(self) -> None:
        self.end_appends()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


PG_INSERT_SQL = INSERT_SQL.replace("?", "%s")
PG_UPSERT_SQL = UPSERT_SQL.replace("?", "%s")
PG_STREAM_READ_SQL = STREAM_READ_SQL.replace("?", "%s")
PG_ALL_PAGE_SQL = ALL_PAGE_SQL.replace("?", "%s")


def read_pages(page_rows: Any, first: int, last: int, page: int) -> tuple[float, float, int]:
    """Pages of `__all__` (`page_rows(order_id)`: a page's rows from that order-id) from `first`
    until the head `last`: (wall, CPU of the thread) seconds and rows read."""
    started, cpu = time.perf_counter(), time.thread_time()
    at, count = first, 0
    while at <= last:
        rows = page_rows(at)
        count += len(rows)
        if len(rows) < page:
            break
        at = rows[-1][0] + 1
    return time.perf_counter() - started, time.thread_time() - cpu, count


class PostgresFloor:
    """Raw `psycopg` beside a Photon store in the database at `dsn`."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        base, self.name = dsn.rsplit("/", 1)
        self.admin_dsn = base + "/postgres"
        self.copy_name = self.name + "_floor"
        self._writer: Any = None
        self._source: Any = None
        self._reader: Any = None

    def settle_store(self) -> float:
        """``VACUUM (ANALYZE)`` the filled store's tables, before anything is measured; the
        seconds it took. Autovacuum vacuums a table once the rows inserted since its last vacuum
        pass a fifth of it, a minute or so after the fill: at 10M events a pass over 5.6 GB that
        ran beside whatever was being measured then (and the floor's copy, which ends the
        database's sessions, cancelled it to start again later). Vacuumed here, every size is
        measured alike: its rows' hint bits set and its visibility map made, nothing pending."""
        import psycopg

        started = time.perf_counter()
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute("VACUUM (ANALYZE) photon_events, photon_streams, photon_event_tags")
        return time.perf_counter() - started

    def start_appends(self) -> None:
        """Copy the filled database (Photon's store closed)."""
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
            admin.execute(f'CREATE DATABASE "{self.copy_name}" TEMPLATE "{self.name}"')
        self._writer = psycopg.connect(self.dsn.rsplit("/", 1)[0] + "/" + self.copy_name, autocommit=True)
        self._source = psycopg.connect(self.dsn, autocommit=True)

    def append_like(self, first: int, last: int) -> tuple[float, float]:
        """Insert the events Photon stored at order-ids `first`..`last`; (wall, CPU) seconds."""
        rows = self._source.execute(
            f"SELECT {COLUMNS} FROM photon_events WHERE order_id BETWEEN %s AND %s ORDER BY order_id", (first, last)
        ).fetchall()
        streams = stream_heads(rows)
        started, cpu = time.perf_counter(), time.thread_time()
        writer = self._writer
        with writer.pipeline(), writer.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.executemany(PG_INSERT_SQL, rows)
            cursor.executemany(PG_UPSERT_SQL, streams)
            cursor.execute("COMMIT")
        return time.perf_counter() - started, time.thread_time() - cpu

    def end_appends(self) -> None:
        import psycopg

        for connection in (self._writer, self._source):
            if connection is not None:
                connection.close()
        if self._writer is not None:
            with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.copy_name}"')
        self._writer = self._source = None

    def read_stream(self, stream: str) -> tuple[float, float, int]:
        import psycopg

        if self._reader is None:
            self._reader = psycopg.connect(self.dsn, autocommit=True)
        started, cpu = time.perf_counter(), time.thread_time()
        rows: list[Any] = self._reader.execute(PG_STREAM_READ_SQL, (stream,)).fetchall()
        return time.perf_counter() - started, time.thread_time() - cpu, len(rows)

    def read_all(self, first: int, last: int, page: int) -> tuple[float, float, int]:
        """`__all__` from `first` to `last` in pages of `page` events, as a catch-up reads it, the
        results in binary and the statement prepared (as Photon's kept readers run it): (wall,
        CPU) seconds and rows."""
        import psycopg

        if self._reader is None:
            self._reader = psycopg.connect(self.dsn, autocommit=True)
        cursor = self._reader.cursor(binary=True)

        def page_rows(at: int) -> list[Any]:
            return cursor.execute(PG_ALL_PAGE_SQL, (at, last, page), prepare=True).fetchall()

        try:
            return read_pages(page_rows, first, last, page)
        finally:
            cursor.close()

    def close(self) -> None:
        self.end_appends()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


Floor = SQLiteFloor | PostgresFloor


VARIANTS = {
    "same work": "the events' rows and indexes, each stream's version and the read index's step (Photon's write)",
    "no streams upsert": "the events' rows and indexes only",
    "no stream index": "the events' rows and their other indexes (the stream index dropped), no upsert",
}


def layout_costs(path: Path, variant: str, batches: int = 20) -> tuple[float, float]:
    """Raw `sqlite3` on a filled store (changed in place: give it a copy): the growth benchmark's
    appends (`batches` of 1,000 to streams s-0..s-976) as one of VARIANTS; (events/s, CPU µs an
    event), the closing checkpoint included."""
    import orjson

    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", f"cache_size=-{WRITER_CACHE_KIB}", "wal_autocheckpoint=0"):
        connection.execute(f"PRAGMA {pragma}")
    if variant == "no stream index":
        connection.execute("DROP INDEX IF EXISTS photon_events_stream_block")
    names = [f"s-{i % 977}" for i in range(batches * 1000)]
    heads: dict[str, tuple[int, int]] = {}
    top = connection.execute("SELECT coalesce(max(stream_id), 0) FROM photon_streams").fetchone()[0]
    for name in sorted(set(names)):
        found = connection.execute("SELECT version, stream_id FROM photon_streams WHERE stream_name = ?", (name,))
        row = found.fetchone()
        if row is None:
            top += 1
            row = (0, top)
        heads[name] = (row[0], row[1])
    order = connection.execute("SELECT max(order_id) FROM photon_events").fetchone()[0]
    now = int(time.time() * 1000)
    work = []
    for start in range(0, len(names), 1000):
        rows, versions = [], {}
        for i in range(start, start + 1000):
            name = names[i]
            version, number = heads[name]
            heads[name] = (version + 1, number)
            order += 1
            data = orjson.dumps({"order-id": order, "stream-name": name, "payload": {"i": i}})
            rows.append((order, name, version + 1, f"zz{order:030d}", "appended", now, data, number))
            versions[name] = (name, version + 1, number)
        work.append((rows, list(versions.values())))
    started, cpu = time.perf_counter(), time.process_time()
    for rows, streams in work:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(INSERT_SQL, rows)
        if variant == "same work":
            connection.executemany(UPSERT_SQL, streams)
            file_read_index(connection, rows[-1][0])
        connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    return len(names) / elapsed, used / len(names) * 1e6


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.growth_floor --keep DIR [--sizes ...]``: where the appends' growth
    lies on SQLite, by raw `sqlite3` on copies of the stores `benchmarks.growth --keep DIR` filled:
    the same work, without the upsert of the streams' versions, and without the stream index."""
    import argparse
    import os
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--keep", required=True, type=Path, help="the folder of benchmarks.growth --keep")
    parser.add_argument("--sizes", default="10000,1000000", type=lambda t: [int(x) for x in t.split(",")])
    args = parser.parse_args(argv)
    figures: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="photon-floor-", dir=args.keep) as work:
        for variant in VARIANTS:
            for size in args.sizes:
                copy = Path(work) / "copy.db"
                shutil.copyfile(args.keep / f"sqlite-{size}.db", copy)
                figures[variant, size] = layout_costs(copy, variant)
                for suffix in ("", "-wal", "-shm"):
                    Path(str(copy) + suffix).unlink(missing_ok=True)
    smallest = min(args.sizes)
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| raw sqlite3 | events | ev/s | CPU µs/event | cost vs smallest (wall / CPU) |")
    print("|---|---:|---:|---:|---:|")
    for (variant, size), (rate, cpu) in figures.items():
        base_rate, base_cpu = figures[variant, smallest]
        print(f"| {variant} | {size:,} | {rate:,.0f} | {cpu:.1f} | {base_rate / rate:.2f}x / {cpu / base_cpu:.2f}x |")


if __name__ == "__main__":
    main()
