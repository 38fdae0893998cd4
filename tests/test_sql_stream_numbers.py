"""The SQL backends number streams: a bounded cache of the numbers, which, when it is full and
starts again, keeps every stream's number of a batch mixing streams already numbered with new
ones (a growth run with a million streams failed here: "append failed: 'probe-stream'"); and the
highest number given, found again by the next writer without an index on the numbers, so that
no number is ever given to two streams (truncations and restores that leave a stream without
its first block of versions included; killed writers: tests/test_crash_stream_numbers.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import photon_backends.sql.stream_numbers as sql
import pytest

from photon.core.store import EventStore
from photon.ops.restore import restore

from .backup_support import backup_bytes


def test_a_full_stream_number_cache_loses_no_stream_of_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "STREAM_IDS_KEPT", 3)
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db")}) as store:
        for round_ in range(6):
            # "kept" is known after the first round; each round brings 3 new streams, so the
            # cache passes its bound while "kept" is in it.
            batch = [{"stream-name": "kept", "event-type": "t", "payload": {"r": round_}}]
            batch += [{"stream-name": f"new-{round_}-{i}", "event-type": "t", "payload": {}} for i in range(3)]
            store.append(batch)
        kept = list(store.read("kept"))
        assert [e.stream_version for e in kept] == list(range(1, 7))
        assert len({e.stream_name for e in store.read()}) == 1 + 6 * 3
        assert store.stream_version("new-5-2") == 1


def test_an_append_looks_its_streams_up_once_on_the_writers_connection(tmp_path: Path) -> None:
    """The committer's look-up of the versions also gives the append the streams' numbers: one
    statement on the streams table per append, known and new streams alike, and every stream
    keeps its number (its events are found through it)."""
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db")}) as store:
        store.append([{"stream-name": "known", "event-type": "t", "payload": {}}])
        store.backend._stream_ids.clear()  # type: ignore[attr-defined]  # as after a restart
        store.backend._last_stream_id = None  # type: ignore[attr-defined]
        assert store._committer is not None
        store._committer.forget_versions()
        statements: list[str] = []
        store.backend._writer.driver_connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        store.append(
            [{"stream-name": name, "event-type": "t", "payload": {}} for name in ("known", "new-1", "new-2")],
            expected_versions={"known": 1, "new-1": "no-stream", "new-2": "no-stream"},
        )
        store.backend._writer.driver_connection.set_trace_callback(None)  # type: ignore[attr-defined]
        looked_up = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "photon_streams" in s]
        assert len(looked_up) == 1, statements
        assert [store.stream_version(name) for name in ("known", "new-1", "new-2")] == [2, 1, 1]
        assert [e.stream_version for e in store.read("known")] == [1, 2]
        assert [e.stream_name for e in store.read("new-2")] == ["new-2"]


def sqlite(path: Path) -> EventStore:
    return EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)})


def numbers(path: Path) -> dict[str, int]:
    """Each stream's number (the row that keeps a number is not a stream's)."""
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams WHERE stream_name != ''"))


def numbers_right(path: Path) -> None:
    """No two streams share a number, and every event carries its own stream's."""
    found = numbers(path)
    assert len(set(found.values())) == len(found)
    with sqlite3.connect(path) as connection:
        wrong = connection.execute(
            "SELECT count(*) FROM photon_events e JOIN photon_streams s ON s.stream_name = e.stream_name"
            " WHERE s.stream_id != e.stream_id"
        ).fetchone()
        orphans = connection.execute(
            "SELECT count(*) FROM photon_events e WHERE NOT EXISTS"
            " (SELECT 1 FROM photon_streams s WHERE s.stream_name = e.stream_name)"
        ).fetchone()
    assert wrong == orphans == (0,)


def internal_streams_first(store: EventStore, stream: str, truncate_before: int) -> None:
    """Set `stream`'s truncation before it exists, with __metadata__ and __config__ (where a
    scavenge that removed events reports) numbered before it: it will be the highest-numbered."""
    store.append([{"stream-name": "a", "event-type": "t", "payload": {}}] * 2)
    store.set_stream_metadata("a", {"truncate-before": 2})
    store.set_stream_metadata(stream, {"truncate-before": truncate_before})
    assert store.scavenge().removed == 1
    assert {"__metadata__", "__config__"} <= numbers_of(store)


def numbers_of(store: EventStore) -> set[str]:
    return {info.stream_name for info in store.streams()}


