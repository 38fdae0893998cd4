"""A server killed with SIGKILL while folding: its projections resume from the last periodic checkpoint."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from photon.core.store import EventStore
from photon.projections.checkpoints import checkpoint_key
from photon.projections.definition import spec_from_template

from .projection_helpers import caught_up, direct_fold, make_config, running

TEMPLATE = {
    "projection-name": "sum",
    "language": "hy",
    "stream-name": "a",
    "initial-value": {"sum": 0, "count": 0},
    "reduction": (
        '(fn [state event] (+= (get state "sum") (get event "payload" "n")) (+= (get state "count") 1) state)'
    ),
}

WRITER = """
import asyncio, sys
from photon.core.config import load_config
from photon.projections import ProjectionManager
from photon.core.store import EventStore

TEMPLATE = {template!r}


async def main(folder):
    config = load_config(
        {{"db.backend": "sqlite", "sqlite.path": folder + "/store.db", "parallel.projections": "1",
          "projections.path": folder + "/none", "projections.port": "0", "rest.host": "127.0.0.1",
          "projections.checkpoint.seconds": "0.1", "projections.checkpoint.events": "50"}},
        environ={{}},
    )
    store = EventStore.open(config)
    manager = ProjectionManager(store, config)
    await manager.start()
    await manager.create(TEMPLATE)
    print("ready", flush=True)
    n = 0
    while True:
        batch = [{{"stream-name": "a", "event-type": "t", "payload": {{"n": n + i}}}} for i in range(7)]
        await asyncio.to_thread(store.append, batch)
        n += 7
        await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
"""


def test_sigkill_while_folding_then_resume_equals_a_full_refold(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(template=TEMPLATE))
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
        # Killed after several periodic checkpoints: a loaded machine can take longer than the
        # 1.5 s that is plenty when idle to write the first one.
        config = make_config(tmp_path, "sqlite")
        deadline = time.monotonic() + 60
        with EventStore.open(config, read_only=True) as reader:
            while ((reader.read_checkpoint(checkpoint_key("sum")) or {}).get("order-id") or 0) <= 0:
                assert time.monotonic() < deadline, "the projection wrote no checkpoint within 60 s"
                time.sleep(0.05)
        time.sleep(0.5)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    store = EventStore.open(config)
    saved = store.read_checkpoint(checkpoint_key("sum"))
    assert saved is not None and saved["order-id"] > 0
    assert store.last_order_id() > 0

    async def resume() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            assert manager.get("sum")["resumed-from"] == saved["order-id"]
            assert manager.value("sum") == direct_fold(store, spec_from_template(TEMPLATE).to_payload())

    asyncio.run(resume())
    store.close()
