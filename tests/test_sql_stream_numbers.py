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
