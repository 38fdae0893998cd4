"""The kept PostgreSQL read connections run their statements prepared from the first run: the
pages that come in chunks (which psycopg's own `stream` never prepares) and the plain reads
(which psycopg prepares only at the fifth run). Each kept connection keeps one chunk cursor, the
connection's limit of prepared statements holds for the chunked ones too, and a connection on
which preparing is switched off is not prepared on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from photon_backends.sql import postgres

from photon.core.backend import Query
from photon.core.store import EventStore

pytestmark = pytest.mark.postgres

EVENTS = 300
"""Events of the category `c` (more than a chunk, so its pages of more than CHUNK_ROWS come in chunks)."""


@pytest.fixture
def store(postgres_database: str) -> Iterator[EventStore]:
    if not postgres.hands_out_chunks("psycopg"):
        pytest.skip("psycopg here has no chunked rows mode (libpq before 17)")
    with EventStore.open({"db.backend": "postgres", "postgres.url": postgres_database}) as opened:
        batch = []
        for i in range(EVENTS):
            batch.append({"stream-name": f"c-{i % 3}", "event-type": "T", "payload": {"i": i}})
            batch.append({"stream-name": f"other-{i % 5}", "event-type": "U", "payload": {}})
        opened.append(batch)
        yield opened


def _kept(store: EventStore) -> Any:
    backend: Any = store.backend
    (connection,) = backend._kept_readers._idle
    return connection


def _prepared(store: EventStore) -> dict[str, int]:
    """The kept connection's prepared statements: statement text -> times run (custom and generic plans)."""
    rows = (
        _kept(store)
        .driver_connection.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements", prepare=False
        )
        .fetchall()
    )
    return {statement: runs for statement, runs in rows}


def _category_page(store: EventStore, categories: frozenset[str] = frozenset({"c"})) -> list[Any]:
    backend: Any = store.backend
    return list(backend.read(Query(categories=categories, limit=250, max_bytes=10**9)))


def test_a_chunked_page_is_prepared_at_its_first_read(store: EventStore) -> None:
    first = _category_page(store)
    assert len(first) == 250 and all(event.stream_name.startswith("c-") for event in first)
    prepared = {sql: runs for sql, runs in _prepared(store).items() if "split_part" in sql}
    assert list(prepared.values()) == [1]  # the first read ran it prepared
    assert _category_page(store) == first
    assert [runs for sql, runs in _prepared(store).items() if "split_part" in sql] == [2]  # the same statement again


def test_a_stream_read_is_prepared_at_its_first_read(store: EventStore) -> None:
    events = list(store.read("c-1"))
    assert [e.stream_version for e in events] == list(range(1, EVENTS // 3 + 1))
    prepared = {sql: runs for sql, runs in _prepared(store).items() if "UNION ALL" in sql}
    assert prepared and set(prepared.values()) == {1}  # each statement of the read ran prepared
    assert list(store.read("c-1")) == events
    again = {sql: runs for sql, runs in _prepared(store).items() if "UNION ALL" in sql}
    assert set(again) == set(prepared) and max(again.values()) == 2  # run again as prepared


def test_a_kept_connection_keeps_its_chunk_cursor(store: EventStore) -> None:
    first = _category_page(store)
    cursor = _kept(store).info["photon.read_chunk_cursor"]
    assert _category_page(store) == first
    assert _kept(store).info["photon.read_chunk_cursor"] is cursor
    assert not cursor.closed


def test_the_connections_limit_of_prepared_statements_holds_for_chunked_pages(store: EventStore) -> None:
    expected = {
        shape: _category_page(store, categories)
        for shape, categories in [("one", frozenset({"c"})), ("two", frozenset({"c", "other"}))]
    }
    backend: Any = store.backend
    by_type = list(backend.read(Query(event_types=frozenset({"U"}), limit=250, max_bytes=10**9)))
    connection = _kept(store).driver_connection
    connection.prepared_max = 1
    connection.execute("DEALLOCATE ALL", prepare=False)  # psycopg's cache forgets them too
    for _ in range(2):
        assert _category_page(store) == expected["one"]
        assert _category_page(store, frozenset({"c", "other"})) == expected["two"]
        assert list(backend.read(Query(event_types=frozenset({"U"}), limit=250, max_bytes=10**9))) == by_type
    # Statements past the limit are deallocated before the next statement runs: one is left,
    # and one more at most waiting for the connection's next statement.
    assert 1 <= len(_prepared(store)) <= 2


def test_a_connection_that_does_not_prepare_is_not_prepared_on(store: EventStore) -> None:
    first = _category_page(store)
    stream = list(store.read("c-2"))
    connection = _kept(store).driver_connection
    connection.execute("DEALLOCATE ALL", prepare=False)
    connection.prepare_threshold = None
    assert _category_page(store) == first
    assert list(store.read("c-2")) == stream
    assert _prepared(store) == {}
