"""A writer killed with SIGKILL at any moment never leads the next one to give a stream number
twice: the SQLite writer finds the highest number given without an index on the numbers
(`backends/sql/stream_numbers.py`), from the stream index's first block and the number kept by
truncations, and every event stays with its own stream."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from photon.core.store import EventStore

ROOT = Path(__file__).parent.parent


def numbers_right(path: Path) -> int:
    """No two streams share a number and every event carries its own stream's; how many streams."""
    with sqlite3.connect(path) as connection:
        found = dict(connection.execute("SELECT stream_name, stream_id FROM photon_streams WHERE stream_name != ''"))
        assert len(set(found.values())) == len(found)
        wrong = connection.execute(
            "SELECT count(*) FROM photon_events e JOIN photon_streams s ON s.stream_name = e.stream_name"
            " WHERE s.stream_id != e.stream_id"
        ).fetchone()
        orphans = connection.execute(
            "SELECT count(*) FROM photon_events e WHERE NOT EXISTS"
            " (SELECT 1 FROM photon_streams s WHERE s.stream_name = e.stream_name)"
        ).fetchone()
    assert wrong == orphans == (0,)
    return len(found)


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
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_stream_numbers_writer", str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lines.extend, args=(child.stdout or [],), daemon=True)
        reader.start()
        deadline = time.monotonic() + 20
        while not lines and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        assert lines, f"nothing acknowledged: {child.stderr.read() if child.stderr else ''}"
        time.sleep(rng.uniform(0.2, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reader.join(5)
        acknowledged = max([acknowledged, *(int(line.split()[1]) for line in lines if line.startswith("ack "))])
        streams.append(numbers_right(path))
        with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path)}, read_only=True) as store:
            assert store.last_order_id() >= acknowledged
            streams_read_their_own(store)
    assert streams == sorted(streams) and streams[-1] > streams[0]
    with sqlite3.connect(path) as connection:  # truncations happened, so the number was kept
        assert connection.execute("SELECT version < 0 FROM photon_streams WHERE stream_name = ''").fetchone() == (1,)
