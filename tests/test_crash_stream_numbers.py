"""A writer killed with SIGKILL at any moment never leads the next one to give a stream number
twice: the SQLite writer finds the highest number given without an index on the numbers
(`backends/sql/stream_numbers.py`), from the stream index's first block and the number kept by
truncations, and every event stays with its own stream."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from photon.core.store import EventStore

from .crash_support import kill_while_writing
from .test_sql_stream_numbers import numbers, numbers_right


def streams_read_their_own(store: EventStore) -> None:
    by_stream: dict[str, list[int]] = {}
    for event in store.read():
        by_stream.setdefault(event.stream_name, []).append(event.order_id)
    for name in [n for n in by_stream if not n.startswith("__")][-200:]:
        read = [e.order_id for e in store.read(name)]
        # Its own events, none of another stream's; the first may be hidden by a truncation
        # whose scavenge the kill stopped.
        assert read == by_stream[name][len(by_stream[name]) - len(read) :] and len(read) >= len(by_stream[name]) - 1


@pytest.mark.slow
def test_sigkill_never_leads_to_one_number_for_two_streams(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    rng = random.Random(17)
    acknowledged = 0
    streams = []
    for _ in range(8):
        lines = kill_while_writing("tests.crash_stream_numbers_writer", [str(path)], rng, (0.2, 0.6))
        acknowledged = max([acknowledged, *(int(line.split()[1]) for line in lines if line.startswith("ack "))])
        numbers_right(path)
        streams.append(len(numbers(path)))
        with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}, read_only=True) as store:
            assert store.last_order_id() >= acknowledged
            streams_read_their_own(store)
    assert streams == sorted(streams) and streams[-1] > streams[0]
    with sqlite3.connect(path) as connection:  # truncations happened, so the number was kept
        assert connection.execute("SELECT version < 0 FROM photon_streams WHERE stream_name = ''").fetchone() == (1,)
