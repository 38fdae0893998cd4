"""Backup and restore throughput beside the cold replay rate, on one SQLite store, in one run.

    python -m benchmarks.backup --events 1000000

Builds a SQLite store of N events over many streams, then times: a cold replay of `__all__`
(the rate a replay client reads at), `photon backup` to a plain and a gzip file, and
`photon restore` of each into a fresh SQLite store (synchronous=FULL, the default), both in
process and through the installed command. Prints events/s and the ratio to the cold replay.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from photon.core.store import EventStore
from photon.ops.backup import backup_chunks, write_chunks
from photon.ops.backup_files import atomic_output, reading
from photon.ops.restore import cycle_collection_paused, parse_lines, restore_file


def build(path: Path, events: int, streams: int) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(path), "sqlite.synchronous": "OFF"}
    batch = 5000
    with EventStore.open(config) as store:
        for start in range(0, events, batch):
            store.append(
                [
                    {
                        "stream-name": f"stream-{n % streams:05d}",
                        "event-type": "ItemAdded",
                        "service-id": "bench",
                        "payload": {"sku": f"SKU-{n % 977}", "quantity": n % 13, "price": 19.99, "n": n},
                    }
                    for n in range(start, min(start + batch, events))
                ]
            )
        store.append_internal("__config__", "projection-registered", {"projection-name": "bench"})


def timed(label: str, run: Any) -> dict[str, Any]:
    started = time.perf_counter()
    count = run()
    seconds = time.perf_counter() - started
    return {"step": label, "events": count, "seconds": seconds, "rate": count / seconds}


def cold_replay(config: dict[str, str]) -> int:
    count = 0
    with EventStore.open(config, read_only=True) as store:
        for _item in store.subscribe("__all__", "cold"):
            count += 1
    return count


def backup_to(config: dict[str, str], target: Path) -> int:
    with EventStore.open(config, read_only=True) as store, atomic_output(target) as out:
        return write_chunks(backup_chunks(store, to_order_id=store.last_order_id()), out)


def restore_from(source: Path, target: Path, backend: str = "sqlite") -> int:
    config = (
        {"db.backend": backend, f"{backend}.path": str(target)} if backend != "memory" else {"db.backend": "memory"}
    )
    with EventStore.open(config) as store:
        return restore_file(store, source).events


def backend_append_only(source: Path, target: Path) -> int:
    """The SQLite backend bulk-loading the same events (indexes rebuilt at the end) with no parsing
    or checks: the floor of any restore."""
    with reading(source) as stream:
        records = [record for _number, record in parse_lines(stream)]
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(target)}) as store, cycle_collection_paused():
        started = time.perf_counter()
        store.backend.begin_bulk_load()  # as a restore into an empty store does
        for start in range(0, len(records), 20_000):
            store.backend.append(records[start : start + 20_000])
        store.backend.end_bulk_load(True)
        global _append_seconds
        _append_seconds = time.perf_counter() - started
    return len(records)


_append_seconds = 0.0


def command(*args: str) -> int:
    photon = str(Path(sys.executable).with_name("photon"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    result = subprocess.run([photon, *args], capture_output=True, env=env, check=True)
    words = result.stderr.decode().split()
    # "backed up N events ..." / "restored N events ..."
    return int(words[words.index("up" if args[0] == "backup" else "restored") + 1])


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        base = Path(folder)
        source = base / "source.db"
        started = time.perf_counter()
        build(source, args.events, args.streams)
        print(
            f"built {args.events} events in {args.streams} streams in {time.perf_counter() - started:.1f}s", flush=True
        )
        config = {"db.backend": "sqlite", "sqlite.path": str(source)}
        sqlite = ["-db.backend", "sqlite", "-sqlite.path"]
        rows = [
            timed("cold replay of __all__ (subscribe)", lambda: cold_replay(config)),
            timed("backup -> .jsonl (in process)", lambda: backup_to(config, base / "b.jsonl")),
            timed("backup -> .jsonl.gz (in process)", lambda: backup_to(config, base / "b.jsonl.gz")),
            timed("restore .jsonl -> sqlite (in process)", lambda: restore_from(base / "b.jsonl", base / "r1.db")),
            timed(
                "restore .jsonl.gz -> sqlite (in process)", lambda: restore_from(base / "b.jsonl.gz", base / "r2.db")
            ),
            timed(
                "restore .jsonl -> file backend (in process)",
                lambda: restore_from(base / "b.jsonl", base / "r.jsonl", "file"),
            ),
            timed(
                "restore .jsonl -> memory backend (in process)", lambda: restore_from(base / "b.jsonl", base, "memory")
            ),
            timed(
                "photon backup c.jsonl (command)",
                lambda: command("backup", str(base / "c.jsonl"), *sqlite, str(source)),
            ),
            timed(
                "photon restore c.jsonl (command)",
                lambda: command("restore", str(base / "c.jsonl"), *sqlite, str(base / "r3.db")),
            ),
        ]
        floor = timed(
            "sqlite backend.append alone (same rows)", lambda: backend_append_only(base / "b.jsonl", base / "r4.db")
        )
        floor["seconds"] = _append_seconds  # the append itself, not the parsing that feeds it
        floor["rate"] = floor["events"] / _append_seconds
        rows.append(floor)
        sizes = {name: (base / name).stat().st_size for name in ("b.jsonl", "b.jsonl.gz")}
        print(f"backup size: {sizes['b.jsonl'] / 1e6:.0f} MB plain, {sizes['b.jsonl.gz'] / 1e6:.0f} MB gzip")
        return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where to put the stores (default: the system temp folder)")
    rows = run(parser.parse_args(argv))
    replay = rows[0]["rate"]
    print(f"\n{'step':44} {'events':>9} {'seconds':>8} {'events/s':>10} {'vs cold replay':>15}")
    for row in rows:
        print(
            f"{row['step']:44} {row['events']:>9} {row['seconds']:>8.2f} {row['rate']:>10,.0f} "
            f"{row['rate'] / replay:>14.2f}x"
        )
    return rows


if __name__ == "__main__":
    main()
