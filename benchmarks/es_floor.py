"""The floor of the `eventsourcing` recorder's inserts on SQLite: what the database work alone
costs, for Photon's rows and for the library's, beside the two recorders, in one run.

``python -m benchmarks.es_floor [--events 20000] [--repeat 3]``

Each round, interleaved, on fresh files, all WAL with ``synchronous=FULL``:

- ``photon``: the library's application recorder from ``photon.eventsourcing`` (embedded SQLite),
  inserting one new aggregate's 10 events at a time (as ``benchmarks.es_recorders``);
- ``library``: the same inserts through ``eventsourcing.sqlite``;
- ``raw photon``: raw ``sqlite3`` running exactly the statements Photon's writer runs for each
  insert, with the very rows Photon stored (read back from its file, untimed), on a store with
  Photon's schema: the look-up of the new stream's version and number, ``BEGIN IMMEDIATE``, one
  10-row insert, the upsert of the stream's version, every `read_index.EVERY` order-ids the step
  of the category and event-type index, ``COMMIT``;
- ``raw photon, inline read indexes``: the same on the file format before 2026-11, whose events
  table kept its own category and event-type indexes, written at every commit, instead of the
  read index's steps;
- ``raw library``: raw ``sqlite3`` running the library's own statements (``BEGIN``, one insert per
  event, ``COMMIT``) on its own table, with the same stored events.

Figures: inserts a second and CPU time (this process, every thread) per event. ``raw photon``
over ``raw library`` is the most the Photon recorder can reach against the library with this
file format, whatever Photon's Python does around the statements.

Then, untimed: the pages one insert puts into the write-ahead log (automatic checkpoints off, so
the log holds every page written), in all and by b-tree (each log frame's page number looked up
in SQLite's ``dbstat`` table: which table or index it belongs to), for Photon's own writer (the
recorder, its background checkpoints held off), Photon's statements, the same on the file format
before 2026-11 (inline category and event-type indexes), without the id index, two layouts
measured and not built (the ids filed in the read index's steps, into a table of their own,
instead of an index written at every commit; no pointer map, ``auto_vacuum=NONE``), and for the
library's statements.
``--pages`` prints only these counts. Every such page is
written, checksummed, flushed and later copied into the database file: what a file format with
fewer or narrower indexes would save.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from eventsourcing.persistence import StoredEvent

from .es_recorders import EVENTS_PER_INSERT, factory, make_inserts
from .summary import Row, median, table

COLUMNS = "order_id, stream_name, stream_version, event_id, event_type, event_time, data, stream_id"
HEADS = "SELECT stream_name, version, stream_id FROM photon_streams WHERE stream_name IN (?)"
INSERT = f"INSERT INTO photon_events ({COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * EVENTS_PER_INSERT)
UPSERT = (
    "INSERT INTO photon_streams (stream_name, version, stream_id) VALUES (?, ?, ?)"
    " ON CONFLICT (stream_name) DO UPDATE SET version = excluded.version"
)
LIBRARY_INSERT = "INSERT INTO stored_events VALUES (?,?,?,?)"
INLINE_READ_INDEXES = (
    "CREATE INDEX photon_events_category ON photon_events "
    "(substr(stream_name, 1, instr(stream_name || '-', '-') - 1), order_id)",
    "CREATE INDEX photon_events_type ON photon_events (event_type, order_id)",
)
"""The events table's own category and event-type indexes, as the file format had them until
2026-11 (the read index's steps took their place)."""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], int]) -> tuple[float, float]:
    """Events a second and CPU microseconds an event of `run` (which returns its event count)."""
    start, cpu = time.perf_counter(), cpu_seconds()
    events = run()
    elapsed, used = time.perf_counter() - start, cpu_seconds() - cpu
    return events / elapsed, used / events * 1e6


def recorder_inserts(env: dict[str, str], inserts: list[list[StoredEvent]]) -> tuple[float, float]:
    made = factory(env)
    try:
        recorder = made.application_recorder()

        def run() -> int:
            for events in inserts:
                recorder.insert_events(events)
            return sum(map(len, inserts))

        return timed(run)
    finally:
        made.close()


def photon_env(path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "photon.eventsourcing",
        "PHOTON_DB_BACKEND": "sqlite",
        "PHOTON_SQLITE_PATH": str(path),
        "PHOTON_SQLITE_SYNCHRONOUS": "FULL",
    }


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    """The events Photon stored, as rows of its events table, in order."""
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT {COLUMNS} FROM photon_events ORDER BY order_id").fetchall()


IDS_TABLE = "CREATE TABLE photon_event_ids (event_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL) WITHOUT ROWID"
IDS_STEP = (
    "INSERT INTO photon_event_ids (event_id, order_id) SELECT event_id, order_id FROM photon_events"
    " WHERE order_id > ? AND order_id <= ?"
)
"""A layout measured and not built: the unique ids in a table of their own, filed with the read
index's steps (`read_index.STEP`) instead of an index of ``photon_events`` written at every
commit. SQLite has no fast path for adding to the end of an index b-tree (a table's rowids have
one, ``balance_quick``): each time the last leaf of the id index fills, it is balanced with its two
left siblings, and those pages and the parent go into the log again, even though the ids only ever
ascend."""


def empty_photon_store(
    path: Path, drop: tuple[str, ...] = (), inline: bool = False, ids_in_steps: bool = False, pointer_map: bool = True
) -> None:
    """A store with Photon's schema, made by Photon itself (then closed), less the `drop` indexes;
    `inline`: with the events' own category and event-type indexes (the format before 2026-11);
    `ids_in_steps`: the id index replaced by `IDS_TABLE`; without `pointer_map`: converted to
    ``auto_vacuum=NONE`` (no page of the file then tracks its pages' parents, and a scavenge can
    no longer give space back while the store is online)."""
    from photon.core.store import EventStore

    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}):
        pass
    with sqlite3.connect(path) as connection:
        for index in drop + (("photon_events_event_id",) if ids_in_steps else ()):
            connection.execute(f"DROP INDEX {index}")
        for statement in INLINE_READ_INDEXES if inline else ():
            connection.execute(statement)
        if ids_in_steps:
            connection.execute(IDS_TABLE)
    if not pointer_map:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("PRAGMA auto_vacuum=NONE")
            connection.execute("VACUUM")
        finally:
            connection.close()


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def photon_groups(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Photon's rows as its inserts: one stream's 10 events each."""
    inserts = [rows[i : i + EVENTS_PER_INSERT] for i in range(0, len(rows), EVENTS_PER_INSERT)]
    if any(len(group) != EVENTS_PER_INSERT or len({row[1] for row in group}) != 1 for group in inserts):
        raise RuntimeError("Photon's rows are not one stream's 10 events per insert")
    return inserts


def photon_statements(
    connection: sqlite3.Connection, inserts: list[list[tuple[Any, ...]]], filed: bool = True, ids_in_steps: bool = False
) -> int:
    """Photon's writer's statements for each insert (with `filed`, the read index's steps; with
    `ids_in_steps`, those steps file the ids into `IDS_TABLE` too); the number of inserts."""
    from photon_backends.sql import read_index

    step = read_index.STEP + ((IDS_STEP,) if ids_in_steps else ())
    execute = connection.execute
    mark = read_index.stored_mark(connection)
    for group in inserts:
        last = group[-1]
        execute(HEADS, (last[1],)).fetchall()
        execute("BEGIN IMMEDIATE")
        execute(INSERT, list(chain.from_iterable(group)))
        execute(UPSERT, (last[1], last[2], last[7]))
        if filed and last[0] - mark >= read_index.EVERY:
            for statement in step:
                execute(statement, (mark, last[0]))
            execute(read_index.SET_MARK, (last[0],))
            mark = last[0]
        execute("COMMIT")
    return len(inserts)


def raw_photon(path: Path, rows: list[tuple[Any, ...]], inline: bool = False) -> tuple[float, float]:
    empty_photon_store(path, inline=inline)
    connection = connect(path)
    inserts = photon_groups(rows)

    def run() -> int:
        photon_statements(connection, inserts, filed=not inline)
        return len(rows)

    try:
        figures = timed(run)
        if connection.execute("SELECT count(*) FROM photon_events").fetchone()[0] != len(rows):
            raise RuntimeError("the raw copy does not hold Photon's rows")
        return figures
    finally:
        connection.close()


def raw_library(path: Path, inserts: list[list[StoredEvent]]) -> tuple[float, float]:
    made = factory({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    made.application_recorder()  # creates its table
    made.close()
    connection = connect(path)
    params = library_params(inserts)

    def run() -> int:
        library_statements(connection, params)
        return sum(map(len, params))

    try:
        return timed(run)
    finally:
        connection.close()


def library_params(inserts: list[list[StoredEvent]]) -> list[list[tuple[Any, ...]]]:
    return [[(s.originator_id.hex, s.originator_version, s.topic, s.state) for s in events] for events in inserts]


def library_statements(connection: sqlite3.Connection, params: list[list[tuple[Any, ...]]]) -> int:
    """The library's statements for each insert (``BEGIN``, one insert per event, ``COMMIT``)."""
    cursor = connection.cursor()
    for events in params:
        cursor.execute("BEGIN")
        for row in events:
            cursor.execute(LIBRARY_INSERT, row)
            _ = cursor.lastrowid  # the notification id the library returns
        cursor.execute("COMMIT")
    return len(params)


WAL_HEADER = 32
FRAME_HEADER = 24
"""Bytes of the log's header and of each page's frame header (SQLite's WAL format)."""
OUTSIDE_TREES = "pointer map, free list or file header"
"""Log pages that belong to no table or index: auto-vacuum's pointer map pages above all."""


def log_frames(path: Path) -> tuple[list[int], int]:
    """The page number of every frame of `path`'s write-ahead log, in order, and the number of
    commits among them: each frame is one page one commit wrote (a page changed by several commits
    is in the log once per commit). Only the frames of the log's current pass count: a log that
    started again from its beginning keeps older frames past its end, with other salts."""
    data = Path(f"{path}-wal").read_bytes()
    if len(data) < WAL_HEADER:
        return [], 0
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    step = FRAME_HEADER + page_size
    pages, commits = [], 0
    for at in range(WAL_HEADER, len(data) - step + 1, step):
        if data[at + 8 : at + 16] != salts:
            break
        pages.append(int.from_bytes(data[at : at + 4], "big"))
        commits += data[at + 4 : at + 8] != bytes(4)  # a commit's last frame holds the file's size
    return pages, commits


def page_owners(connection: sqlite3.Connection) -> dict[int, str]:
    """Each page of the file and the table or index (b-tree) it belongs to, from SQLite's `dbstat`
    virtual table (overflow pages count with their b-tree)."""
    rows = connection.execute("SELECT pageno, name FROM dbstat").fetchall()
    return {page: name for page, name in rows}


def pages_by_tree(connection: sqlite3.Connection, path: Path) -> dict[str, float]:
    """The log pages a commit on `path` wrote (one commit an insert), in all and per b-tree."""
    owners = page_owners(connection)
    tally: dict[str, int] = {}
    frames, count = log_frames(path)
    for page in frames:
        name = owners.get(page, OUTSIDE_TREES)
        tally[name] = tally.get(name, 0) + 1
    by_tree = {name: pages / count for name, pages in sorted(tally.items(), key=lambda item: -item[1])}
    return {"all": sum(by_tree.values()), **by_tree}


def log_pages(path: Path, write: Callable[[sqlite3.Connection], int]) -> dict[str, float]:
    """Pages an insert puts into the write-ahead log, in all and by b-tree: `write` runs its
    inserts on `path` (and says how many) with automatic checkpoints off, so the log keeps every
    page written."""
    connection = connect(path)
    try:
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        write(connection)
        return pages_by_tree(connection, path)
    finally:
        connection.close()


def photon_writer_pages(path: Path, inserts: list[list[StoredEvent]]) -> dict[str, float]:
    """Log pages an insert through Photon's own writer (the recorder on an embedded store) puts
    into the log, by b-tree: its background checkpoints held off while it inserts, and the log
    read before the store closes (its last connection would checkpoint it)."""
    from photon_backends.sql.checkpointing import LogCheckpointer

    start = LogCheckpointer.start
    LogCheckpointer.start = lambda self: None  # type: ignore[method-assign]
    try:
        made = factory(photon_env(path))
    finally:
        LogCheckpointer.start = start  # type: ignore[method-assign]
    try:
        recorder = made.application_recorder()
        recorder.insert_events(inserts[0])  # the store's own first writes (its config) out of the count
        observer = connect(path)
        try:
            observer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for events in inserts[1:]:
                recorder.insert_events(events)
            return pages_by_tree(observer, path)
        finally:
            observer.close()
    finally:
        made.close()


class PageContender(NamedTuple):
    name: str
    drop: tuple[str, ...] = ()
    """Indexes dropped."""
    inline: bool = False
    """The events keep their own category and event-type indexes (the format before 2026-11)."""
    ids_in_steps: bool = False
    """The ids filed in the read index's steps into `IDS_TABLE` (measured, not built)."""
    pointer_map: bool = True
    """False: the file converted to ``auto_vacuum=NONE`` (measured, not built)."""


IDS_IN_STEPS = "the ids filed in the read index's steps (not built)"
NO_POINTER_MAP = "no pointer map, auto_vacuum=NONE (not built)"
PAGE_CONTENDERS: tuple[PageContender, ...] = (
    PageContender("photon's statements"),
    PageContender("the same, inline category and event-type indexes (before 2026-11)", inline=True),
    PageContender("without the id index", drop=("photon_events_event_id",)),
    PageContender(IDS_IN_STEPS, ids_in_steps=True),
    PageContender(NO_POINTER_MAP, pointer_map=False),
)


def pages_per_insert(
    folder: Path, rows: list[tuple[Any, ...]], inserts: list[list[StoredEvent]]
) -> dict[str, dict[str, float]]:
    """Log pages an insert writes, in all and by b-tree: Photon's own writer, Photon's statements
    with its indexes, less some of them, and the library's statements (each on a fresh file)."""
    groups = photon_groups(rows)
    pages = {"photon's writer (the recorder)": photon_writer_pages(folder / "pages-writer.db", inserts)}
    for number, contender in enumerate(PAGE_CONTENDERS):
        path = folder / f"pages-{number}.db"
        empty_photon_store(path, contender.drop, contender.inline, contender.ids_in_steps, contender.pointer_map)
        write = partial(
            photon_statements, inserts=groups, filed=not contender.inline, ids_in_steps=contender.ids_in_steps
        )
        pages[contender.name] = log_pages(path, write)
    path = folder / "pages-library.db"
    made = factory({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    made.application_recorder()  # creates its table
    made.close()
    params = library_params(inserts)
    pages["the library's statements"] = log_pages(path, lambda connection: library_statements(connection, params))
    return pages


def print_pages(pages: dict[str, dict[str, float]]) -> None:
    print("pages an insert puts into the write-ahead log (untimed), in all and by b-tree:", file=sys.stderr)
    for name, trees in pages.items():
        parts = ", ".join(f"{tree} {count:.2f}" for tree, count in trees.items() if tree != "all")
        print(f"  {name}: {trees['all']:.1f} ({parts})", file=sys.stderr)


def pages_only(events: int) -> None:
    """Only the untimed count of log pages an insert writes, by b-tree."""
    inserts = make_inserts(events)
    with tempfile.TemporaryDirectory() as tmp:
        recorder_inserts(photon_env(Path(tmp) / "photon.db"), inserts)
        print_pages(pages_per_insert(Path(tmp), stored_rows(Path(tmp) / "photon.db"), inserts))


def run(events: int, repeat: int) -> list[Row]:
    inserts = make_inserts(events)
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def keep(name: str, figures: tuple[float, float]) -> None:
        rates.setdefault(name, []).append(figures[0])
        cpu.setdefault(name, []).append(figures[1])

    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(repeat):
            base = Path(tmp) / str(attempt)
            base.mkdir()
            keep("photon", recorder_inserts(photon_env(base / "photon.db"), inserts))
            rows = stored_rows(base / "photon.db")
            keep(
                "library",
                recorder_inserts(
                    {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(base / "es.db")}, inserts
                ),
            )
            keep("raw photon", raw_photon(base / "raw.db", rows))
            keep("raw library", raw_library(base / "raw-es.db", inserts))
            keep("raw photon, inline read indexes", raw_photon(base / "raw-inline.db", rows, inline=True))
        pages = pages_per_insert(Path(tmp), rows, inserts)
    print_pages(pages)
    durability = "SQLite WAL, synchronous=FULL"
    client = f"{EVENTS_PER_INSERT} events per insert"
    rows_out = []
    for name, peer in [
        ("photon", "library"),
        ("raw photon", "raw library"),
        ("raw photon, inline read indexes", "raw library"),
        ("photon", "raw photon"),
    ]:
        rows_out.append(
            Row(
                workload=f"eventsourcing inserts: {name} (CPU {median(cpu[name]):.1f} µs/event)",
                photon=median(rates[name]),
                peer_name=f"{peer} (CPU {median(cpu[peer]):.1f} µs/event)",
                peer=median(rates[peer]),
                client=client,
                in_flight="1 thread, 1 insert in flight",
                durability=durability,
                target=1.0 if (name, peer) == ("photon", "library") else None,
                runs={name: rates[name], peer: rates[peer]},
            )
        )
    return rows_out


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events inserted per contender and run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is shown)")
    parser.add_argument("--pages", action="store_true", help="only count the log pages an insert writes, by b-tree")
    args = parser.parse_args(argv)
    if args.pages:
        pages_only(args.events)
        return []
    load = os.getloadavg()[0]
    print(f"eventsourcing insert floor: {args.events} events, {args.repeat} runs, load {load:.1f}", file=sys.stderr)
    rows = run(args.events, args.repeat)
    print(table(rows), file=sys.stderr)
    print(f"load average: {load:.1f} at start, {os.getloadavg()[0]:.1f} at end", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
