"""Crash safety: a writer killed with SIGKILL at random moments loses no acknowledged event,
leaves no gap in order-ids and never leaves half a batch."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from photon.core.store import EventStore

from .crash_support import kill_while_writing


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "file"])
def test_sigkill_loses_nothing_acknowledged(backend: str, tmp_path: Path) -> None:
    path = str(tmp_path / ("store.db" if backend == "sqlite" else "store.jsonl"))
    rng = random.Random(2024)
    acknowledged: dict[str, int] = {}
    kills = 12
    for _ in range(kills):
        lines = kill_while_writing("tests.crash_writer", [backend, path], rng, (0.0, 0.4))
        for line in lines:
            if line.startswith("ack "):
                _, batch, size = line.split()
                acknowledged[batch] = int(size)

        with EventStore.open({"db.backend": backend, "sqlite.path": path, "file.path": path}) as store:
            events = list(store.read())
            assert [e.order_id for e in events] == list(range(1, len(events) + 1)), "order-ids have a gap"
            counts = Counter(e.payload["batch"] for e in events)
            sizes = {e.payload["batch"]: e.payload["size"] for e in events}
            half = {b: (n, sizes[b]) for b, n in counts.items() if n != sizes[b]}
            assert not half, f"half-written batches: {half}"
            missing = [b for b in acknowledged if b not in counts]
            assert not missing, f"{len(missing)} acknowledged batches lost"
            per_stream: dict[str, list[int]] = {}
            for event in events:
                per_stream.setdefault(event.stream_name, []).append(event.stream_version)
            for versions in per_stream.values():
                assert versions == list(range(1, len(versions) + 1))
    assert len(acknowledged) > kills
