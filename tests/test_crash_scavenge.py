"""A scavenge killed with SIGKILL at any moment leaves a consistent store, loses no acknowledged
event of a stream it was not meant to touch, and can be run again to finish; order-ids are never
reused. Also: the SQLite file shrinks when half of its events are scavenged."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from photon.core.store import EventStore

from .crash_support import kill_while_writing


def _seed(path: str, streams: int, per_stream: int) -> None:
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": path}) as store:
        for index in range(streams):
            name = f"old-{index}"
            store.append([{"stream-name": name, "event-type": "E", "payload": {"pad": "y" * 300}}] * per_stream)
            if index % 2 == 0:
                store.delete_stream(name, hard=index % 4 == 0)
            else:
                store.set_stream_metadata(name, {"max-count": 10})


@pytest.mark.slow
def test_sigkill_during_scavenge_leaves_a_consistent_store_and_it_can_finish(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    _seed(path, streams=40, per_stream=500)
    rng = random.Random(7)
    acknowledged = 0
    for _ in range(6):
        lines = kill_while_writing("tests.crash_scavenger", [path], rng, (0.05, 0.5))
        acks = [int(line.split()[2]) for line in lines if line.startswith("ack ")]
        acknowledged = max([acknowledged, *acks])

        with EventStore.open({"db.backend": "sqlite", "sqlite.path": path}) as store:
            events = list(store.read())
            order_ids = [e.order_id for e in events]
            assert order_ids == sorted(set(order_ids)), "order-ids out of order or repeated"
            live = [e.stream_version for e in events if e.stream_name == "live"]
            assert live == list(range(1, len(live) + 1)) and len(live) >= acknowledged
            for index in range(1, 40, 2):  # max-count 10: each a suffix, the newest ten always there
                name = f"old-{index}"
                kept = [e.stream_version for e in events if e.stream_name == name]
                assert kept == list(range(501 - len(kept), 501)) and len(kept) >= 10
                assert [e.stream_version for e in store.read(name)] == list(range(491, 501))
            top = store.last_order_id()
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": path}) as store:
        store.scavenge()  # run again: it finishes what the killed ones left
        names = [e.stream_name for e in store.read()]
        assert not any(n.startswith("old-") and int(n[4:]) % 2 == 0 for n in names)
        assert sum(n.startswith("old-") for n in names) == 20 * 10
        assert store.append({"stream-name": "x", "event-type": "E", "payload": {}})[0].order_id > top


def test_sqlite_file_shrinks_when_half_its_events_are_scavenged(tmp_path: Path) -> None:
    path = tmp_path / "half.db"
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}) as store:
        for index in range(20):
            store.append([{"stream-name": f"s-{index}", "event-type": "E", "payload": {"pad": "z" * 500}}] * 1000)
        for index in range(0, 20, 2):
            store.delete_stream(f"s-{index}")
        # Everything into the file first (the log otherwise holds part of it).
        store.in_writer(lambda c: c.backend._writer.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        before = path.stat().st_size
        report = store.scavenge()
        after = path.stat().st_size
    assert report.removed == 10_000
    assert after < before * 0.6, f"{before} -> {after} bytes"