def test_the_highest_number_is_found_without_an_index_on_the_numbers(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite(path) as store:
        store.append([{"stream-name": f"s-{i}", "event-type": "t", "payload": {}} for i in range(5)])
    with sqlite3.connect(path) as connection:
        indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "photon_streams_stream_id" not in indexes
    with sqlite(path) as store:
        store.append({"stream-name": "next", "event-type": "t", "payload": {}})
    assert numbers(path)["next"] == max(numbers(path)[f"s-{i}"] for i in range(5)) + 1
    numbers_right(path)


def test_a_truncated_streams_number_is_not_given_again_after_a_restart(tmp_path: Path) -> None:
    """The highest-numbered stream loses its first block of versions: the next writer would not
    find its number in the stream index; the truncation kept it."""
    path = tmp_path / "s.db"
    with sqlite(path) as store:
        internal_streams_first(store, "top", 6)
        store.append([{"stream-name": "top", "event-type": "t", "payload": {"n": n}} for n in range(5)])
        assert max(numbers(path), key=numbers(path).__getitem__) == "top"
        store.scavenge()
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT count(*) FROM photon_events WHERE stream_name = 'top'").fetchone() == (0,)
    with sqlite(path) as store:
        store.append({"stream-name": "fresh", "event-type": "t", "payload": {"n": "fresh"}})
        store.append({"stream-name": "top", "event-type": "t", "payload": {"n": 5}})
        assert [(e.stream_version, e.payload) for e in store.read("top")] == [(6, {"n": 5})]
        assert [e.payload for e in store.read("fresh")] == [{"n": "fresh"}]
    assert numbers(path)["fresh"] > numbers(path)["top"]
    numbers_right(path)


def test_a_restored_stream_that_starts_past_its_first_block_keeps_its_number(tmp_path: Path) -> None:
    """A restore writes a truncated stream from its first kept version (here 70, block 1)."""
    source = tmp_path / "source.db"
    with sqlite(source) as store:
        internal_streams_first(store, "long", 70)
        store.append([{"stream-name": "long", "event-type": "t", "payload": {"n": n}} for n in range(1, 76)])
        store.scavenge()
        data = backup_bytes(store)
    target = tmp_path / "target.db"
    with sqlite(target) as store:
        restore(store, lambda: iter(data.splitlines(keepends=True)), batch_size=50)
        assert [e.stream_version for e in store.read("long")] == list(range(70, 76))
    assert max(numbers(target), key=numbers(target).__getitem__) == "long"
    with sqlite(target) as store:
        store.append({"stream-name": "fresh", "event-type": "t", "payload": {}})
        assert [e.stream_version for e in store.read("long")] == list(range(70, 76))
        assert [e.stream_name for e in store.read("fresh")] == ["fresh"]
    assert numbers(target)["fresh"] == numbers(target)["long"] + 1
    numbers_right(target)


def test_a_postgres_store_truncated_before_the_kept_row_gives_no_number_twice(postgres_database: str) -> None:
    """A store whose highest-numbered stream lost its first block of versions to a truncation
    made before the kept row existed (the row removed here, as such a store has none): the next
    writer still finds that number, through the numbers' index PostgreSQL keeps."""
    import psycopg

    config = {"db.backend": "postgres", "postgres.url": postgres_database}
    with EventStore.open(config) as store:
        internal_streams_first(store, "top", 6)
        store.append([{"stream-name": "top", "event-type": "t", "payload": {"n": n}} for n in range(5)])
        store.scavenge()
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM photon_events WHERE stream_name = 'top'").fetchone() == (0,)
        connection.execute("DELETE FROM photon_streams WHERE stream_name = ''")
        top = connection.execute("SELECT stream_id FROM photon_streams WHERE stream_name = 'top'").fetchone()[0]
    with EventStore.open(config) as store:
        store.append({"stream-name": "fresh", "event-type": "t", "payload": {"n": "fresh"}})
        store.append({"stream-name": "top", "event-type": "t", "payload": {"n": 5}})
        assert [(e.stream_version, e.payload) for e in store.read("top")] == [(6, {"n": 5})]
        assert [e.payload for e in store.read("fresh")] == [{"n": "fresh"}]
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        fresh = connection.execute("SELECT stream_id FROM photon_streams WHERE stream_name = 'fresh'").fetchone()[0]
    assert fresh > top
