"""Instructions an in-process append costs, counted by callgrind: a figure no load disturbs.

    python -m benchmarks.append_instructions [--small 2000] [--big 6000] [--single-small 1000] [--single-big 3000]

Runs, each under ``valgrind --tool=callgrind`` and twice (a small and a big count of events),
(a) batched appends, 1,000 events an append over 100 streams, and (b) single-event appends from
one thread, on a fresh SQLite store with ``synchronous=OFF`` (so that no flush is in the figure),
and prints the difference of the two runs' instructions divided by the difference of their
events: start-up, imports and the making of the store drop out; the making of the benchmark's
events (the same on every checkout) stays in. Every thread is counted: the caller's, the writer's
and the background checkpoints. Compare two checkouts with
``python -m benchmarks.revisions --rounds 1 BEFORE AFTER append_instructions`` (the counts do not
move between rounds). Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WORKLOADS = {
    "batched": "batched appends (1000 an append), instructions an event",
    "single": "single-event appends (one thread), instructions an append",
}


def run_workload(mode: str, count: int, folder: str) -> int:
    """The appends themselves (run under callgrind by `count_instructions`); the store's last order-id."""
    from benchmarks.core import BATCH, make_events
    from photon.core.store import EventStore

    events = make_events(count)
    config = {"db.backend": "sqlite", "sqlite.path": os.path.join(folder, "i.db"), "sqlite.synchronous": "OFF"}
    with EventStore.open(config) as store:
        if mode == "batched":
            for offset in range(0, count, BATCH):
                store.append(events[offset : offset + BATCH])
        else:
            for event in events:
                store.append(event)
        return store.last_order_id()


def count_instructions(mode: str, count: int) -> int:
    """Instructions of a whole run of `count` events (every thread), from callgrind."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={folder}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.append_instructions",
                "--run",
                mode,
                str(count),
                folder,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        found = re.search(r"Collected : ([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None:
            sys.exit(f"callgrind run failed:\n{done.stderr[-2000:]}")
        return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000, help="batched events in the small run")
    parser.add_argument("--big", type=int, default=6000, help="batched events in the big run")
    parser.add_argument("--single-small", type=int, default=1000)
    parser.add_argument("--single-big", type=int, default=3000)
    parser.add_argument("--run", nargs=3, metavar=("MODE", "COUNT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_workload(args.run[0], int(args.run[1]), args.run[2])
        return []
    sizes = {"batched": (args.small, args.big), "single": (args.single_small, args.single_big)}
    rows = []
    print(f"{'workload':60} {'instructions':>14}")
    for mode, (small, big) in sizes.items():
        per_event = (count_instructions(mode, big) - count_instructions(mode, small)) / (big - small)
        rows.append({"workload": WORKLOADS[mode], "instructions": round(per_event)})
        print(f"{WORKLOADS[mode]:60} {per_event:14,.0f}")
    return rows


if __name__ == "__main__":
    main()
