"""The kept PostgreSQL read connections run their statements prepared from the first run: the
pages that come in chunks (which psycopg's own `stream` never prepares) and the plain reads
(which psycopg prepares only at the fifth run). Each kept connection keeps one chunk cursor, which
prepares a bounded number of statements, and a connection on which preparing is switched off is
not prepared on."""

from __future__ import annotations

import dataclasses
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


def _prepared(store: EventStore) -> dict[str, tuple[str, int]]:
    """The kept connection's prepared statements: name -> (statement text, times run)."""
    rows = (
        _kept(store)
        .driver_connection.execute(
            "SELECT name, statement, generic_plans + custom_plans FROM pg_prepared_statements", prepare=False
        )
        .fetchall()
    )
    return {name: (statement, runs) for name, statement, runs in rows}


def _chunked(store: EventStore) -> dict[str, int]:
    """The prepared statements of the pages read in chunks: name -> times run."""
    return {name: runs for name, (_, runs) in _prepared(store).items() if name.startswith("photon_chunks_")}


def _category_page(store: EventStore, categories: frozenset[str] = frozenset({"c"})) -> list[Any]:
    backend: Any = store.backend
    return list(backend.read(Query(categories=categories, limit=250, max_bytes=10**9)))


def test_a_chunked_page_is_prepared_at_its_first_read(store: EventStore) -> None:
    first = _category_page(store)
    assert len(first) == 250 and all(event.stream_name.startswith("c-") for event in first)
    (name,) = _chunked(store)
    assert "split_part" in _prepared(store)[name][0]
    assert _chunked(store) == {name: 1}  # the first read ran it prepared
    assert _category_page(store) == first
    assert _chunked(store) == {name: 2}  # the same statement again


def test_a_stream_read_is_prepared_at_its_first_read(store: EventStore) -> None:
    events = list(store.read("c-1"))
    assert [e.stream_version for e in events] == list(range(1, EVENTS // 3 + 1))
    prepared = {name: runs for name, (sql, runs) in _prepared(store).items() if "UNION ALL" in sql}
    assert prepared and set(prepared.values()) == {1}  # each statement of the read ran prepared
    assert list(store.read("c-1")) == events
    again = {name: runs for name, (sql, runs) in _prepared(store).items() if "UNION ALL" in sql}
    assert set(again) == set(prepared) and max(again.values()) == 2  # run again as prepared


def test_a_kept_connection_keeps_its_chunk_cursor(store: EventStore) -> None:
    first = _category_page(store)
    cursor = _kept(store).info["photon.read_chunk_cursor"]
    assert _category_page(store) == first
    assert _kept(store).info["photon.read_chunk_cursor"] is cursor
    assert not cursor.closed


def test_past_its_limit_a_connection_runs_chunked_pages_unprepared(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photon_backends.sql import chunk_cursor

    monkeypatch.setattr(chunk_cursor, "MAX_PREPARED", 1)
    backend: Any = store.backend
    shapes = {
        "one category": Query(categories=frozenset({"c"}), limit=250, max_bytes=10**9),
        "two categories": Query(categories=frozenset({"c", "other"}), limit=250, max_bytes=10**9),
        "an event type": Query(event_types=frozenset({"U"}), limit=250, max_bytes=10**9),
    }
    expected = {what: list(backend.read(dataclasses.replace(query, max_bytes=None))) for what, query in shapes.items()}
    for _ in range(2):
        for what, query in shapes.items():
            assert list(backend.read(query)) == expected[what], what
    # The first shape prepared, run twice; the others ran unprepared.
    assert list(_chunked(store).values()) == [2]


def test_a_connection_that_does_not_prepare_is_not_prepared_on(store: EventStore) -> None:
    stream = list(store.read("c-2"))
    connection = _kept(store).driver_connection
    connection.execute("DEALLOCATE ALL", prepare=False)  # psycopg's cache forgets them too
    connection.prepare_threshold = None
    first = _category_page(store)
    assert len(first) == 250
    assert _category_page(store) == first
    assert list(store.read("c-2")) == stream
    assert _prepared(store) == {}
