"""The SQL layout: streams are numbered, and events are found by their stream's number."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from photon.core.errors import BackendError
from photon.core.store import EventStore


def open_sqlite(path: Path, **settings: str) -> EventStore:
    return EventStore.open(db_backend="sqlite", sqlite_path=str(path), **settings)


def stream_index(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'photon_events'")
        return " | ".join(sorted(row[0] for row in rows if "stream_version" in row[0]))
    finally:
        connection.close()


def numbers(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        return dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams"))
    finally:
        connection.close()


def test_a_new_store_finds_a_streams_events_by_block_and_number(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with open_sqlite(path) as store:
        store.append([{"stream-name": s, "event-type": "T", "payload": {}} for s in ["b", "a", "b"]])
    assert stream_index(path) == (
        "CREATE UNIQUE INDEX photon_events_stream_block ON photon_events "
        "(stream_version >> 6, stream_id, stream_version)"
    )
    assert numbers(path) == {"b": 1, "a": 2}  # in the order the batch first names them


def test_each_stream_keeps_one_number_across_reopens_and_a_deleted_one_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "numbers.db"
    with open_sqlite(path) as store:
        store.append([{"stream-name": s, "event-type": "T", "payload": {}} for s in ["x", "y", "x", "z"]])
        first = numbers(path)
        store.delete_stream("y")
        store.append({"stream-name": "y", "event-type": "T", "payload": {"again": True}})
    with open_sqlite(path) as store:
        store.append([{"stream-name": s, "event-type": "T", "payload": {}} for s in ["w", "y", "x"]])
        assert [e.stream_version for e in store.read("x")] == [1, 2, 3]
        # A soft delete: the stream goes on from its last version, under the same number.
        assert [(e.stream_version, e.payload) for e in store.read("y")] == [(2, {"again": True}), (3, {})]
        assert [e.stream_version for e in store.read("w")] == [1]
    after = numbers(path)
    assert after["x"] == first["x"] and after["z"] == first["z"]
    assert after["y"] == first["y"]
    assert len(set(after.values())) == len(after) == 6  # with __config__ and __metadata__, where the deletion is noted


def test_a_failed_write_leaves_the_numbers_right(tmp_path: Path) -> None:
    path = tmp_path / "failed.db"
    with open_sqlite(path) as store:
        store.append({"stream-name": "kept", "event-type": "T", "payload": {}})
        guard = sqlite3.connect(path)
        guard.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON photon_events WHEN NEW.stream_name = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
        guard.commit()
        with pytest.raises(BackendError, match="refused by the test"):
            store.append([{"stream-name": s, "event-type": "T", "payload": {}} for s in ["fresh", "boom"]])
        assert store.stream_version("fresh") == 0 and [s.stream_name for s in store.streams()] == ["kept"]
        guard.execute("DROP TRIGGER refuse")
        guard.commit()
        guard.close()
        store.append([{"stream-name": s, "event-type": "T", "payload": {}} for s in ["boom", "fresh", "other"]])
        assert {s.stream_name: s.total_events for s in store.streams()} == {
            "kept": 1,
            "boom": 1,
            "fresh": 1,
            "other": 1,
        }
        assert [e.stream_name for e in store.read("fresh")] == ["fresh"]
    assert len(set(numbers(path).values())) == 4


def test_stream_reads_across_many_blocks_match_the_memory_backend(tmp_path: Path) -> None:
    batch = [
        {"stream-name": f"s{i % 3}", "event-type": "Rare" if i % 2100 == 4 else "Common", "payload": {"i": i}}
        for i in range(3000)
    ]
    with open_sqlite(tmp_path / "blocks.db") as sqlite, EventStore.open(db_backend="memory") as memory:
        for store in (sqlite, memory):
            for start in range(0, len(batch), 700):
                store.append(batch[start : start + 700])
        cases: list[dict[str, object]] = [
            {},
            {"from_version": 63},
            {"from_version": 64, "limit": 1},
            {"from_version": 130, "limit": 700},
            {"from_version": 999},
            {"from_version": 1001},
            {"event_types": ["Rare"]},
            {"event_types": ["Rare"], "from_version": 3},
            {"from_version": 500, "to_order_id": 1700},
            {"from_order_id": 2500, "limit": 5},
        ]
        for case in cases:
            for stream in ("s0", "s1", "s2", "missing"):
                got = [(e.order_id, e.stream_version) for e in sqlite.read(stream, **case)]  # type: ignore[arg-type]
                want = [(e.order_id, e.stream_version) for e in memory.read(stream, **case)]  # type: ignore[arg-type]
                assert got == want, (stream, case)
        assert [e.payload["i"] for e in sqlite.read("s1", event_types=["Rare"])] == [4, 2104]  # 9 blocks apart
        assert sqlite.delete_stream("s1") == 1000
        sqlite.scavenge()
        assert list(sqlite.read("s1")) == [] and len(list(sqlite.read("s2"))) == 1000
        assert len(list(sqlite.read())) == 2000 + 3  # the deletion noted in __metadata__ and __config__; the scavenge


def test_a_batch_of_known_and_new_streams_after_the_kept_numbers_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import photon_backends.sql.stream_numbers

    monkeypatch.setattr(photon_backends.sql.stream_numbers, "STREAM_IDS_KEPT", 10)
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "s.db")}) as store:
        store.append([{"stream-name": f"s{i}", "event-type": "t", "payload": {}} for i in range(20)])
        # Known streams beside a new one, once more numbers are kept than the limit.
        store.append([{"stream-name": name, "event-type": "t", "payload": {}} for name in ("s1", "s2", "new")])
        assert [store.stream_version(name) for name in ("s1", "s2", "new")] == [2, 2, 1]
