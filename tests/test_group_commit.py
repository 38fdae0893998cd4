"""Group commit: appends from many threads share backend transactions, and each is acknowledged
only once its transaction is durable."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from photon.core.errors import BackendError
from photon.core.events import RecordedEvent
from photon.core.store import EventStore


def test_many_threads_share_commits(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        barrier = threading.Barrier(64)

        def append(index: int) -> None:
            barrier.wait()
            for n in range(20):
                store.append({"stream-name": f"t{index}", "event-type": "E", "payload": {"n": n}})

        threads = [threading.Thread(target=append, args=(i,)) for i in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = store.stats()
        assert stats["committed-events"] == 64 * 20 == store.last_order_id()
        # Without grouping there would be one commit per event.
        assert stats["commits"] < 64 * 20 / 2


def test_sqlite_runs_in_wal_with_full_sync_by_default(tmp_path: Path) -> None:
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        connection = store.backend._engine.raw_connection()  # type: ignore[attr-defined]
        try:
            cursor = connection.driver_connection
            assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        finally:
            connection.close()
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db"), sqlite_synchronous="NORMAL") as store:
        connection = store.backend._engine.raw_connection()  # type: ignore[attr-defined]
        try:
            assert connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0] == 1
        finally:
            connection.close()


def test_failed_commit_acknowledges_nothing_and_the_store_goes_on() -> None:
    store = EventStore.open(db_backend="memory")
    backend = store.backend
    original = backend.append
    failing = threading.Event()

    def flaky(events: Sequence[RecordedEvent]) -> None:
        if failing.is_set():
            raise BackendError("disk on fire")
        original(events)

    backend.append = flaky  # type: ignore[method-assign]
    try:
        store.append({"stream-name": "a", "event-type": "E", "payload": {}})
        failing.set()
        with pytest.raises(BackendError, match="disk on fire"):
            store.append([{"stream-name": "a", "event-type": "E", "payload": {}}] * 3)
        failing.clear()
        (after,) = store.append({"stream-name": "a", "event-type": "E", "payload": {}})
        assert after.order_id == 2 and after.stream_version == 2
        assert [e.order_id for e in store.read()] == [1, 2]
    finally:
        store.close()


def test_close_finishes_appends_in_flight(tmp_path: Path) -> None:
    store = EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db"))
    acknowledged: list[int] = []
    errors: list[BaseException] = []

    def append() -> None:
        try:
            for _ in range(200):
                acknowledged.extend(
                    e.order_id for e in store.append({"stream-name": "a", "event-type": "E", "payload": {}})
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append) for _ in range(4)]
    for thread in threads:
        thread.start()
    store.close()
    for thread in threads:
        thread.join()
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as reopened:
        stored = {e.order_id for e in reopened.read()}
    assert set(acknowledged) <= stored
    assert all("closed" in str(e) for e in errors)


def test_sqlite_checkpoints_the_log_in_the_background(tmp_path: Path) -> None:
    """Commits never checkpoint (that would stall them); a background thread copies the log into
    the database file, so the database grows while the store runs, not only at close."""
    import time

    db = tmp_path / "s.db"
    with EventStore.open(db_backend="sqlite", sqlite_path=str(db)) as store:
        connection = store.backend._engine.raw_connection()  # type: ignore[attr-defined]
        try:
            assert connection.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        finally:
            connection.close()
        blob = "x" * 2000
        for _ in range(10):
            store.append([{"stream-name": "big", "event-type": "E", "payload": {"blob": blob}}] * 1000)
        deadline = time.monotonic() + 60  # a loaded machine's disk and CPU, not the checkpoint's pace
        while db.stat().st_size < 15_000_000:
            assert time.monotonic() < deadline, "the log was never checkpointed into the database file"
            time.sleep(0.1)
        assert store.last_order_id() == 10_000


def test_sqlite_log_stays_bounded_under_a_steady_stream_of_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background checkpoint alone never catches up with a writer that never pauses, and the
    log only starts again after a complete one: the writer finishes it when the log is large."""
    import time

    import photon_backends.sql.checkpointing as sql

    # The real thresholds, scaled down so that a few seconds of appends cross them many times.
    monkeypatch.setattr(sql, "CHECKPOINT_EVERY_SECONDS", 0.02)
    monkeypatch.setattr(sql, "CHECKPOINT_LOG_BYTES", 64 << 10)
    monkeypatch.setattr(sql, "LOG_RESTART_BYTES", 512 << 10)
    monkeypatch.setattr(sql, "LOG_SIZE_LIMIT", 1 << 20)
    log = tmp_path / "s.db-wal"
    largest = 0
    event = {"stream-name": "steady", "event-type": "E", "payload": {"blob": "x" * 1000}}
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "s.db")) as store:
        # Enough writing that a log which never starts again would hold all of it (48 MB), within
        # a bounded time on a slow machine (a loaded one can take minutes). The log starts again
        # at 512 KiB, but one commit of 200 events and their index pages can carry it a few MB
        # past that while a checkpoint runs.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and store.last_order_id() < 48_000:
            store.append([event] * 200)
            largest = max(largest, log.stat().st_size)
        written = store.last_order_id() * 1000
    bound = 20 * (512 << 10)  # 10 MiB: a fourth of what was written
    assert written >= 4 * bound, f"only {written} bytes written in 300 s"
    assert largest < bound, f"wrote {written} bytes, yet the log reached {largest} bytes"
