"""SQLite readers map the file into memory (`sqlite.mmap.mib`, `backends.sql.sqlite.READER_MMAP_MIB`);
the writer does not. Mapped readers stay correct while the writer appends, the background
checkpoints copy the log into the file, and a scavenge shrinks the file under them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from photon_backends.sql import read_index, sqlite

from photon.core.config import ConfigError, load_config
from photon.core.events import category_of
from photon.core.store import EventStore


def mmap_sizes(store: EventStore) -> tuple[int, int]:
    """The mmap_size of a reading connection of `store` and of its writer's."""
    backend: Any = store.backend
    reader = backend._reading(lambda run: run("PRAGMA mmap_size").fetchone()[0])
    writer = backend._writer.driver_connection.execute("PRAGMA mmap_size").fetchone()[0]
    return reader, writer


def test_readers_map_the_file_and_the_writer_does_not(tmp_path: Path) -> None:
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "a.db")}) as store:
        store.append([{"stream-name": "a-1", "event-type": "E", "payload": {}}])
        reader, writer = mmap_sizes(store)
        # SQLite caps the size at its build's limit (SQLITE_MAX_MMAP_SIZE): more than none.
        assert 0 < reader <= sqlite.READER_MMAP_MIB * 1024 * 1024
        assert writer == 0
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "b.db"), "sqlite.mmap.mib": "0"}
    with EventStore.open(config) as store:
        store.append([{"stream-name": "a-1", "event-type": "E", "payload": {}}])
        assert mmap_sizes(store) == (0, 0)
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "c.db"), "sqlite.mmap.mib": "1"}
    with EventStore.open(config) as store:
        assert mmap_sizes(store) == (1024 * 1024, 0)


def test_a_negative_size_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad value for sqlite\.mmap\.mib.*at least 0"):
        load_config({"db.backend": "sqlite", "sqlite.mmap.mib": "-1"}, environ={}, cwd=tmp_path)


def test_mapped_readers_during_appends_checkpoints_and_a_shrinking_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers of a category, an event type and `__all__` loop while the writer appends to the
    kept streams, and streams of large events are deleted and scavenged: their pages freed, the
    log checkpointed into the file and the file truncated, several times, under mapped readers.
    Every read is in order, holds only what it asked for, and never shrinks for what is kept."""
    monkeypatch.setattr(read_index, "EVERY", 40)  # reads straddle the index's mark
    path = tmp_path / "store.db"
    big = "x" * 3000
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        errors: list[BaseException] = []
        stop = threading.Event()
        reads = [0]

        def keep_events(n: int) -> list[dict[str, Any]]:
            return [
                {"stream-name": f"keep-{i % 5}", "event-type": "Kept" if i % 2 else "Other", "payload": {"i": i}}
                for i in range(n)
            ]

        def reader() -> None:
            seen = {"category": 0, "type": 0}
            try:
                while not stop.is_set():
                    category = list(store.read("__category__:keep"))
                    kept = list(store.read(event_types=["Kept"]))
                    everything = list(store.read(limit=2000))
                    for events in (category, kept, everything):
                        ids = [e.order_id for e in events]
                        assert ids == sorted(set(ids))
                    assert all(category_of(e.stream_name) == "keep" for e in category)
                    assert all(e.event_type == "Kept" for e in kept)
                    assert len(category) >= seen["category"] and len(kept) >= seen["type"]
                    seen = {"category": len(category), "type": len(kept)}
                    reads[0] += 1
            except BaseException as exc:
                errors.append(exc)

        store.append(keep_events(100))
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        sizes = []
        try:
            for round_ in range(4):
                doomed = [f"doomed{round_}-{i}" for i in range(20)]
                for stream in doomed:
                    store.append([{"stream-name": stream, "event-type": "Big", "payload": {"b": big}}] * 40)
                    store.append(keep_events(7))
                with sqlite3.connect(path) as checkpointer:  # the big events into the file itself
                    checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                grown = path.stat().st_size
                for stream in doomed:
                    store.delete_stream(stream)
                store.scavenge()
                sizes.append((grown, path.stat().st_size))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not errors, errors
        assert reads[0] >= 3
        assert all(after < grown for grown, after in sizes[1:]), sizes  # the file shrank under the readers
        category = list(store.read("__category__:keep"))
        scanned = [e for e in store.read() if category_of(e.stream_name) == "keep"]
        assert category == scanned and len(category) == 100 + 4 * 20 * 7
