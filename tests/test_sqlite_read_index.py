"""SQLite's category and event-type index, filed by the writer in steps (`backends.sql.read_index`):
reads that straddle its mark (part from the index, part from the events past it) return what a
scan returns, through every read path; the steps, a restore and a writer's open keep the index
and its mark consistent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from photon_backends.sql import read_index

from photon.core.backend import Query
from photon.core.events import RecordedEvent, category_of
from photon.core.store import EventStore
from photon.ops.restore import restore

from .backup_support import backup_bytes

STEP = 25
STREAMS = ("cart-1", "cart-2", "shop-1", "carts-1", "cart", "shop-2")
TYPES = ("Added", "Removed", "Paid")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventStore]:
    monkeypatch.setattr(read_index, "EVERY", STEP)
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "store.db")}) as opened:
        yield opened


def fill(store: EventStore, count: int, per_commit: int = 7, start: int = 0) -> None:
    events = [
        {"stream-name": STREAMS[i % len(STREAMS)], "event-type": TYPES[(i // 2) % len(TYPES)], "payload": {"i": i}}
        for i in range(start, start + count)
    ]
    for at in range(0, len(events), per_commit):
        store.append(events[at : at + per_commit])


def mark_and_entries(path: Path) -> tuple[int, int, int, int]:
    """The stored mark, the entries of the index, the events up to the mark and the entries past it."""
    with sqlite3.connect(path) as connection:
        row = connection.execute("SELECT order_id FROM photon_read_index_mark WHERE id = 0").fetchone()
        mark = row[0] if row else 0
        entries = connection.execute("SELECT count(*) FROM photon_read_index").fetchone()[0]
        filed = connection.execute("SELECT count(*) FROM photon_events WHERE order_id <= ?", (mark,)).fetchone()[0]
        past = connection.execute("SELECT count(*) FROM photon_read_index WHERE order_id > ?", (mark,)).fetchone()[0]
    return mark, entries, filed, past


def paged(store: EventStore, query: Query, page: int) -> list[RecordedEvent]:
    found: list[RecordedEvent] = []
    position = query.from_order_id
    while True:
        events = store.backend.read(
            Query(
                from_order_id=position,
                to_order_id=query.to_order_id,
                from_time=query.from_time,
                event_types=query.event_types,
                categories=query.categories,
                limit=page,
            )
        )
        found += events
        if len(events) < page:
            return found
        position = events[-1].order_id + 1


def test_the_writer_files_the_events_every_step_in_the_append_that_reaches_it(
    store: EventStore, tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    opened_at = mark_and_entries(path)[0]
    store.append([{"stream-name": "cart-1", "event-type": "Added", "payload": {}}] * (STEP - 1))
    assert mark_and_entries(path)[0] == opened_at  # not yet a step's worth
    (last,) = store.append({"stream-name": "shop-1", "event-type": "Paid", "payload": {}})
    mark, entries, filed, past = mark_and_entries(path)
    assert mark == last.order_id and past == 0
    assert entries == 2 * filed  # each event: its category and its type


def test_reads_that_straddle_the_mark_return_what_a_scan_returns(store: EventStore, tmp_path: Path) -> None:
    fill(store, 200)
    mark = mark_and_entries(tmp_path / "store.db")[0]
    everything = list(store.read())
    last = everything[-1].order_id
    assert 0 < mark < last  # some events filed, some past the mark
    middle = everything[len(everything) // 2]

    def scan(keep: object, low: int = 1, high: int | None = None, since: int = 0) -> list[RecordedEvent]:
        assert callable(keep)
        return [
            e
            for e in everything
            if keep(e) and low <= e.order_id and (high is None or e.order_id <= high) and e.event_time >= since
        ]

    def in_cart(e: RecordedEvent) -> bool:
        return category_of(e.stream_name) == "cart"

    cases = [
        (Query(categories=frozenset({"cart"})), in_cart),
        (Query(categories=frozenset({"cart", "shop"})), lambda e: category_of(e.stream_name) in {"cart", "shop"}),
        (Query(event_types=frozenset({"Paid"})), lambda e: e.event_type == "Paid"),
        (Query(event_types=frozenset({"Paid", "Added"})), lambda e: e.event_type in {"Paid", "Added"}),
        (
            Query(categories=frozenset({"cart"}), event_types=frozenset({"Removed"})),
            lambda e: in_cart(e) and e.event_type == "Removed",
        ),
        (Query(categories=frozenset({"nothing"})), lambda e: False),
    ]
    for query, keep in cases:
        expected = scan(keep)
        assert any(e.order_id <= mark for e in expected) or not expected
        assert any(e.order_id > mark for e in expected) or not expected
        for page in (1, 4, 1000):
            assert paged(store, query, page) == expected, (query, page)
        for low, high in ((mark - 3, mark + 3), (mark + 1, None), (1, mark), (middle.order_id, None)):
            ranged = Query(
                from_order_id=low, to_order_id=high, event_types=query.event_types, categories=query.categories
            )
            assert paged(store, ranged, 3) == scan(keep, low, high), (query, low, high)
        timed = Query(from_time=middle.event_time, event_types=query.event_types, categories=query.categories)
        assert paged(store, timed, 5) == scan(keep, since=middle.event_time)
        whole = Query(event_types=query.event_types, categories=query.categories, limit=10_000)
        data = store.backend.read_data(whole)
        assert data == [(e.order_id, e.data) for e in expected]
        array = store.backend.read_data_array(whole)
        if expected:
            assert array == (len(expected), expected[-1].order_id, b"[" + b",".join(e.data for e in expected) + b"]")
        else:
            assert array is None
    # Through the core: a category stream and an event-type read.
    assert list(store.read("__category__:cart")) == scan(in_cart)
    assert list(store.read(event_types=["Paid"])) == scan(lambda e: e.event_type == "Paid")


def test_a_writer_files_the_rest_when_it_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_index, "EVERY", 1_000)
    path = tmp_path / "store.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        fill(store, 60)
        mark, _, _, _ = mark_and_entries(path)
        assert mark < store.last_order_id()
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        mark, entries, filed, past = mark_and_entries(path)
        assert mark == store.last_order_id() and entries == 2 * filed and past == 0
        assert len(list(store.read("__category__:shop"))) == 20


def test_a_restore_files_every_event_it_loads(store: EventStore, tmp_path: Path) -> None:
    fill(store, 120)
    store.delete_stream("cart-2", hard=True)
    data = backup_bytes(store)
    target_path = tmp_path / "target.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(target_path)}) as target:
        restore(target, lambda: iter(data.splitlines(keepends=True)), batch_size=30)
        mark, entries, filed, past = mark_and_entries(target_path)
        assert mark == target.last_order_id() and entries == 2 * filed and past == 0
        assert list(target.read("__category__:cart")) == list(store.read("__category__:cart"))
        assert list(target.read(event_types=["Paid"])) == list(store.read(event_types=["Paid"]))
        target.append([{"stream-name": "shop-3", "event-type": "Paid", "payload": {}}] * 40)  # steps go on
        assert list(target.read("__category__:shop")) == [
            e for e in target.read() if category_of(e.stream_name) == "shop"
        ]


def entries_without_events(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(
            connection.execute(
                "SELECT count(*) FROM photon_read_index i WHERE NOT EXISTS"
                " (SELECT 1 FROM photon_events e WHERE e.order_id = i.order_id)"
            ).fetchone()[0]
        )


def test_events_removed_after_they_were_filed_take_their_entries_with_them(store: EventStore, tmp_path: Path) -> None:
    fill(store, 300)
    path = tmp_path / "store.db"
    assert mark_and_entries(path)[0] > 200  # most of them filed
    store.delete_stream("cart-1", hard=True)
    store.set_stream_metadata("shop-1", {"max-count": 3})
    store.set_stream_metadata("cart-2", {"truncate-before": 20})
    assert store.scavenge().removed > 0
    assert entries_without_events(path) == 0  # a removed event's entries go with it
    _, entries, filed, _ = mark_and_entries(path)
    assert entries == 2 * filed
    assert [e for e in store.read("__category__:cart") if e.stream_name == "cart-1"] == []
    assert list(store.read("__category__:cart")) == [e for e in store.read() if category_of(e.stream_name) == "cart"]
    assert list(store.read(event_types=["Paid"])) == [e for e in store.read() if e.event_type == "Paid"]


def test_the_raw_floor_of_batched_appends_files_the_same_entries(tmp_path: Path) -> None:
    from benchmarks import core, es_floor

    path = tmp_path / "photon.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as photon:
        for start in range(0, 2500, 1000):
            fill(photon, 1000, per_commit=1000, start=start)
    rows = es_floor.stored_rows(path)
    core.raw_batched(tmp_path / "raw.db", rows)
    entries = "SELECT kind, name, order_id FROM photon_read_index ORDER BY 1, 2, 3"
    with sqlite3.connect(path) as ours, sqlite3.connect(tmp_path / "raw.db") as raw:
        assert raw.execute(entries).fetchall() == ours.execute(entries).fetchall() != []
    assert mark_and_entries(tmp_path / "raw.db")[0] == mark_and_entries(path)[0]
