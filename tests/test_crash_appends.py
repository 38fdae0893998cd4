"""Crash safety of appends over several streams: a writer of transfers (one atomic append to
two accounts and a ledger, each with its expected version) killed with SIGKILL at random
moments leaves every transfer whole or absent, loses none it acknowledged, and leaves every
stream's versions gapless."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from photon.core.store import EventStore

from .crash_support import kill_while_writing


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "file"])
def test_sigkill_leaves_multi_stream_appends_whole_or_absent(backend: str, tmp_path: Path) -> None:
    path = str(tmp_path / ("store.db" if backend == "sqlite" else "store.jsonl"))
    config = {"db.backend": backend, "sqlite.path": path, "file.path": path}
    rng = random.Random(19)
    acknowledged: set[str] = set()
    kills = 8
    for _ in range(kills):
        lines = kill_while_writing("tests.crash_transfer_writer", [backend, path], rng, (0.0, 0.4))
        acknowledged.update(line.split()[1] for line in lines if line.startswith("ack "))

        with EventStore.open(config) as store:
            events = list(store.read())
            assert [e.order_id for e in events] == list(range(1, len(events) + 1)), "order-ids have a gap"
            parts: dict[str, list[str]] = defaultdict(list)
            for event in events:
                parts[event.payload["transfer"]].append(event.event_type)
            half = {t: kinds for t, kinds in parts.items() if kinds != ["Debited", "Credited", "Transferred"]}
            assert not half, f"transfers not whole: {half}"
            missing = acknowledged - parts.keys()
            assert not missing, f"{len(missing)} acknowledged transfers lost"
            per_stream: dict[str, list[int]] = defaultdict(list)
            for event in events:
                per_stream[event.stream_name].append(event.stream_version)
            for versions in per_stream.values():
                assert versions == list(range(1, len(versions) + 1))
            # The tags index holds every stored transfer, and nothing of one that was not stored.
            sample = rng.sample(sorted(parts), min(20, len(parts)))
            for transfer in sample:
                assert len(list(store.read_matching([{"tags": [f"t:{transfer}"]}]))) == 3
    assert len(acknowledged) > kills
