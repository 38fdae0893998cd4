"""The SQLite backend binds each event's stored JSON (bytes) without the driver's search for an
adapter (`photon_backends.sql.sqlite.bind_bytes_directly`): the events are stored as blobs with
the very bytes given, and an adapter a program registered for bytes itself is kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from photon_backends.sql.sqlite import bind_bytes_directly

from photon.core.store import EventStore

KEY = (bytes, sqlite3.PrepareProtocol)


@pytest.fixture
def adapters() -> Iterator[None]:
    """The driver's registry as it was, whatever a test does to it."""
    before = dict(sqlite3.adapters)
    yield
    sqlite3.adapters.clear()
    sqlite3.adapters.update(before)


@pytest.mark.usefixtures("adapters")
def test_an_events_stored_json_is_a_blob_of_the_same_bytes(tmp_path: Path) -> None:
    sqlite3.adapters.pop(KEY, None)
    path = tmp_path / "s.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        assert sqlite3.adapters[KEY] is bytes
        stored = store.append([{"stream-name": "s-1", "event-type": "t", "payload": {"text": 'é\u0000"', "n": 1}}])
        assert list(store.read("s-1")) == stored
    with sqlite3.connect(path) as connection:
        kind, data = connection.execute("SELECT typeof(data), data FROM photon_events").fetchone()
    assert kind == "blob"
    assert data == stored[0].data


@pytest.mark.usefixtures("adapters")
def test_a_programs_own_adapter_for_bytes_is_kept() -> None:
    def own(value: bytes) -> bytes:
        return value

    sqlite3.register_adapter(bytes, own)
    bind_bytes_directly()
    assert sqlite3.adapters[KEY] is own
