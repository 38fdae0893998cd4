"""Page reads of many streams on PostgreSQL that come in chunks of rows (psycopg over libpq 17+):
they end at their byte bound in the client, exactly where the statement's running sum ended them,
and leave the kept connection usable whether the rest of the result was drained or cancelled."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from photon_backends.sql import postgres, reads
from photon_backends.sql.reads import take_chunked_events, take_events

from photon.core.backend import Query
from photon.core.events import RecordedEvent
from photon.core.store import EventStore

pytestmark = pytest.mark.postgres

EVENTS = 700
"""Events of the category `c`, beside as many of other streams: more than DRAIN_ROWS past any early end."""


def _row(order_id: int, size: int) -> tuple[Any, ...]:
    return (order_id, "s-1", order_id, f"id{order_id}", "T", 0, b"x" * size)


def test_chunked_pages_end_where_row_by_row_pages_end() -> None:
    rng = random.Random(7)
    rows = [_row(i + 1, rng.choice([10, 100, 1000, 5000])) for i in range(450)]
    total = sum(len(r[6]) for r in rows)
    for bound in [1, 10, 11, 999, 5000, 20_000, 100_000, total - 1, total, total + 1, 10 * total]:
        chunks = [rows[i : i + postgres.CHUNK_ROWS] for i in range(0, len(rows), postgres.CHUNK_ROWS)]
        assert take_chunked_events(iter(chunks), bound) == take_events(iter(rows), bound), bound
    assert take_chunked_events([], 100) == []


@pytest.fixture
def store(postgres_database: str) -> Iterator[EventStore]:
    rng = random.Random(11)
    with EventStore.open({"db.backend": "postgres", "postgres.url": postgres_database}) as opened:
        batch = []
        for i in range(EVENTS):
            batch.append({"stream-name": f"c-{i % 7}", "event-type": "T", "payload": {"pad": "x" * rng.randrange(300)}})
            batch.append({"stream-name": f"other-{i}", "event-type": "U", "payload": {}})
        opened.append(batch)
        yield opened


def _expected(events: list[RecordedEvent], max_bytes: int) -> list[RecordedEvent]:
    return take_events(events, max_bytes)


def test_category_pages_by_bytes_in_chunks(store: EventStore) -> None:
    backend: Any = store.backend
    if not postgres.hands_out_chunks("psycopg"):
        pytest.skip("psycopg here has no chunked rows mode (libpq before 17)")
    assert backend._streams_pages
    query = Query(categories=frozenset({"c"}), limit=600, max_bytes=1)
    assert " OVER " not in backend._read_sql(query).sql  # no running sum in the statement
    everything = backend.read(Query(categories=frozenset({"c"}), limit=600))
    assert len(everything) == 600
    sizes = [len(e.data) for e in everything]
    ends = {
        "first event": 1,
        "first chunk, the rest cancelled": sum(sizes[:50]),
        "a chunk's last event": sum(sizes[:100]),
        "near the end, the rest drained": sum(sizes[:550]) + 1,
        "the last event": sum(sizes),
        "past the end": sum(sizes) + 1000,
    }
    for what, max_bytes in ends.items():
        page = backend.read(Query(categories=frozenset({"c"}), limit=600, max_bytes=max_bytes))
        assert page == _expected(everything, max_bytes), what
        # The kept connection serves the next read: nothing of the last result is left on it.
        assert backend.read(Query(categories=frozenset({"c"}), limit=3)) == everything[:3], what
    assert [e.order_id for e in store.read("__category__:c", limit=EVENTS)] == [2 * i + 1 for i in range(EVENTS)]


def test_without_chunks_the_statement_ends_the_page(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    backend: Any = store.backend
    everything = backend.read(Query(categories=frozenset({"c"}), limit=600))
    monkeypatch.setattr(postgres, "hands_out_chunks", lambda driver: False)
    monkeypatch.setattr(reads, "hands_out_chunks", lambda driver: False)
    query = Query(categories=frozenset({"c"}), limit=600, max_bytes=sum(len(e.data) for e in everything[:50]))
    assert " OVER " in backend._read_sql(query).sql
    assert backend.read(query) == _expected(everything, query.max_bytes or 0)


def test_a_page_comes_in_chunks_made_in_one_step_with_the_collector_paused(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk reaches the reader as one list (no step a row), and the cycle collector waits
    while the page's events are made; it runs again after the read."""
    import gc

    if not postgres.hands_out_chunks("psycopg"):
        pytest.skip("psycopg here has no chunked rows mode (libpq before 17)")
    backend: Any = store.backend
    seen: list[tuple[int, bool]] = []
    take = reads.take_chunked_events

    def spy(chunks: Any, max_bytes: int) -> list[RecordedEvent]:
        def noted() -> Iterator[list[Any]]:
            for chunk in chunks:
                assert isinstance(chunk, list)
                seen.append((len(chunk), gc.isenabled()))
                yield chunk

        return take(noted(), max_bytes)

    monkeypatch.setattr(reads, "take_chunked_events", spy)
    assert gc.isenabled()
    page = backend.read(Query(categories=frozenset({"c"}), limit=650, max_bytes=10**9))
    assert len(page) == 650 and all(type(e) is RecordedEvent for e in page)
    assert [size for size, _ in seen] == [postgres.CHUNK_ROWS] * 6 + [50]
    assert not any(enabled for _, enabled in seen)
    assert gc.isenabled()


def test_a_page_left_early_loads_one_chunk(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that ends in its first chunk loads that chunk only: the rows after it are drained
    or cancelled by the cursor, and the connection serves the next read."""
    from photon_backends.sql.chunk_cursor import ChunkCursor

    if not postgres.hands_out_chunks("psycopg"):
        pytest.skip("psycopg here has no chunked rows mode (libpq before 17)")
    backend: Any = store.backend
    first = backend.read(Query(categories=frozenset({"c"}), limit=3))
    loaded: list[int] = []
    chunks = ChunkCursor.chunks

    def counting(self: Any, *args: Any) -> Iterator[list[Any]]:
        for chunk in chunks(self, *args):
            loaded.append(len(chunk))
            yield chunk

    monkeypatch.setattr(ChunkCursor, "chunks", counting)
    page = backend.read(Query(categories=frozenset({"c"}), limit=600, max_bytes=1))
    assert len(page) == 1
    assert loaded == [postgres.CHUNK_ROWS]  # one chunk loaded; the next two drained, the rest cancelled
    assert page == first[:1]
    assert backend.read(Query(categories=frozenset({"c"}), limit=3)) == first
