"""A SQLite store written by an older Photon opens on the current code, is upgraded once (in a
transaction, logged) and works: reads, appends, category and event-type reads, backup and restore."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import photon_backends.sql.sqlite_upgrade as sqlite_upgrade
import pytest

from photon.core.store import EventStore
from photon.ops.restore import restore

from .backup_support import backup_bytes, build_source, everything

OLD_STREAMS_DDL = (
    "CREATE TABLE photon_streams (\n\tstream_name VARCHAR(256) NOT NULL, \n\tversion BIGINT NOT NULL, "
    "\n\tstream_id INTEGER NOT NULL, \n\tPRIMARY KEY (stream_name)\n)"
)
"""The streams table as Photon made it until 2026-11: with a rowid (so also an automatic index on
the name), and the number's index beside it."""
OLD_STREAMS_INDEX = "CREATE UNIQUE INDEX photon_streams_stream_id ON photon_streams (stream_id)"
OLD_READ_INDEXES = (
    "CREATE INDEX photon_events_category ON photon_events "
    "(substr(stream_name, 1, instr(stream_name || '-', '-') - 1), order_id)",
    "CREATE INDEX photon_events_type ON photon_events (event_type, order_id)",
)
"""The events' own category and event-type indexes, as Photon made them until 2026-11 (in place
of the read index's tables)."""


def open_sqlite(path: Path) -> EventStore:
    return EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)})


def streams_sql(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("SELECT sql FROM sqlite_master WHERE name = 'photon_streams'").fetchone()[0])


def make_old_store(path: Path) -> list[tuple[str, int, int]]:
    """A store in the older file format, with events in several streams and categories; its
    streams' rows (name, version, number)."""
    with open_sqlite(path) as store:
        build_source(store, streams=6, per_stream=5)
        store.append([{"stream-name": f"cart-{n}", "event-type": "Added", "payload": {"n": n}} for n in range(4)])
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT stream_name, version, stream_id FROM photon_streams").fetchall()
        connection.execute("DROP TABLE photon_streams")
        connection.execute(OLD_STREAMS_DDL)
        connection.execute(OLD_STREAMS_INDEX)
        connection.executemany("INSERT INTO photon_streams VALUES (?, ?, ?)", rows)
        connection.execute("DROP TABLE photon_read_index")
        connection.execute("DROP TABLE photon_read_index_mark")
        for statement in OLD_READ_INDEXES:
            connection.execute(statement)
    assert "WITHOUT ROWID" not in streams_sql(path)
    return sorted(rows)


def test_an_older_store_is_upgraded_once_and_works(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.db"
    rows = make_old_store(path)
    with open_sqlite(path):  # a writer: the upgrade runs here
        pass
    assert "WITHOUT ROWID" in streams_sql(path)
    highest = max(number for _, _, number in rows)
    with sqlite3.connect(path) as connection:
        # The streams' rows, and the one that keeps the highest number in place of the number's index.
        assert sorted(connection.execute("SELECT stream_name, version, stream_id FROM photon_streams")) == sorted(
            [*rows, ("", -highest, 0)]
        )
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "photon_streams_before_upgrade" not in names and "photon_streams_stream_id" not in names
    assert "sqlite_autoindex_photon_streams_1" not in names
    assert "photon_events_category" not in names and "photon_events_type" not in names
    with sqlite3.connect(path) as connection:  # every event filed into the read index
        (mark,) = connection.execute("SELECT order_id FROM photon_read_index_mark").fetchone()
        assert mark == connection.execute("SELECT max(order_id) FROM photon_events").fetchone()[0]
        entries = connection.execute("SELECT count(*) FROM photon_read_index").fetchone()[0]
        assert entries == 2 * connection.execute("SELECT count(*) FROM photon_events").fetchone()[0]
    caplog.set_level(logging.INFO, logger="photon.sqlite")
    with open_sqlite(path) as store:  # the second open finds nothing to do
        assert not [r for r in caplog.records if "upgraded" in r.getMessage()]
        assert [e.payload["n"] for e in store.read("__category__:cart")] == [0, 1, 2, 3]
        assert store.stream_version("orders-001") == 5
        new = store.append(
            [
                {"stream-name": "cart-1", "event-type": "Added", "payload": {"n": 10}},
                {"stream-name": "cart-9", "event-type": "Added", "payload": {"n": 11}},
            ]
        )
        assert [e.stream_version for e in new] == [2, 1]
        assert [e.payload["n"] for e in store.read("__category__:cart")] == [0, 1, 2, 3, 10, 11]
        assert [e.payload["n"] for e in store.read(event_types=["Added"])] == [0, 1, 2, 3, 10, 11]
        assert [e.payload["n"] for e in store.read("cart-1")] == [1, 10]
    with sqlite3.connect(path) as connection:
        numbers = dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams"))
    assert numbers["cart-9"] == max(number for _, _, number in rows) + 1  # numbering goes on after the old ones
    assert numbers["cart-1"] == dict((name, number) for name, _, number in rows)["cart-1"]


def test_the_upgrade_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.db"
    rows = make_old_store(path)
    caplog.set_level(logging.INFO, logger="photon.sqlite")
    with open_sqlite(path):
        pass
    (record,) = [r for r in caplog.records if "upgraded" in r.getMessage()]
    assert f"({len(rows)} streams)" in record.getMessage()


def test_a_reader_leaves_an_older_store_as_it_is_and_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_old_store(path)
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}, read_only=True) as store:
        assert [e.payload["n"] for e in store.read("cart-2")] == [2]
        assert [e.payload["n"] for e in store.read("__category__:cart")] == [0, 1, 2, 3]
        assert [e.payload["n"] for e in store.read(event_types=["Added"])] == [0, 1, 2, 3]
    assert "WITHOUT ROWID" not in streams_sql(path)
    with sqlite3.connect(path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"photon_events_category", "photon_events_type"} <= names


