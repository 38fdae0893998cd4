"""A writer killed with SIGKILL at any moment leaves SQLite's read index consistent with its mark:
every event up to the mark has its category and event-type entries, none past it has any, and
category and event-type reads, before and after the next writer's catch-up, return each event
once (none missing, none doubled), as a scan of `__all__` does."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from photon.core.events import category_of
from photon.core.store import EventStore

from .crash_support import kill_while_writing


def consistent(path: Path) -> int:
    """Check the file's index against its mark (raw, before any writer opens it); the mark."""
    with sqlite3.connect(path) as connection:
        row = connection.execute("SELECT order_id FROM photon_read_index_mark WHERE id = 0").fetchone()
        mark = row[0] if row else 0
        past = connection.execute("SELECT count(*) FROM photon_read_index WHERE order_id > ?", (mark,)).fetchone()
        assert past == (0,)
        missing = connection.execute(
            "SELECT count(*) FROM photon_events e WHERE e.order_id <= ? AND ("
            " NOT EXISTS (SELECT 1 FROM photon_read_index i WHERE i.kind = 1 AND i.name = e.event_type"
            "  AND i.order_id = e.order_id) OR"
            " NOT EXISTS (SELECT 1 FROM photon_read_index i WHERE i.kind = 0"
            "  AND i.name = substr(e.stream_name, 1, instr(e.stream_name || '-', '-') - 1)"
            "  AND i.order_id = e.order_id))",
            (mark,),
        ).fetchone()
        assert missing == (0,)
        entries = connection.execute("SELECT count(*) FROM photon_read_index").fetchone()[0]
        filed = connection.execute("SELECT count(*) FROM photon_events WHERE order_id <= ?", (mark,)).fetchone()[0]
        assert entries == 2 * filed
    return int(mark)


def reads_match_a_scan(store: EventStore) -> None:
    everything = list(store.read())
    for category in ("cart", "shop", "user"):
        assert list(store.read(f"__category__:{category}")) == [
            e for e in everything if category_of(e.stream_name) == category
        ]
    for kind in ("Added", "Paid"):
        assert list(store.read(event_types=[kind])) == [e for e in everything if e.event_type == kind]


@pytest.mark.slow
def test_sigkill_leaves_the_read_index_consistent_with_its_mark(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    rng = random.Random(11)
    acknowledged = 0
    marks = []
    for _ in range(4):
        lines = kill_while_writing("tests.crash_read_index_writer", [str(path)], rng, (0.2, 0.8))
        acknowledged = max([acknowledged, *(int(line.split()[1]) for line in lines if line.startswith("ack "))])
        marks.append(consistent(path))
        with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}, read_only=True) as store:
            assert store.last_order_id() >= acknowledged
            reads_match_a_scan(store)  # the index up to the mark, the events past it
    assert marks[-1] > 0
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        assert consistent(path) == store.last_order_id()  # the writer's open filed the rest
        reads_match_a_scan(store)
