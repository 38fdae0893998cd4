"""The memory a projection checkpoint of a large state takes to write, on SQLite and PostgreSQL.

    python -m benchmarks.checkpoint_memory [--entries 1000000] [--backends sqlite,postgres]
        [--rounds 3] [--trees BEFORE,AFTER]

The state is the built-in ``__streams__`` projection's at the growth benchmark's 10M events: an
entry per stream (1M), each as that projection keeps it. A fresh process per write holds the
state's JSON as the server does (``Projection.state_json``), with the rest of its heap given back
(``malloc_trim``), then writes the checkpoint as the server's checkpointer does
(`photon.projections.checkpoints.write_checkpoint` of a `Checkpoint` whose state is that JSON as
the checkpointer hands it over: a `StateJSON`, or in trees before it an ``orjson.Fragment``), in
a thread of its own. Figures: the process's peak resident memory during the write above what it
held before (``VmHWM`` after the peak is reset through ``/proc/self/clear_refs``, less ``VmRSS``
before), what it still holds after, the write's seconds, and that the checkpoint reads back
equal. With ``--trees`` each write runs in a process with that source tree first on
``PYTHONPATH``, the trees alternating round by round. The PostgreSQL server is started here
(tests/servers.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from .source_trees import source_tree

CHILD = r"""
import ctypes, gc, sys, threading, time, orjson
from photon.core.store import EventStore
from photon.projections.checkpoints import Checkpoint, read_checkpoint, write_checkpoint
try:  # what the server's checkpointer hands over, in each tree
    from photon.projections.checkpoints import StateJSON as held
except ImportError:
    held = orjson.Fragment

config, entries = orjson.loads(sys.argv[1]), int(sys.argv[2])


def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_state():
    return {
        f"s-{i}": {
            "stream-name": f"s-{i}",
            "total-events": 10,
            "schemas": {"__unversioned__": {"i": "number", "pad": "string"}},
            "schema-events": {"__unversioned__": 10},
        }
        for i in range(entries)
    }


state_json = orjson.dumps(make_state())
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
store = EventStore.open(config)
write_checkpoint(store, "warm", Checkpoint("d" * 64, 1, 1, 1, 0))  # connections made, statements ready
checkpoint = Checkpoint("d" * 64, 10_000_000, 10_000_000, 10_000_000, held(state_json))
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # VmHWM from here
took = []


def write():
    started = time.perf_counter()
    write_checkpoint(store, "__streams__", checkpoint)
    took.append(time.perf_counter() - started)


writer = threading.Thread(target=write)
writer.start()
writer.join()
peak, after = status("VmHWM"), status("VmRSS")
saved = read_checkpoint(store, "__streams__")
same = saved is not None and orjson.dumps(saved.state) == state_json and saved.order_id == 10_000_000
store.close()
print(orjson.dumps({"state_mib": len(state_json) / 2**20, "write_s": took[0], "peak_added_mib": peak - before,
                    "kept_after_mib": after - before, "round_trips": same}).decode())
"""


def measure(tree: str | None, config: dict[str, Any], entries: int) -> dict[str, Any]:
    """One write in a fresh process (of `tree`, None: this checkout)."""
    with source_tree(tree):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, orjson.dumps(config).decode(), str(entries)],
            cwd=tree or None,
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError(f"checkpoint write failed in {tree or 'this checkout'}:\n{out.stderr}")
    found: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return found


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="streams in the state (default 1M)")
    parser.add_argument("--backends", default="sqlite,postgres", type=lambda t: t.split(","))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trees", default="", help="source trees to compare, comma-separated")
    args = parser.parse_args(argv)
    trees: list[str | None] = [t for t in args.trees.split(",") if t] or [None]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="photon-checkpoint-memory-") as root:
        for backend in args.backends:
            with _backend_configs(backend, Path(root)) as make_config:
                runs: dict[str | None, list[dict[str, Any]]] = {t: [] for t in trees}
                for round_ in range(args.rounds):
                    for tree in trees if round_ % 2 == 0 else trees[::-1]:
                        got = measure(tree, make_config(), args.entries)
                        if not got["round_trips"]:
                            raise AssertionError(f"the checkpoint did not read back equal ({tree}): {got}")
                        runs[tree].append(got)
                        print(f"  {backend} {tree or 'this checkout'}: {got} (load {os.getloadavg()[0]:.1f})")
                for tree in trees:
                    row: dict[str, Any] = {"backend": backend, "tree": os.path.basename(tree or "this checkout")}
                    for figure in ("state_mib", "write_s", "peak_added_mib", "kept_after_mib"):
                        row[figure] = round(statistics.median(run[figure] for run in runs[tree]), 2)
                    rows.append(row)
    print(f"\n| median of {args.rounds} | state (MiB) | write (s) | peak RSS added (MiB) | RSS kept after (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['backend']}, {row['tree']} | {row['state_mib']:,.1f} | {row['write_s']:.2f} "
            f"| {row['peak_added_mib']:,.1f} | {row['kept_after_mib']:,.1f} |"
        )
    return rows


class _backend_configs:
    """A fresh store's configuration per write: a new SQLite file, or a new PostgreSQL database on
    a server started for the run."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend, self.root, self.count = backend, root, 0
        self.server: Any = None

    def __enter__(self) -> Any:
        if self.backend == "postgres":
            from tests.servers import PostgresServer

            self.server = PostgresServer().__enter__()
        elif self.backend != "sqlite":
            raise SystemExit(f"unknown backend {self.backend!r}: sqlite or postgres")
        return self.make

    def make(self) -> dict[str, Any]:
        self.count += 1
        if self.server is None:
            return {"db.backend": "sqlite", "sqlite.path": str(self.root / f"store-{self.count}.db")}
        import psycopg

        name = f"checkpoint_memory_{self.count}"
        with psycopg.connect(self.server.dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return {"db.backend": "postgres", "postgres.url": self.server.dsn.rsplit("/", 1)[0] + "/" + name}

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.__exit__(*exc)


if __name__ == "__main__":
    main()
