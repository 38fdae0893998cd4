"""A stream's pages on PostgreSQL: the stream's version comes in a row of its own before the
events (not as a last column of every row), and the kept read connections run every read on one
cursor each. The reads return what the statement with the version on every row returned."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from photon_backends.sql.reads import split_last_version

from photon.core.backend import Query
from photon.core.errors import BackendError
from photon.core.store import EventStore

pytestmark = pytest.mark.postgres

LONG = 700
"""Events of the long stream: more than one statement's blocks of versions (9 x 64)."""


def _event_row(order_id: int) -> tuple[Any, ...]:
    return (order_id, "s-1", order_id, f"id{order_id}", "T", 0, b"{}")


def test_the_version_row_is_taken_out_wherever_it_comes() -> None:
    version = (None, None, 9, None, None, None, None)
    events = [_event_row(i) for i in range(1, 4)]
    for at in range(len(events) + 1):
        rows = [*events[:at], version, *events[at:]]
        assert split_last_version(rows) == 9
        assert rows == events, at
    alone = [version]
    assert split_last_version(alone) == 9
    assert alone == []
    assert split_last_version([]) is None  # no such stream
    with pytest.raises(BackendError, match="version row"):
        split_last_version(list(events))


@pytest.fixture
def store(postgres_database: str) -> Iterator[EventStore]:
    rng = random.Random(5)
    with EventStore.open({"db.backend": "postgres", "postgres.url": postgres_database}) as opened:
        types = ["T", "U", "T"]
        opened.append(
            [
                {"stream-name": f"s-{i % 2}", "event-type": types[i % 3], "payload": {"p": "x" * rng.randrange(200)}}
                for i in range(2 * LONG)
            ]
        )
        yield opened


def test_a_stream_statement_gives_the_version_once(store: EventStore) -> None:
    backend: Any = store.backend
    query = Query(stream="s-0", limit=1000, max_bytes=10**9)
    statement = backend._read_sql(query)
    values = {"stream": "s-0", "from_order_id": 1, "from_version": 1, "limit": 1000, "max_bytes": 10**9}
    values.update({f"b{i}": i for i in range(9)})
    connection = backend._engine.raw_connection()
    try:
        cursor = connection.driver_connection.cursor()
        cursor.execute(statement.sql, statement.bind(values), binary=True)
        rows = cursor.fetchall()
    finally:
        connection.close()
    assert rows[0] == (None, None, LONG, None, None, None, None)
    assert {len(row) for row in rows[1:]} == {7}  # a RecordedEvent's columns, nothing more
    assert [row[2] for row in rows[1:]] == list(range(1, 9 * 64))


def _queries() -> list[Query]:
    sizes = [1, 5_000, 40_000, 10**9]
    queries = [Query(stream="s-0", limit=limit) for limit in (1, 64, 200, 576, 577, 1000)]
    queries += [Query(stream="s-1", from_version=v, limit=1000) for v in (1, 63, 64, 575, 576, 600, LONG, LONG + 1)]
    queries += [Query(stream="s-0", limit=1000, max_bytes=size) for size in sizes]
    queries += [Query(stream="s-0", from_version=500, limit=300, max_bytes=size) for size in sizes]
    queries += [Query(stream="s-1", event_types=frozenset({"U"}), limit=limit) for limit in (1, 100, 1000)]
    queries += [Query(stream="s-0", from_order_id=900, limit=1000), Query(stream="s-0", to_order_id=100)]
    queries += [Query(stream="nothing", limit=1000), Query(stream="s-0", event_types=frozenset({"V"}))]
    return queries


def test_stream_reads_return_what_the_version_column_returned(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend: Any = store.backend
    assert backend._version_row
    with_row = [backend.read(query) for query in _queries()]
    monkeypatch.setattr(type(backend), "_version_row", property(lambda self: False))
    with_column = [backend.read(query) for query in _queries()]
    assert with_row == with_column
    assert len(with_row[5]) == LONG  # the whole of a stream longer than a statement's blocks
    assert with_row[-2] == []
    assert [e.stream_version for e in store.read("s-1", from_version=600)] == list(range(600, LONG + 1))


def test_a_kept_connection_runs_its_reads_on_one_cursor(store: EventStore, postgres_server: Any) -> None:
    import psycopg

    backend: Any = store.backend
    first = list(store.read("s-0"))
    (connection,) = backend._kept_readers._idle
    cursor = connection.info["photon.read_cursor"]
    assert list(store.read("s-0")) == first
    assert backend._kept_readers._idle == [connection]
    assert connection.info["photon.read_cursor"] is cursor
    # The server ends the kept connection: the next read runs on a fresh one, with its own cursor.
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        pid = connection.driver_connection.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert list(store.read("s-0")) == first
    (again,) = backend._kept_readers._idle
    assert again.info["photon.read_cursor"] is not cursor
