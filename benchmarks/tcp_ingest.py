"""TCP ingest through a real `photon serve` beside in-process batched appends of the same events, interleaved.

    python -m benchmarks.tcp_ingest [--events 100000] [--rounds 4] [--trees DIR,DIR]

Both sides store the same events (`benchmarks.core.make_events`) in SQLite with the same durability
(WAL, ``synchronous=FULL``: an event is acknowledged once its commit is fsynced):

- TCP: one connection to ``events.port`` of a ``photon serve`` child process, the events sent as
  pre-encoded NDJSON (1,000 lines a write, as fast as the socket takes them), one acknowledgement
  line read back per event;
- in-process: ``store.append`` of 1,000 events at a time in a child process of its own
  (`EventStore.open` on a SQLite file, the events parsed before the clock starts).

Each round runs both, TCP first in odd rounds and in-process first in even ones; each side keeps
its one store across the rounds, so both grow alike. Figures are medians of the rounds: the two
rates and their ratio (the target: TCP at least 0.8x), the server's CPU per event split by thread
(the event loop that runs the TCP front end, the writer thread, the projection worker process and
the rest), the client's CPU per event, and the in-process child's CPU per event. Thread names come
from ``py-spy dump`` when it is installed.

``--trees`` runs the server and the in-process child from each of several source trees (e.g.
``git archive`` exports of two commits, each put first on ``PYTHONPATH``), interleaved round by
round; the client always runs from this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from . import server as photon_server
from .core import BATCH, make_events
from .source_trees import source_tree
from .summary import Row, table
from .thread_cpu import ensure_py_spy, family, thread_cpu, thread_names

TARGET = 0.8
WARM_UP = 5_000
DURABILITY = "SQLite WAL, synchronous=FULL (fsync per commit)"

IN_PROCESS = r"""
import sys, time, orjson
from photon.core.store import EventStore
path, events_file, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(events_file, "rb") as f:
    events = [orjson.loads(line) for line in f.read().splitlines()]
config = {"db.backend": "sqlite", "sqlite.path": path, "sqlite.synchronous": "FULL"}
with EventStore.open(config) as store:
    cpu, wall = time.process_time(), time.perf_counter()
    for offset in range(0, len(events), batch):
        store.append(events[offset : offset + batch])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(orjson.dumps({"seconds": wall, "cpu": cpu}).decode())
"""
"""The in-process side, run by `python -c` so that it imports the tree under test."""


def ndjson(events: list[dict[str, Any]]) -> list[bytes]:
    """The events as NDJSON, `BATCH` lines to a block (one socket write each)."""
    return [
        b"".join(orjson.dumps(event) + b"\n" for event in events[offset : offset + BATCH])
        for offset in range(0, len(events), BATCH)
    ]


async def tcp_ingest(host: str, port: int, token: str, blocks: list[bytes]) -> float:
    """Send `blocks` on one connection and read one acknowledgement per line; the seconds it took.
    A refused event, or a missing acknowledgement, is an error: the figure would not be of storing."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    writer.write(orjson.dumps({"token": token}) + b"\n")
    total = sum(block.count(b"\n") for block in blocks)
    started = time.perf_counter()

    async def send() -> None:
        for block in blocks:
            writer.write(block)
            await writer.drain()

    async def receive() -> None:
        acks = 0
        while acks < total:
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise RuntimeError(f"the server closed the connection after {acks} of {total} acknowledgements")
            acks += chunk.count(b"\n")
            if b'"error"' in chunk:
                line = next(line for line in chunk.split(b"\n") if b'"error"' in line)
                raise RuntimeError(f"the server refused an event: {line.decode(errors='replace')}")

    try:
        await asyncio.gather(send(), receive())
    finally:
        writer.close()
    return time.perf_counter() - started


def in_process(store_path: Path, events_file: Path) -> dict[str, float]:
    """Seconds and CPU seconds of the in-process batched appends of the events in `events_file`."""
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(store_path), str(events_file), str(BATCH)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"the in-process appends failed:\n{out.stderr}")
    result: dict[str, float] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return result


def thread_group(pid: int, server: int, tid: int, name: str) -> str:
    """Where a thread's CPU is counted: the server's event loop, its writer, the projection
    worker process, or another thread of the server by name (numbered pool threads together)."""
    if pid != server:
        return "projection worker (process)"
    if tid == server:
        return "server: event loop (main thread: TCP front end)"
    if name == "photon-committer":
        return "server: writer (photon-committer)"
    return "server: " + re.sub(r"[_-]?\d+$", "", name)


