"""Instructions an `eventsourcing` insert costs through Photon embedded on SQLite, layer by layer,
counted by callgrind: figures no load disturbs.

    python -m benchmarks.es_insert_instructions [--small 2000] [--big 6000]

The inserts of `benchmarks.es_recorders` (one new aggregate's 10 events each), on a fresh store
with ``synchronous=OFF`` (no flush in the figures), each run under ``valgrind --tool=callgrind``
twice (a small and a big count of events, out of the same events made up front) and reported as
the difference of the two runs' instructions divided by the difference of their events. Every
thread is counted. The store's background log checkpoints are left out (a timer thread makes the
counts differ from run to run) and ``PYTHONHASHSEED`` is fixed, so the counts repeat. Each layer
adds one step to the one before it:

- ``raw statements``: raw ``sqlite3`` running the statements Photon's writer runs for an insert
  (`benchmarks.es_floor`'s ``raw photon``), with rows made up front;
- ``writer``: the writer's commit (`Committer._commit`) of appends all prepared up front, called
  in this thread: its Python and the SQLite work as the store's connection does it;
- ``prepare``: the store's checks and encoding of each append (`EventStore._prepare`) too;
- ``store.append``: the whole `EventStore.append`, with the hand-off to the writer thread;
- ``recorder``: the library's ``insert_events`` of `photon.eventsourcing`'s application recorder.

Compare two checkouts with ``python -m benchmarks.revisions --rounds 1 BEFORE AFTER
es_insert_instructions``. Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LAYERS = {
    "raw": "raw statements",
    "commit": "writer",
    "prepare": "prepare",
    "append": "store.append",
    "recorder": "recorder",
}
MADE = 6000
"""Events made up front in every run (at least --big): the small and big runs make the same."""


def run_layer(layer: str, count: int, folder: str) -> None:
    """The inserts of one layer (run under callgrind by `count_instructions`)."""
    import backends.sql.checkpointing as checkpointing
    from photon.core.append_waits import AppendRequest
    from photon.core.store import EventStore
    from photon.eventsourcing.mapping import encode_payload

    from .es_floor import empty_photon_store, photon_env, photon_groups, photon_statements
    from .es_recorders import factory, make_inserts

    checkpointing.LogCheckpointer.start = lambda self: None  # type: ignore[method-assign]
    inserts = make_inserts(max(MADE, count))
    taken = count // len(inserts[0])
    path = Path(folder) / "store.db"
    if layer == "recorder":
        env = photon_env(path)
        env["PHOTON_SQLITE_SYNCHRONOUS"] = "OFF"
        made = factory(env)
        recorder = made.application_recorder()
        for events in inserts[:taken]:
            recorder.insert_events(events)
        made.close()
        return
    if layer == "raw":
        rows = raw_rows(inserts)
        empty_photon_store(path)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        photon_statements(connection, photon_groups(rows)[:taken])
        connection.close()
        return
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(path), "sqlite.synchronous": "OFF"}) as store:
        appends = []
        for events in inserts:
            stream = f"eventsourcing-{events[0].originator_id}"
            batch = [{"stream-name": stream, "event-type": e.topic, "payload": encode_payload(e)} for e in events]
            appends.append((batch, {stream: "no-stream"}))
        if layer == "append":
            for batch, expected in appends[:taken]:
                store.append(batch, expected_versions=expected)
            return
        committer = store._committer
        assert committer is not None
        if layer == "commit":
            requests = [
                AppendRequest(pending, single, None, checks, condition)
                for pending, single, checks, condition in (
                    store._prepare(batch, store._options("any", expected, None), internal=False)
                    for batch, expected in appends  # all of them: the same work in both runs
                )
            ]
            for request in requests[:taken]:
                committer._commit([request])
            return
        for batch, expected in appends[:taken]:
            pending, single, checks, condition = store._prepare(
                batch,
                store._options("any", expected, None),
                internal=False,
            )
            committer._commit([AppendRequest(pending, single, None, checks, condition)])


def raw_rows(inserts: list[Any]) -> list[tuple[Any, ...]]:
    """Rows of Photon's events table for `inserts`, as Photon stores them (made up front)."""
    from photon.core.events import new_event_id

    rows = []
    order_id = 0
    for number, events in enumerate(inserts, start=1):
        stream = f"eventsourcing-{events[0].originator_id}"
        for version, stored in enumerate(events, start=1):
            order_id += 1
            event_id = new_event_id()
            data = (
                b'{"order-id":%d,"stream-version":%d,"stream-name":"%b","event-type":"%b",'
                b'"payload":{"originator-version":%d,"state":%b},"id":"%b","event-time":1764400000000}'
                % (order_id, version, stream.encode(), stored.topic.encode(), version, stored.state, event_id.encode())
            )
            rows.append((order_id, stream, version, event_id, stored.topic, 1764400000000, data, number))
    return rows


def count_instructions(layer: str, count: int) -> int:
    """Instructions of a whole run of `count` events (every thread), from callgrind."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={folder}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.es_insert_instructions",
                "--run",
                layer,
                str(count),
                folder,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        found = re.search(r"Collected : ([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None:
            sys.exit(f"callgrind run failed:\n{done.stderr[-2000:]}")
        return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000, help="events inserted in the small run")
    parser.add_argument("--big", type=int, default=MADE, help="events inserted in the big run")
    parser.add_argument("--run", nargs=3, metavar=("LAYER", "COUNT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_layer(args.run[0], int(args.run[1]), args.run[2])
        return []
    rows = []
    print(f"{'eventsourcing insert, up to the layer':40} {'instructions an event':>22}")
    for layer, name in LAYERS.items():
        per_event = (count_instructions(layer, args.big) - count_instructions(layer, args.small)) / (
            args.big - args.small
        )
        rows.append({"workload": f"eventsourcing insert up to: {name}", "instructions": round(per_event)})
        print(f"{name:40} {per_event:22,.0f}")
    return rows


if __name__ == "__main__":
    main()
