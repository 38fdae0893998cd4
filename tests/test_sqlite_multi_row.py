"""SQLite appends write many rows per statement (`multi_row`): every size of batch and of group
lands whole, in order, with each stream's version, and a failing statement leaves nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from photon_backends.sql.multi_row import APPEND_ROWS, EXACT_ROWS, MultiRow

from photon import EventStore
from photon.core.errors import PhotonError

SIZES = [1, 2, EXACT_ROWS - 1, EXACT_ROWS, EXACT_ROWS + 1, APPEND_ROWS - 1, APPEND_ROWS, APPEND_ROWS + 1, 1000]


def test_batches_of_every_size_land_whole_with_their_versions(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "m.db")) as store:
        expected: dict[str, int] = {}
        for size in SIZES:
            # Each batch spreads over as many streams as it has events, up to 300: the streams'
            # versions are written many per statement too.
            batch = [{"stream-name": f"s-{i % 300}", "event-type": "t", "payload": {"i": i}} for i in range(size)]
            stored = store.append(batch)
            for event in batch:
                expected[event["stream-name"]] = expected.get(event["stream-name"], 0) + 1
            assert [e.payload["i"] for e in stored] == list(range(size))
        assert [e.order_id for e in store.read()] == list(range(1, sum(SIZES) + 1))
        assert {info.stream_name: info.total_events for info in store.streams()} == expected
        for name, version in list(expected.items())[:5]:
            assert [e.stream_version for e in store.read(name)] == list(range(1, version + 1))
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "m.db")) as store:
        # The versions the writer reads back after a restart are the ones written.
        appended = store.append({"stream-name": "s-0", "event-type": "t", "payload": {}})
        assert appended[0].stream_version == expected["s-0"] + 1


def test_groups_of_many_writers_land_whole(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "g.db")) as store:

        def write(thread: int) -> None:
            for i in range(20):
                store.append({"stream-name": f"t-{thread}", "event-type": "t", "payload": {"i": i}})

        threads = [threading.Thread(target=write, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [e.order_id for e in store.read()] == list(range(1, 801))
        for n in range(40):
            assert [e.payload["i"] for e in store.read(f"t-{n}")] == list(range(20))


def test_a_batch_refused_by_the_database_leaves_nothing(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "r.db")) as store:
        store.append({"stream-name": "a", "event-type": "t", "payload": {}})
        backend = store.backend
        # A second row with the id of a stored event, past the first statement of the batch:
        # the unique id index refuses it, and the rows before it go too.
        stored = next(iter(store.read()))
        records = [
            stored._replace(order_id=2 + i, stream_version=2 + i, event_id=f"fresh-{i}") for i in range(APPEND_ROWS + 5)
        ]
        records[-1] = records[-1]._replace(event_id=stored.event_id)
        with pytest.raises(PhotonError):
            backend.append(records)
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "r.db")) as store:
        assert [e.order_id for e in store.read()] == [1]
        assert store.append({"stream-name": "a", "event-type": "t", "payload": {}})[0].stream_version == 2


def test_statements_of_many_rows_keep_their_tail() -> None:
    made = MultiRow().statement("INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b", 3)
    assert made == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"


def test_rows_made_one_by_one_are_taken_only_as_each_statement_needs_them() -> None:
    # An append's rows are made as the statements take them, so that they are not all alive at
    # once: a statement's parameters are the only rows made ahead.
    import sqlite3

    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    made: list[int] = []
    taken: list[int] = []

    class Counting:
        def execute(self, sql: str, params: object = ()) -> None:
            taken.append(len(made))
            connection.execute(sql, params)  # type: ignore[arg-type]

    def rows(total: int) -> Iterator[tuple[int, str]]:
        for n in range(total):
            made.append(n)
            yield (n, f"r{n}")

    total = APPEND_ROWS + EXACT_ROWS + 3
    MultiRow().run_taking(Counting(), "INSERT INTO t (a, b) VALUES (?, ?)", rows(total), total, APPEND_ROWS)
    assert taken == [APPEND_ROWS, APPEND_ROWS + EXACT_ROWS, total]  # 256 rows, 32, then the last 3 in one
    assert connection.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == [(n, f"r{n}") for n in range(total)]


def test_the_statement_journal_of_many_row_inserts_stays_in_memory(tmp_path: Path) -> None:
    # A statement of many rows inside the append's transaction keeps the original of each page it
    # changes (its statement journal); past 64 KiB SQLite moves it to a temporary file unless the
    # connection keeps temporary data in memory: about 1 MB of file writes for 1,000 events.
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "j.db")) as store:
        store.append([{"stream-name": f"s-{i % 50}", "event-type": "t", "payload": {"i": i}} for i in range(1000)])
        writer = store.backend._writer_connection().driver_connection  # type: ignore[attr-defined]
        assert writer.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
        assert len(list(store.read())) == 1000


def test_the_writer_cache_follows_the_size_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small store's writer keeps SQLite's default cache (each page a larger cache takes is new
    # memory: a page fault); a large store's gets up to WRITER_CACHE_KIB, sized again as it grows.
    from photon_backends.sql import sqlite

    assert sqlite.writer_cache_kib(0) == sqlite.WRITER_CACHE_MIN_KIB
    assert sqlite.writer_cache_kib(64 << 20) == 8 << 10  # an eighth of the file
    assert sqlite.writer_cache_kib(10 << 30) == sqlite.WRITER_CACHE_KIB
    monkeypatch.setattr(sqlite, "WRITER_CACHE_MIN_KIB", 1)
    monkeypatch.setattr(sqlite, "WRITER_CACHE_SHARE", 1)
    monkeypatch.setattr(sqlite, "CACHE_SIZING_COMMITS", 2)
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "c.db")) as store:
        writer = store.backend._writer_connection().driver_connection  # type: ignore[attr-defined]

        def cache_and_file_kib() -> tuple[int, int]:
            pages = writer.execute("PRAGMA page_count").fetchone()[0]
            size = writer.execute("PRAGMA page_size").fetchone()[0]
            return -writer.execute("PRAGMA cache_size").fetchone()[0], pages * size // 1024

        first, small = cache_and_file_kib()
        assert first == small
        for _ in range(4):
            store.append([{"stream-name": f"s-{i % 50}", "event-type": "t", "payload": {"i": i}} for i in range(500)])
        cache, large = cache_and_file_kib()
        assert large > small and cache == large


def test_rows_with_their_last_value_apart_land_in_order_with_it() -> None:
    # The append's rows are its events as they are, and their stream numbers in a list of their
    # own: the statement's numbered parameters put each number in its row.
    import sqlite3

    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (a INTEGER, b TEXT, c INTEGER)")
    statements = MultiRow()
    assert statements.statement_last_apart("INSERT INTO t (a, b, c) VALUES (?, ?, ?)", 2) == (
        "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?5), (?3, ?4, ?6)"
    )
    total = APPEND_ROWS + EXACT_ROWS + 3
    rows = [(n, f"r{n}") for n in range(total)]
    statements.run_last_apart(
        connection, "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", rows, [n * 10 for n in range(total)], APPEND_ROWS
    )
    assert connection.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == [
        (n, f"r{n}", n * 10) for n in range(total)
    ]
    with pytest.raises(ValueError):
        statements.run_last_apart(connection, "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", rows, [1], APPEND_ROWS)