class Side:
    """One source tree's server, its in-process store and its figures, round by round."""

    def __init__(self, tree: str | None, folder: Path) -> None:
        self.tree = tree
        self.name = Path(tree).name if tree else "this checkout"
        (folder / "server").mkdir(parents=True)
        self.store_path = folder / "in-process.db"
        with source_tree(tree):
            self.server = photon_server.Server(folder / "server")
        self.token = ""
        self.figures: dict[str, list[float]] = defaultdict(list)

    async def start(self, warm_blocks: list[bytes], warm_file: Path) -> None:
        self.token = await self.server.token()
        await tcp_ingest(self.server.host, self.server.tcp_port, self.token, warm_blocks)
        with source_tree(self.tree):
            in_process(self.store_path, warm_file)

    async def tcp(self, blocks: list[bytes], events: int) -> None:
        pids = family(self.server.proc.pid)
        before = thread_cpu(pids)
        cpu = time.process_time()
        seconds = await tcp_ingest(self.server.host, self.server.tcp_port, self.token, blocks)
        cpu = time.process_time() - cpu
        await asyncio.sleep(0.3)  # the projection worker's share of the last events
        pids = family(self.server.proc.pid)
        after = thread_cpu(pids)
        names = thread_names(pids)
        self.figures["TCP ingest, events/s"].append(events / seconds)
        self.figures["client CPU, µs/event"].append(1e6 * cpu / events)
        groups: dict[str, float] = defaultdict(float)
        for (pid, tid), spent in after.items():
            group = thread_group(pid, self.server.proc.pid, tid, names.get(tid, str(tid)))
            groups[group] += spent - before.get((pid, tid), 0.0)
        self.figures["server and worker CPU, µs/event"].append(1e6 * sum(groups.values()) / events)
        for group, spent in groups.items():
            self.figures[group + ", µs/event"].append(1e6 * spent / events)

    def in_process(self, events_file: Path, events: int) -> None:
        with source_tree(self.tree):
            result = in_process(self.store_path, events_file)
        self.figures["in-process batched appends, events/s"].append(events / result["seconds"])
        self.figures["in-process CPU, µs/event"].append(1e6 * result["cpu"] / events)

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(values) for name, values in self.figures.items()}

    def stop(self) -> None:
        self.server.stop()


async def measure(args: argparse.Namespace, folder: Path) -> list[Side]:
    events = make_events(args.events)
    blocks = ndjson(events)
    events_file = folder / "events.ndjson"
    events_file.write_bytes(b"".join(blocks))
    warm = make_events(WARM_UP, seed=3)
    warm_file = folder / "warm.ndjson"
    warm_blocks = ndjson(warm)
    warm_file.write_bytes(b"".join(warm_blocks))
    trees: list[str | None] = [t for t in args.trees.split(",") if t] or [None]
    sides: list[Side] = []
    try:
        for n, tree in enumerate(trees):
            sides.append(Side(tree, folder / f"tree-{n}"))
        for side in sides:
            await side.start(warm_blocks, warm_file)
        for round_ in range(args.rounds):
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                if round_ % 2 == 0:
                    await side.tcp(blocks, len(events))
                    side.in_process(events_file, len(events))
                else:
                    side.in_process(events_file, len(events))
                    await side.tcp(blocks, len(events))
            print(f"  round {round_ + 1} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    finally:
        for side in sides:
            side.stop()
    return sides


def rows_of(side: Side, label: str) -> list[Row]:
    m = side.medians()
    figures = dict(side.figures)
    server_runs = {name: values for name, values in figures.items() if "µs/event" in name}
    return [
        Row(f"TCP ingest, 1 connection{label}", m["TCP ingest, events/s"],
            f"in-process batched appends ({BATCH}/append, Photon)", m["in-process batched appends, events/s"],
            client="Photon TCP ingest: asyncio, NDJSON, 1,000 lines a write; in-process: store.append",
            in_flight="TCP: unbounded (socket buffers); in-process: 1 batch", durability=DURABILITY, target=TARGET,
            runs={"photon": figures["TCP ingest, events/s"], "peer": figures["in-process batched appends, events/s"]}),
        Row(f"TCP ingest: server and worker CPU per event{label}", m["server and worker CPU, µs/event"],
            "in-process batched appends: CPU per event", m["in-process CPU, µs/event"], unit="µs",
            client="CPU time from /proc, split by thread in runs", in_flight="-", durability=DURABILITY,
            higher=False, runs=server_runs),
    ]  # fmt: skip


def report(sides: list[Side]) -> str:
    medians = [side.medians() for side in sides]
    first = medians[0]
    order = ["TCP ingest, events/s", "in-process batched appends, events/s"]
    names = order + sorted({k for m in medians for k in m if k not in order}, key=lambda k: -first.get(k, 0.0))
    lines = ["| median of the rounds | " + " | ".join(side.name for side in sides) + " |"]
    lines.append("|---|" + "---:|" * len(sides))
    for name in names:
        cells = [f"{m.get(name, 0.0):,.0f}" if "events/s" in name else f"{m.get(name, 0.0):,.2f}" for m in medians]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratios = [m["TCP ingest, events/s"] / m["in-process batched appends, events/s"] for m in medians]
    lines.append("| ratio, TCP / in-process | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events each side stores per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (medians are shown)")
    parser.add_argument("--trees", default="", help="source trees to compare, comma-separated (default: this one)")
    args = parser.parse_args(argv)
    ensure_py_spy()
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="photon-bench-tcp-") as tmp:
        try:
            import uvloop

            sides = uvloop.run(measure(args, Path(tmp)))
        except ImportError:
            sides = asyncio.run(measure(args, Path(tmp)))
    rows = [row for side in sides for row in rows_of(side, f" ({side.name})" if len(sides) > 1 else "")]
    print(report(sides))
    print()
    print(table(rows))
    print(
        f"\n{args.events:,} events a round, {args.rounds} rounds; load average {before:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end ({os.cpu_count()} cores)"
    )
    return rows


if __name__ == "__main__":
    main()
