"""The growth benchmark's floor does the database work Photon does: the same rows and stream
versions end up in its copy of the store, and its stream read finds the same events."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.growth_floor import PostgresFloor, SQLiteFloor
from photon.core.store import EventStore

EVENT_COLUMNS = "order_id, stream_name, stream_version, event_id, event_type, event_time, data, stream_id"


def batch(start: int, size: int) -> list[dict[str, Any]]:
    return [{"stream-name": f"s-{i % 7}", "event-type": "t", "payload": {"i": i}} for i in range(start, start + size)]


def test_sqlite_floor_writes_what_photon_wrote(tmp_path: Path) -> None:
    path = tmp_path / "bench.db"
    config = {"db.backend": "sqlite", "sqlite.path": str(path), "sqlite.synchronous": "FULL"}
    with EventStore.open(config) as store:
        store.append(batch(0, 50))
        store.append([{"stream-name": "probe", "event-type": "t", "payload": {}} for _ in range(5)])
    floor = SQLiteFloor(str(path))
    floor.start_appends()
    try:
        with EventStore.open(config) as store:
            for start in (50, 80):
                first = store.last_order_id() + 1
                store.append([*batch(start, 30), {"stream-name": "new-one", "event-type": "t", "payload": {}}])
                wall, cpu = floor.append_like(first, store.last_order_id())
                assert wall > 0 and cpu >= 0
            seconds, _, rows = floor.read_stream("probe")
            assert rows == len(list(store.read("probe"))) == 5 and seconds > 0
            # The catch-up's pages of __all__: every event from the order-id to the head, whatever the page size.
            for page in (512, 7, 1000):
                assert floor.read_all(40, store.last_order_id(), page)[2] == len(list(store.read(from_order_id=40)))
        tables = {
            "events": f"SELECT {EVENT_COLUMNS} FROM photon_events ORDER BY order_id",
            "streams": "SELECT stream_name, version, stream_id FROM photon_streams ORDER BY stream_name",
        }
        photon, copy = sqlite3.connect(path), sqlite3.connect(floor.copy)
        for sql in tables.values():
            assert copy.execute(sql).fetchall() == photon.execute(sql).fetchall()
        assert photon.execute("SELECT version FROM photon_streams WHERE stream_name = 'new-one'").fetchone() == (2,)
        photon.close()
        copy.close()
    finally:
        floor.close()
    assert not Path(floor.copy).exists()


@pytest.fixture
def database(postgres_server: Any) -> Iterator[str]:
    import psycopg

    name = f"photon_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.dsn.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP DATABASE IF EXISTS "{name}_floor" WITH (FORCE)')


def test_postgres_floor_writes_what_photon_wrote(database: str) -> None:
    import psycopg

    config = {"db.backend": "postgres", "postgres.url": database}
    with EventStore.open(config) as store:
        store.append(batch(0, 40))
    floor = PostgresFloor(database)
    assert floor.settle_store() > 0
    with psycopg.connect(database) as connection:
        vacuumed = connection.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"
        ).fetchall()
    assert {"photon_events", "photon_streams"} <= {name for (name,) in vacuumed}
    floor.start_appends()
    try:
        with EventStore.open(config) as store:
            first = store.last_order_id() + 1
            store.append(batch(40, 30))
            floor.append_like(first, store.last_order_id())
            _, _, rows = floor.read_stream("s-1")
            assert rows == len(list(store.read("s-1"))) == 10
            for page in (1000, 7):
                assert floor.read_all(30, store.last_order_id(), page)[2] == len(list(store.read(from_order_id=30)))
        copy_url = database.rsplit("/", 1)[0] + "/" + floor.copy_name
        queries = [
            f"SELECT {EVENT_COLUMNS} FROM photon_events ORDER BY order_id",
            "SELECT stream_name, version, stream_id FROM photon_streams ORDER BY stream_name",
        ]
        with psycopg.connect(database) as photon, psycopg.connect(copy_url) as copy:
            for sql in queries:
                assert copy.execute(sql).fetchall() == photon.execute(sql).fetchall()
    finally:
        floor.close()
