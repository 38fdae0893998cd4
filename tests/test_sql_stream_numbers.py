"""The SQL backends keep a bounded cache of stream numbers; when it is full and starts again, a
batch mixing streams already numbered with new ones keeps every stream's number (a growth run
with a million streams failed here: "append failed: 'probe-stream'")."""

from __future__ import annotations

from pathlib import Path

import photon_backends.sql.stream_numbers as sql
import pytest

from photon.core.store import EventStore


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