def test_backups_go_both_ways_between_an_older_store_and_a_new_one(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    make_old_store(old)
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(old)}, read_only=True) as store:
        data, original = backup_bytes(store), everything(store)
    with open_sqlite(tmp_path / "new.db") as target:
        restore(target, lambda: iter(data.splitlines(keepends=True)), batch_size=50)
        assert everything(target) == original
        again = backup_bytes(target)
    with open_sqlite(old) as upgraded:  # upgraded now, and restored into from the new store's backup
        assert everything(upgraded) == original
    other = tmp_path / "other-old.db"
    make_old_store(other)
    with sqlite3.connect(other) as connection:
        connection.execute("DELETE FROM photon_events")
        connection.execute("DELETE FROM photon_streams")
        connection.execute("DELETE FROM photon_checkpoints")
    with open_sqlite(other) as target:
        restore(target, lambda: iter(again.splitlines(keepends=True)), batch_size=50)
        assert everything(target) == original
        assert "WITHOUT ROWID" in streams_sql(other)


def test_an_upgrade_that_fails_leaves_the_older_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    rows = make_old_store(path)

    def fail(message: str, *_args: object) -> None:  # late in the upgrade, after the streams were copied
        if message.startswith("upgraded"):
            raise RuntimeError("the upgrade failed at its end")

    monkeypatch.setattr(sqlite_upgrade.log, "info", fail)
    with pytest.raises(Exception, match="failed at its end"):
        open_sqlite(path)
    assert "WITHOUT ROWID" not in streams_sql(path)
    with sqlite3.connect(path) as connection:
        assert sorted(connection.execute("SELECT stream_name, version, stream_id FROM photon_streams")) == rows
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "photon_streams_before_upgrade" not in names
    assert {"photon_streams_stream_id", "photon_events_category", "photon_events_type"} <= names


def test_the_upgrade_keeps_a_number_the_stream_index_no_longer_holds(tmp_path: Path) -> None:
    """In an older file, the highest-numbered stream's first events may be gone (truncated): its
    number is found only in the number's index, and kept by the upgrade that drops the index."""
    path = tmp_path / "old.db"
    rows = make_old_store(path)
    top, _, highest = max(rows, key=lambda row: row[2])
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM photon_events WHERE stream_name = ?", (top,))
    with open_sqlite(path) as store:
        store.append({"stream-name": "after-upgrade", "event-type": "Added", "payload": {}})
        assert [e.stream_name for e in store.read("after-upgrade")] == ["after-upgrade"]
        assert list(store.read(top)) == []
    with sqlite3.connect(path) as connection:
        numbers = dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams"))
    assert numbers["after-upgrade"] == highest + 1
