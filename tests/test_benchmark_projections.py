"""The projection pool benchmark (`benchmarks.projections`) times a start until every projection
has folded the store: it waits for projections that are still loading or resuming their
checkpoints (a start resumes them in the background), and its resumed starts resume from them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks import projections as bench
from photon.core.store import EventStore
from photon.projections.manager import ProjectionManager


def test_a_start_is_waited_for_until_every_projection_runs_at_the_head(tmp_path: Path) -> None:
    bench.fill(tmp_path, 3_000)
    templates = [bench.template(f"s{i}", "python" if i % 2 else "hy") for i in range(2)]
    cfg = bench.config(tmp_path, 1)
    store = EventStore.open(cfg)
    try:
        asyncio.run(bench.register(store, cfg, templates))
        head = store.last_order_id()  # the events and the projections' definitions

        async def resumed_start() -> dict[str, tuple[str, int, int]]:
            manager = ProjectionManager(store, bench.config(tmp_path, 1))
            await manager.start()
            try:
                await bench.wait_caught_up(manager, head)
                return {n: (str(p.status), p.position, p.resumed_from) for n, p in manager.projections.items()}
            finally:
                await manager.stop()

        seen = asyncio.run(resumed_start())
        assert {name: seen[name] for name in ("s0", "s1")} == {
            "s0": ("running", head, head),
            "s1": ("running", head, head),
        }
    finally:
        store.close()
    times = bench.startup_times(tmp_path, templates, [1], 1)  # raises if a resumed start did not resume
    assert times["refold-1"] > 0 and times["resume-1"] > 0
