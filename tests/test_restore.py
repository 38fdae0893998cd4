"""Restore through the core API: positions kept, continuity checked, bad backups refused whole."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from photon.core.errors import IntegrityError, PhotonError
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp
from photon.ops.restore import (
    BackupFormatError,
    BackupSummary,
    RestoreConflict,
    bulk_load,
    check_backup,
    checked_records,
    import_events,
    parse_line,
    restore,
    restore_file,
)
from photon.ops.restore_check import Checker

from .backup_support import (
    TARGET_CONFIGS,
    backup_bytes,
    build_source,
    delete_the_old_way,
    everything,
    registered_backends,
)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "source.db")})
    build_source(store)
    yield store
    store.close()


def lines_of(data: bytes) -> Any:
    return lambda: iter(data.splitlines(keepends=True))


# Backends whose round trip needs a real server run it in tests/test_backend_restore_servers.py.
SERVER_BACKENDS = {"postgres", "redis", "mongo", "cassandra"}


def open_target(name: str, tmp_path: Path) -> EventStore:
    if name in SERVER_BACKENDS:
        pytest.skip(f"{name}: the round trip against a real server is in test_backend_restore_servers.py")
    if name not in TARGET_CONFIGS:
        pytest.fail(f"no test configuration for backend {name!r}: add one to TARGET_CONFIGS")
    return EventStore.open(TARGET_CONFIGS[name](tmp_path))


@pytest.mark.parametrize("backend", registered_backends())
def test_round_trip_into_every_backend(backend: str, source: EventStore, tmp_path: Path) -> None:
    data = backup_bytes(source)
    target = open_target(backend, tmp_path)
    try:
        summary = restore(target, lines_of(data), batch_size=500)
        original = everything(source)
        assert summary.events == len(original)
        assert everything(target) == original  # ids, order-ids, versions, times, bytes
        assert target.streams() == source.streams()
        assert target.last_order_id() == source.last_order_id()
        assert [e.payload for e in target.read("__config__")] == [e.payload for e in source.read("__config__")]
        assert target.get_event("client-chosen-id-1") == source.get_event("client-chosen-id-1")

        # The restored store goes on where the source would.
        (resent,) = target.append(
            {"stream-name": "audit", "event-type": "Seen", "payload": {}, "id": "client-chosen-id-1"}
        )
        assert resent == source.get_event("client-chosen-id-1")
        new = target.append(
            [
                {"stream-name": "orders-000", "event-type": "Next", "payload": {}},
                {"stream-name": "orders-003", "event-type": "Back", "payload": {}},
                {"stream-name": "orders-007", "event-type": "More", "payload": {}},
            ]
        )
        last = source.last_order_id()
        assert [(e.order_id, e.stream_version) for e in new] == [(last + 1, 31), (last + 2, 1), (last + 3, 4)]
        assert target.append({"stream-name": "x", "event-type": "y", "payload": {}}, expected_version="no-stream")
    finally:
        target.close()


def test_restored_store_survives_reopening(source: EventStore, tmp_path: Path) -> None:
    config = TARGET_CONFIGS["file"](tmp_path)
    with EventStore.open(config) as target:
        restore(target, lines_of(backup_bytes(source)))
    with EventStore.open(config) as reopened:
        assert everything(reopened) == everything(source)
        (after,) = reopened.append({"stream-name": "tail", "event-type": "Again", "payload": {}})
        assert (after.order_id, after.stream_version) == (source.last_order_id() + 1, 2)


def test_holes_left_by_deleted_streams_keep_the_next_order_id_above_them(tmp_path: Path) -> None:
    with EventStore.open(db_backend="memory") as source:
        source.append([{"stream-name": "gone", "event-type": "x", "payload": {}}] * 5)
        delete_the_old_way(source, "gone")  # order-ids 1..5 are gone; the stream-deleted event is 6
        target = EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path))
        with target:
            restore(target, lines_of(backup_bytes(source)))
            assert [e.order_id for e in everything(target)] == [6]
            (again,) = target.append({"stream-name": "gone", "event-type": "x", "payload": {}})
            assert (again.order_id, again.stream_version) == (7, 1)


def test_incremental_restore_continues_and_replays_deletions(source: EventStore, tmp_path: Path) -> None:
    first = backup_bytes(source)
    mark = source.last_order_id()
    source.append([{"stream-name": "orders-001", "event-type": "Later", "payload": {}}] * 2)
    delete_the_old_way(source, "orders-002")  # exists in the restored store: must go there too
    source.append({"stream-name": "orders-002", "event-type": "Fresh", "payload": {}})
    source.append({"stream-name": "brand-new", "event-type": "One", "payload": {}})
    increment = backup_bytes(source, from_order_id=mark + 1)

    with EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path)) as target:
        restore(target, lines_of(first))
        summary = restore(target, lines_of(increment), batch_size=2)
        assert summary.first_order_id == mark + 1
        assert everything(target) == everything(source)
        assert target.streams() == source.streams()
        assert target.stream_version("orders-002") == 1


def test_restore_into_a_non_empty_store_is_refused(source: EventStore) -> None:
    with EventStore.open(db_backend="memory") as target:
        target.append({"stream-name": "mine", "event-type": "x", "payload": {}})
        before = everything(target)
        with pytest.raises(
            RestoreConflict,
            match=r"the store is not empty: it holds events up to order-id 1;.*"
            r"starts at order-id 1, line 2",
        ):
            restore(target, lines_of(b"\n" + backup_bytes(source)))
        assert everything(target) == before


def test_incremental_backup_that_overlaps_the_store_is_refused(source: EventStore) -> None:
    with EventStore.open(db_backend="memory") as target:
        restore(target, lines_of(backup_bytes(source)))
        before = everything(target)
        overlap = backup_bytes(source, from_order_id=source.last_order_id())
        with pytest.raises(RestoreConflict, match="not empty"):
            restore(target, lines_of(overlap))
        assert everything(target) == before


def test_incremental_backup_whose_versions_do_not_follow_the_store_is_refused(source: EventStore) -> None:
    with EventStore.open(db_backend="memory") as target:
        restore(target, lines_of(backup_bytes(source)))
        before = everything(target)
        line = orjson.dumps(
            {
                "order-id": 10_000,
                "stream-version": 5,
                "stream-name": "orders-000",
                "event-type": "x",
                "payload": {},
                "id": "late",
                "event-time": 1,
            }
        )
        with pytest.raises(
            BackupFormatError,
            match=r"line 1: stream 'orders-000': stream-version 5 does not "
            r"follow version 30",
        ):
            restore(target, lines_of(line))
        assert everything(target) == before


def corrupt(data: bytes, how: str) -> tuple[bytes, int, str]:
    """A damaged copy of a backup, the line number at fault and the message expected."""
    lines = data.splitlines(keepends=True)
    middle = len(lines) // 2
    event = orjson.loads(lines[middle])
    if how == "truncated":
        return b"".join(lines[:-1]) + lines[-1][:40], len(lines), "not valid JSON"
    if how == "garbage":
        lines[middle] = b"\x00\xff garbage\n"
        return b"".join(lines), middle + 1, "not valid JSON"
    if how == "not-an-object":
        lines[middle] = b"[1, 2]\n"
        return b"".join(lines), middle + 1, "expected a JSON object"
    if how == "missing-field":
        del event["order-id"]
        message = "missing field 'order-id'"
    elif how == "bad-type":
        event["event-time"] = "yesterday"
        message = "field 'event-time' must be a non-negative integer"
    elif how == "bad-payload":
        event["payload"] = [1]
        message = "field 'payload' must be a JSON object"
    elif how == "order-backwards":
        event["order-id"] = 1
        message = "order-id 1 does not follow"
    elif how == "version-repeat":
        # Versions may skip ahead (a scavenged store's backup), never repeat or go back.
        event["stream-version"] -= 1
        message = "does not follow version"
    elif how == "all-stream":
        event["stream-name"] = "__all__"
        message = "field 'stream-name' must name a stream"
    else:
        raise AssertionError(how)
    lines[middle] = orjson.dumps(event) + b"\n"
    return b"".join(lines), middle + 1, message


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "garbage",
        "not-an-object",
        "missing-field",
        "bad-type",
        "bad-payload",
        "order-backwards",
        "version-repeat",
        "all-stream",
    ],
)
def test_a_bad_line_stops_the_restore_and_the_store_stays_as_it_was(
    how: str, source: EventStore, tmp_path: Path
) -> None:
    data, line, message = corrupt(backup_bytes(source), how)
    with EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path)) as target:
        with pytest.raises(BackupFormatError) as raised:
            restore(target, lines_of(data), batch_size=100)
        assert raised.value.line == line
        assert str(raised.value).startswith(f"line {line}: ")
        assert message in str(raised.value)
        assert everything(target) == []
        assert target.last_order_id() == 0
        assert target.streams() == []


def test_marker_and_blank_lines_are_skipped(source: EventStore) -> None:
    data = backup_bytes(source)
    lines = data.splitlines(keepends=True)
    marked = b"\n" + b"".join(lines[:10]) + b'{"caught-up": 10}\n' + b"\r\n" + b"".join(lines[10:])
    with EventStore.open(db_backend="memory") as target:
        summary = restore(target, lines_of(marked))
        assert summary.skipped == 3
        assert summary.lines == len(lines) + 3
        assert everything(target) == everything(source)


def test_parse_line_keeps_the_line_bytes_as_the_stored_json() -> None:
    line = (
        b'{"order-id":3,"stream-version":1,"stream-name":"s","event-type":"t",'
        b'"payload":{"a":1},"id":"i","event-time":5}\r\n'
    )
    record = parse_line(line, 1)
    assert record == RecordedEvent(3, "s", 1, "i", "t", 5, line.rstrip())
    assert parse_line(b'{"caught-up":3}\n') is None
    with pytest.raises(BackupFormatError, match="a stream-deleted event must name its stream"):
        parse_line(
            b'{"order-id":3,"stream-version":1,"stream-name":"__config__","event-type":"stream-deleted",'
            b'"payload":{},"id":"i","event-time":5}',
            7,
        )


def test_check_backup_writes_nothing(source: EventStore) -> None:
    with EventStore.open(db_backend="memory") as target:
        summary = check_backup(backup_bytes(source).splitlines(), target)
        assert summary.events == len(everything(source))
        assert summary.last_order_id == source.last_order_id()
        assert target.last_order_id() == 0


def test_import_events_checks_order_in_the_writer(source: EventStore) -> None:
    events = everything(source)
    with EventStore.open(db_backend="memory") as target:
        with pytest.raises(BackupFormatError, match="does not follow order-id"):
            target.import_events([events[0], events[2], events[1]], batch_size=2)
        # The first batch (two events in order) was stored whole; the failing one not at all.
        assert everything(target) == [events[0], events[2]]
        assert target.import_events(events[3:6]) == 3
        (appended,) = target.append({"stream-name": "after", "event-type": "x", "payload": {}})
        assert appended.order_id == events[5].order_id + 1


def test_a_duplicate_id_found_only_by_the_backend_leaves_the_batches_before(source: EventStore) -> None:
    events = everything(source)
    clash = events[9]._replace(order_id=events[-1].order_id + 1, stream_name="other", stream_version=1)
    with EventStore.open(db_backend="memory") as target:
        with pytest.raises(IntegrityError, match="already stored"):
            target.import_events([*events, clash], batch_size=10)
        stored = everything(target)
        assert stored == events[: len(stored)] and len(stored) % 10 == 0 and len(stored) >= len(events) - 10
        assert target.last_order_id() == stored[-1].order_id


def test_live_subscribers_see_restored_events(source: EventStore) -> None:
    events = everything(source)
    with EventStore.open(db_backend="memory") as target:
        subscription = target.subscribe("__all__", "hot-cold")
        seen: list[Any] = []

        def follow() -> None:
            for item in subscription:
                seen.append(item)
                if isinstance(item, RecordedEvent) and item.order_id == events[-1].order_id:
                    return

        reader = threading.Thread(target=follow)
        reader.start()
        restore(target, lines_of(backup_bytes(source)), batch_size=64)
        reader.join(timeout=60)
        subscription.close()
        assert not reader.is_alive(), f"the subscriber saw {len(seen)} items in 60 s"
        assert seen[0] == CaughtUp(0)
        assert seen[1:] == events


def test_bulk_restore_into_an_empty_sql_store_that_finds_a_duplicate_leaves_it_empty(
    source: EventStore, tmp_path: Path
) -> None:
    events = everything(source)
    clash = dict(events[9].to_dict(), **{"order-id": events[-1].order_id + 1, "stream-name": "other"})
    clash["stream-version"] = 1
    lines = [e.data for e in events] + [orjson.dumps(clash)]
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "t.db")) as target:
        with pytest.raises(IntegrityError, match="repeat an id or a stream version"):
            restore(target, lambda: iter(lines), batch_size=10)
        assert everything(target) == [] and target.last_order_id() == 0 and target.streams() == []
        # Emptied and indexed again: a clean restore goes through, and duplicates are refused again.
        restore(target, lines_of(backup_bytes(source)))
        assert everything(target) == events
        twin = events[9]._replace(order_id=events[-1].order_id + 5, stream_name="other", stream_version=1)
        with pytest.raises(IntegrityError):
            target.backend.append([twin])


def test_a_write_between_the_check_and_the_writer_makes_the_writer_check_again(source: EventStore) -> None:
    # The backup's events are checked against a snapshot of the store; an append that lands
    # after the snapshot must not slip through: the writer sees the store moved and checks too.
    events = everything(source)
    with EventStore.open(db_backend="memory") as target:
        target.import_events(events[:5])
        later = [
            e for e in events[5:] if e.stream_version > 1 and e.stream_name in {f.stream_name for f in events[:5]}
        ][:1]
        assert later and not later[0].stream_name.startswith("__"), "the source needs a stream that goes on"
        stream = later[0].stream_name

        def lines() -> Iterator[bytes]:
            # Runs after the snapshot was taken, before the writer sees the batch.
            target.append({"stream-name": stream, "event-type": "sneaked-in", "payload": {}})
            yield later[0].data

        records = checked_records(lines(), target, BackupSummary())
        with pytest.raises(BackupFormatError, match="does not follow"):
            import_events(target, records)
        assert [e.event_type for e in target.read(stream)][-1] == "sneaked-in"
        assert [e for e in target.read() if e.event_id == later[0].event_id] == []


def test_a_bulk_load_cut_short_gets_its_indexes_back_when_the_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "cut.db"
    store = EventStore.open(db_backend="sqlite", sqlite_path=str(path))
    assert store.backend.begin_bulk_load()
    store.close()  # as if the restore was killed: end_bulk_load never ran

    def indexes() -> set[str]:
        with sqlite3.connect(path) as connection:
            return {row[1] for row in connection.execute("PRAGMA index_list(photon_events)")}

    assert "photon_events_event_id" not in indexes()
    with EventStore.open(db_backend="sqlite", sqlite_path=str(path)) as reopened:
        assert {"photon_events_event_id", "photon_events_stream_block"} <= indexes()
        reopened.append({"stream-name": "s", "event-type": "t", "payload": {}, "id": "once"})
        (first,) = reopened.read("s")
        twin = first._replace(order_id=first.order_id + 1, stream_version=2)
        with pytest.raises(IntegrityError):
            reopened.backend.append([twin])


def test_a_bulk_load_into_sqlite_syncs_once_at_the_end(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        writer = store.backend._writer_connection().driver_connection

        def level() -> int:
            return int(writer.execute("PRAGMA synchronous").fetchone()[0])

        assert level() == 2  # FULL
        store.backend.begin_bulk_load()
        assert level() == 0  # OFF while loading: nothing is acknowledged before the end
        store.backend.end_bulk_load(True)
        assert level() == 2


def test_a_bulk_load_into_sqlite_stores_every_row_of_large_and_odd_sized_batches(tmp_path: Path) -> None:
    # A bulk load inserts many rows per statement (powers of two up to BULK_ROWS); batches of
    # sizes that are not powers of two, and larger than one statement, must land whole and in order.
    from photon_backends.sql.bulk_load import BULK_ROWS

    sizes = [1, 3, BULK_ROWS + 1, 2 * BULK_ROWS + 777]
    records: list[RecordedEvent] = []
    for stream, size in enumerate(sizes):
        for version in range(1, size + 1):
            order_id = len(records) + 1
            body = {"n": order_id}
            data = orjson.dumps(
                {"order-id": order_id, "stream-version": version, "stream-name": f"s{stream}", "payload": body}
            )
            records.append(RecordedEvent(order_id, f"s{stream}", version, f"id-{order_id}", "t", order_id, data))
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "m.db")) as store:
        with bulk_load(store) as undoable:
            assert undoable
            start = 0
            for size in sizes:
                store.import_events(records[start : start + size], batch_size=size)
                start += size
        assert list(store.read()) == records
        assert {info.stream_name: info.total_events for info in store.streams()} == {
            f"s{index}": size for index, size in enumerate(sizes)
        }
        # After the load, appends go row by row again, indexes and all.
        store.append({"stream-name": "s0", "event-type": "t", "payload": {}})
        assert [e.stream_version for e in store.read("s0")] == [1, 2]


# -- a file restored while a second process checks it ------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_restore_file_round_trip(backend: str, source: EventStore, tmp_path: Path) -> None:
    # sqlite: loaded while a checker process reads the same file; memory (no undoable bulk
    # load): checked first, then written.
    # A blank line and a replay's caught-up marker are skipped, as `restore` skips them.
    lines = backup_bytes(source).splitlines(keepends=True)
    lines[7:7] = [b"\n", b'{"caught-up":7}\n']
    path = tmp_path / "backup.jsonl"
    path.write_bytes(b"".join(lines))
    with EventStore.open(TARGET_CONFIGS[backend](tmp_path)) as target:
        summary = restore_file(target, path, batch_size=100)
        original = everything(source)
        assert everything(target) == original
        assert target.streams() == source.streams()
        assert (summary.events, summary.skipped, summary.first_order_id, summary.last_order_id) == (
            len(original),
            2,
            original[0].order_id,
            original[-1].order_id,
        )


def bad_backup(source: EventStore, tmp_path: Path, *, line: int, replace: bytes) -> Path:
    lines = backup_bytes(source).splitlines(keepends=True)
    lines[line - 1] = replace
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_a_line_the_load_takes_but_the_checker_refuses_empties_the_store(source: EventStore, tmp_path: Path) -> None:
    # The loading process takes this line as it is (it does not check stream-versions): the
    # checker's verdict must undo the load, and name the line.
    events = everything(source)
    skipped = events[600]._replace(stream_version=events[600].stream_version - 1)
    data = orjson.loads(skipped.data)
    data["stream-version"] = skipped.stream_version
    path = bad_backup(source, tmp_path, line=601, replace=orjson.dumps(data) + b"\n")
    with EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path)) as target:
        with pytest.raises(BackupFormatError, match="line 601: .*does not follow") as failure:
            restore_file(target, path, batch_size=100)
        assert failure.value.line == 601
        assert everything(target) == [] and target.last_order_id() == 0 and target.streams() == []


def test_the_error_names_the_first_bad_line_even_when_the_load_stops_on_a_later_one(
    source: EventStore, tmp_path: Path
) -> None:
    # Line 5 has a wrong type the load does not look at; line 9 is not JSON, which stops the
    # load. The error must still be about line 5: the checker's.
    lines = backup_bytes(source).splitlines(keepends=True)
    data = orjson.loads(lines[4])
    data["payload"] = [1, 2]
    lines[4] = orjson.dumps(data) + b"\n"
    lines[8] = b'{"order-id": 9, "stream-name": \n'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    with EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path)) as target:
        with pytest.raises(BackupFormatError, match="line 5: field 'payload' must be a JSON object"):
            restore_file(target, path)
        assert everything(target) == []


def test_a_column_of_the_wrong_type_is_reported_as_the_checker_names_it(source: EventStore, tmp_path: Path) -> None:
    # An order-id that is an object cannot even be stored: the load stops on that line, and the
    # error is the checker's, naming the line and the field.
    lines = backup_bytes(source).splitlines(keepends=True)
    data = orjson.loads(lines[2])
    data["order-id"] = {"n": 3}
    path = bad_backup(source, tmp_path, line=3, replace=orjson.dumps(data) + b"\n")
    with EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path)) as target:
        with pytest.raises(BackupFormatError, match="line 3: field 'order-id' must be a positive integer"):
            restore_file(target, path)
        assert everything(target) == []


def test_a_checker_that_dies_fails_the_restore(source: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    path.write_bytes(backup_bytes(source))
    checker = Checker(path)
    try:
        checker._process.kill()  # killed before it could answer
        with pytest.raises(PhotonError, match="stopped without an answer"):
            checker.result()
    finally:
        checker.close()


def test_a_checker_that_cannot_read_the_file_says_so(tmp_path: Path) -> None:
    checker = Checker(tmp_path)  # a folder, not a file
    try:
        with pytest.raises(PhotonError, match="cannot check the backup"):
            checker.result()
    finally:
        checker.close()


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def test_a_bulk_load_into_sqlite_writes_without_the_log_and_goes_back_to_it(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with EventStore.open(db_backend="sqlite", sqlite_path=str(path)) as store:
        writer = store.backend._writer_connection().driver_connection
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with bulk_load(store) as undoable:
            assert undoable
            assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert not store.backend.checkpointer.running  # nothing to checkpoint without a log
            store.streams()  # a connection opened meanwhile must not switch the file back
            assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            store.import_events([record(1, "s", 1)])
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.backend.checkpointer.running
        assert [e.order_id for e in store.read()] == [1]
    assert journal_mode(path) == "wal"


def test_a_bulk_load_keeps_the_log_while_another_process_has_the_file_open(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with EventStore.open(db_backend="sqlite", sqlite_path=str(path)) as store:
        other = sqlite3.connect(path)  # as another process reading the store would
        try:
            other.execute("SELECT count(*) FROM photon_events").fetchall()
            with bulk_load(store):
                writer = store.backend._writer_connection().driver_connection
                assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                store.import_events([record(1, "s", 1), record(2, "s", 2)])
            assert other.execute("SELECT count(*) FROM photon_events").fetchone()[0] == 2
        finally:
            other.close()
        assert [e.stream_version for e in store.read("s")] == [1, 2]


def test_a_failed_bulk_load_goes_back_to_the_log_too(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with EventStore.open(db_backend="sqlite", sqlite_path=str(path)) as store:
        with pytest.raises(IntegrityError), bulk_load(store):
            store.import_events([record(1, "s", 1), record(2, "s", 2, event_id="id-1")])
        writer = store.backend._writer_connection().driver_connection
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert list(store.read()) == []


def record(order_id: int, stream: str, version: int, *, event_id: str | None = None) -> RecordedEvent:
    event_id = event_id or f"id-{order_id}"
    data = orjson.dumps(
        {"order-id": order_id, "stream-version": version, "stream-name": stream, "id": event_id, "payload": {}}
    )
    return RecordedEvent(order_id, stream, version, event_id, "t", 0, data)


def test_restore_file_works_from_a_plain_script(source: EventStore, tmp_path: Path) -> None:
    # The checker is a new interpreter: a caller's script without a `__main__` guard is not run
    # a second time (as multiprocessing's spawn would).
    path = tmp_path / "backup.jsonl"
    path.write_bytes(backup_bytes(source))
    script = tmp_path / "plain.py"
    script.write_text(
        "from photon.ops.restore import restore_file\n"
        "from photon.core.store import EventStore\n"
        f"with EventStore.open(db_backend='sqlite', sqlite_path={str(tmp_path / 'p.db')!r}) as store:\n"
        f"    print(restore_file(store, {str(path)!r}).events)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert int(done.stdout) == len(everything(source))


def test_the_cycle_collector_is_paused_only_while_a_backup_is_read(source: EventStore, tmp_path: Path) -> None:
    import gc

    from photon.ops.restore import cycle_collection_paused

    seen: list[bool] = []

    def lines() -> Iterator[bytes]:
        for line in backup_bytes(source).splitlines(keepends=True):
            seen.append(gc.isenabled())
            yield line

    assert gc.isenabled()
    with EventStore.open(db_backend="memory") as target:
        restore(target, lines)
    assert seen and not any(seen)
    assert gc.isenabled()
    # After a failure too (a collector that was off stays off: tests/test_gc_pause.py).
    with pytest.raises(RuntimeError), cycle_collection_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def index_names(store: EventStore) -> set[str]:
    writer = store.backend._writer_connection().driver_connection
    return {row[1] for row in writer.execute("PRAGMA index_list(photon_events)")}


def test_a_bulk_load_keeps_the_id_index_when_the_first_batch_has_ascending_ids(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "k.db")) as store:
        with bulk_load(store):
            assert "photon_events_event_id" not in index_names(store)
            store.import_events([record(n, "s", n, event_id=f"id-{n:03d}") for n in range(1, 11)])
            # Built after the first batch, and kept as the load goes on.
            assert index_names(store) == {"photon_events_event_id"}
            store.import_events([record(n, "s", n, event_id=f"id-{n:03d}") for n in range(11, 21)])
        assert {"photon_events_event_id", "photon_events_stream_block"} <= index_names(store)
        assert [e.event_id for e in store.read()] == [f"id-{n:03d}" for n in range(1, 21)]

    # A repeated id is then refused by its batch, with the same words as at the end, and the
    # failed load leaves the store empty.
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "k2.db")) as store:
        with pytest.raises(IntegrityError, match="repeat an id or a stream version"), bulk_load(store):
            store.import_events([record(n, "s", n, event_id=f"id-{n:03d}") for n in range(1, 11)])
            store.import_events([record(11, "t", 1, event_id="id-005")])
        assert list(store.read()) == [] and store.last_order_id() == 0


def test_a_bulk_load_builds_the_id_index_at_the_end_when_the_ids_come_in_no_order(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "u.db")) as store:
        ids = ["m", "c", "x", "a"]
        with bulk_load(store):
            store.import_events([record(n, "s", n, event_id=ids[n - 1]) for n in range(1, 5)])
            assert "photon_events_event_id" not in index_names(store)
        assert {"photon_events_event_id", "photon_events_stream_block"} <= index_names(store)
        assert [e.event_id for e in store.read()] == ids


def test_restore_file_checks_as_it_loads_when_no_second_process_can_start(
    source: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    good = tmp_path / "backup.jsonl"
    good.write_bytes(backup_bytes(source))
    with EventStore.open(TARGET_CONFIGS["sqlite"](tmp_path)) as target:
        assert restore_file(target, good).events == len(everything(source))
        assert everything(target) == everything(source)
    bad = bad_backup(source, tmp_path, line=4, replace=b"{not json\n")
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "other.db")}) as target:
        with pytest.raises(BackupFormatError, match="line 4: not valid JSON"):
            restore_file(target, bad)
        assert everything(target) == []
