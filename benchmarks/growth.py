"""Growth: what each operation costs as the store grows, measured at several sizes in one run.

    python -m benchmarks.growth [--sizes 10000,1000000,10000000] [--backends sqlite,postgres] [--fill sql]

For each backend and size a store is filled (batches of 5,000; one stream per 10 events, so
1M streams at 10M events; a probe stream of 100 events spread evenly through the fill), then:

- batched appends: 20,000 events in batches of 1,000 onto the filled store, durability on
  (SQLite synchronous=FULL; PostgreSQL fsync at each commit);
- a read of the 100-event probe stream (median of 20 reads, ms);
- a read of 20,000 events of ``__all__`` from the middle of the store (median of 3);
- a hot-cold subscription's catch-up over the last 100,000 events, or all if fewer (median of 3;
  with its CPU an event, and on PostgreSQL the server's);
- restart: ``photon serve`` on the filled store until its HTTP API answers (projections on), and
  its RSS then, and the most RSS seen during a full cold replay of ``__all__`` over HTTP
  (a flat RSS means the replay streams rather than holds the store). RSS here is ``RssAnon``, the
  process's own memory: the file pages SQLite reads through the page cache are not counted;
- the realistic restart: once the projections have caught up and written their checkpoints,
  that server is stopped (the seconds its stop took) and started again on the same store: the
  seconds until its HTTP API answers, and until every projection has resumed (read its
  checkpoint, and is folding: no status ``loading``).

Each store is vacuumed after its fill (PostgreSQL: ``VACUUM (ANALYZE)``), before anything is
measured, rather than by autovacuum beside the measurements; the server's RSS "once caught up" is
taken after the projections report their catch-up to the head and have written their checkpoint.

The floor is measured beside Photon, interleaved batch by batch and read by read: raw
``sqlite3`` inserting the same rows with the same upsert of the streams' versions into a copy of
the filled store (same indexes, same durability), and running the stream read's statement on the
store's file, and reading the catch-up's pages of ``__all__`` with the statement Photon's page runs
(`benchmarks.growth_floor`); on PostgreSQL the same with raw ``psycopg``. Appends
and the stream read are given in CPU time too (the process's, for Photon; the thread's, for the
floor), steadier than the wall clock on a shared machine; on PostgreSQL the server's CPU is not
in them.

The filling itself is not a figure; ``--keep DIR`` keeps each size's filled SQLite store in DIR
and later runs measure a copy of it instead of filling again. ``--fill sql`` fills the PostgreSQL
stores on the server with SQL (`postgres_fill`, shape "growth": the same rows, 10M events in
minutes rather than the 50 of appends at about 3,300 events/s), after a check that a small store
filled so reads back through Photon's API as one filled by appends; its indexes are then built in
one pass each, as a restore builds them. Sizes that do not fit the time at hand can be left out;
docs/benchmarks.md says which were run. The PostgreSQL server is started here (tests/servers.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from photon.core.store import EventStore

from . import server as photon_server
from .growth_floor import Floor, PostgresFloor, SQLiteFloor

FILL_BATCH = 5000
READS = 3
"""Reads of `__all__` from the middle and catch-ups per size: the median is the figure."""
PROBE = "probe-stream"
CHECKPOINT_WAIT = 2 * 5.0 + 1
"""Seconds to let the projections write their last checkpoint after they caught up (twice the
default `projections.checkpoint.seconds`) before the settled RSS is taken."""
SETTLE_TIMEOUT = 1800.0
"""Seconds the projections have to fold a store after a restart (534 s at 10M on PostgreSQL)."""


def fill(store: EventStore, count: int) -> float:
    streams = max(count // 10, 1)
    every = max(count // 100, 1)
    started = time.perf_counter()
    written = store.last_order_id()
    while written < count:
        size = min(FILL_BATCH, count - written)
        batch = []
        for i in range(written, written + size):
            name = PROBE if i % every == every - 1 and i // every < 100 else f"s-{(i * 7919) % streams}"
            batch.append({"stream-name": name, "event-type": "filled", "payload": {"i": i, "pad": "x" * 40}})
        store.append(batch)
        written += size
    return time.perf_counter() - started


def no_server() -> float:
    return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds (user and system) of process `pid` and of its children and theirs, as now: the
    database server's own CPU, for its share of a read."""
    total, pending = 0, [pid]
    while pending:
        at = pending.pop()
        try:
            fields = Path(f"/proc/{at}/stat").read_text().rsplit(")", 1)[1].split()
            pending += [int(c) for c in Path(f"/proc/{at}/task/{at}/children").read_text().split()]
        except OSError:
            continue  # it ended meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure_store(
    config: dict[str, Any], count: int, floor: Floor | None = None, server_cpu: Callable[[], float] = no_server
) -> dict[str, float]:
    """Fill a store (unless it holds `count` events already) and measure it; with `floor`, raw
    `sqlite3` doing the same appends, stream reads and catch-up reads, interleaved with Photon's;
    `server_cpu` gives the database server's CPU seconds so far (PostgreSQL), for its share."""
    out: dict[str, float] = {}
    with EventStore.open(config) as store:
        out["fill_s"] = fill(store, count)
        head = store.last_order_id()
    if floor is not None:
        out["vacuum_s"] = floor.settle_store()
        floor.start_appends()
    try:
        with EventStore.open(config) as store:
            _measure(store, head, count, floor, out, server_cpu)
    finally:
        if floor is not None:
            floor.close()
    return out


def _measure(
    store: EventStore,
    head: int,
    count: int,
    floor: Floor | None,
    out: dict[str, float],
    server_cpu: Callable[[], float] = no_server,
) -> None:
    extra = [{"stream-name": f"s-{i % 977}", "event-type": "appended", "payload": {"i": i}} for i in range(20_000)]
    wall = cpu = floor_wall = floor_cpu = 0.0
    for offset in range(0, len(extra), 1000):
        first = store.last_order_id() + 1
        started, used = time.perf_counter(), time.process_time()
        store.append(extra[offset : offset + 1000])
        wall += time.perf_counter() - started
        cpu += time.process_time() - used
        if floor is not None:
            spent, spent_cpu = floor.append_like(first, store.last_order_id())
            floor_wall += spent
            floor_cpu += spent_cpu
    out["append_ev_s"] = len(extra) / wall
    out["append_cpu_us"] = cpu / len(extra) * 1e6
    if floor is not None:
        out["floor_append_ev_s"] = len(extra) / floor_wall
        out["floor_append_cpu_us"] = floor_cpu / len(extra) * 1e6
    times, cpus, floor_times, floor_cpus = [], [], [], []
    for _ in range(20):
        started, used = time.perf_counter(), time.thread_time()
        got = sum(1 for _ in store.read(PROBE))
        times.append((time.perf_counter() - started) * 1000)
        cpus.append((time.thread_time() - used) * 1000)
        assert got == min(100, count), got
        if floor is not None:
            spent, spent_cpu, rows = floor.read_stream(PROBE)
            assert rows == got, rows
            floor_times.append(spent * 1000)
            floor_cpus.append(spent_cpu * 1000)
    out["stream_read_ms"] = statistics.median(times)
    out["stream_read_cpu_ms"] = statistics.median(cpus)
    if floor is not None:
        out["floor_stream_read_ms"] = statistics.median(floor_times)
        out["floor_stream_read_cpu_ms"] = statistics.median(floor_cpus)
    rates = []
    for _ in range(READS):
        started = time.perf_counter()
        got = sum(1 for _ in store.read(from_order_id=head // 2, limit=20_000))
        rates.append(got / (time.perf_counter() - started))
    out["middle_read_ev_s"] = statistics.median(rates)
    last = store.last_order_id()
    start = max(1, last - 100_000)
    page = store.backend.read_page_size
    rates, cpus, server_cpus, floor_rates, floor_cpus = [], [], [], [], []
    for _ in range(READS):
        subscription = store.subscribe(from_order_id=start)
        server_used = server_cpu()
        started, used = time.perf_counter(), time.process_time()
        seen = 0
        for item in subscription:
            if type(item).__name__ == "CaughtUp":
                break
            seen += 1
        spent = time.perf_counter() - started
        rates.append(seen / spent)
        cpus.append((time.process_time() - used) / seen * 1e6)
        server_cpus.append((server_cpu() - server_used) / seen * 1e6)
        subscription.close()
        if floor is not None:
            floor_spent, floor_cpu, rows = floor.read_all(start, last, page)
            assert rows == seen, (rows, seen)
            floor_rates.append(rows / floor_spent)
            floor_cpus.append(floor_cpu / rows * 1e6)
    out["catch_up_ev_s"] = statistics.median(rates)
    out["catch_up_cpu_us"] = statistics.median(cpus)
    if server_cpu is not no_server:
        out["catch_up_server_cpu_us"] = statistics.median(server_cpus)
    if floor is not None:
        out["floor_catch_up_ev_s"] = statistics.median(floor_rates)
        out["floor_catch_up_cpu_us"] = statistics.median(floor_cpus)
    out["head"] = store.last_order_id()


def rss_kib(pid: int, kind: str = "RssAnon") -> int:
    """The process's resident memory of its own (``RssAnon``: heap, not the file pages it reads)."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(kind + r":\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def descendants(pid: int) -> list[int]:
    """The processes started by `pid` and by them (a server's projection workers), by pid."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children = [int(child) for child in task.read_text().split()]
                found.extend(children)
                todo.extend(children)
    return found


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of process `pid` so far; 0 when it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(listed: list[dict[str, Any]], head: int) -> bool:
    """Whether every projection of a `GET /api/projections` answer has folded the store up to
    `head`: it reached its catch-up target (``catch-up-ms`` is set once its position passes the
    store's head at the server's start) and its position is at `head`. A failed projection folds
    nothing more: it counts as settled. No projection listed yet: not settled (still starting).

    Not "no progress for a while": the built-in ``__streams__`` projection reports its position
    seconds apart while its state (an entry per stream) grows, and at 10M events a wait that took
    15 s without progress for the end gave up while it was still folding (docs/benchmarks.md)."""
    if not listed:
        return False
    return all(
        p.get("status") == "failed" or (p.get("catch-up-ms") is not None and (p.get("position") or 0) >= head)
        for p in listed
    )


async def projections_caught_up(
    server: photon_server.Server, token: str, head: int, timeout: float
) -> tuple[float, bool]:
    """Wait until every projection has folded the store up to `head` (`settled`), at most
    `timeout` seconds: the seconds it took, and whether they did."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        conn = await photon_server.Conn.open(server.host, server.port)
        status, body = await conn.send(
            f"GET /api/projections HTTP/1.1\r\nHost: b\r\nAuthorization: Token {token}\r\n\r\n".encode()
        )
        conn.close()
        if status == 200 and settled(orjson.loads(body), head):
            return time.perf_counter() - started, True
        await asyncio.sleep(0.5)
    return time.perf_counter() - started, False


def serve_figures(folder: Path, extra_args: list[str], head: int) -> dict[str, float]:
    """Restart time and RSS: at start, once the projections have caught up with the store (the
    built-in `__streams__` projection keeps an entry per stream: its state grows with the number
    of streams, and the server holds it), and the peak during a full cold replay over HTTP, which
    reads the store page by page and should add the same bounded amount at every size."""
    started = time.perf_counter()
    server = photon_server.Server(folder, extra_args)
    out: dict[str, float] = {"restart_s": time.perf_counter() - started, "rss_mib": rss_kib(server.proc.pid) / 1024}
    out["projections_catch_up_s"], caught_up = asyncio.run(_settle(server, head))
    if not caught_up:
        # The RSS figures below would include a projection still growing: not what they claim.
        server.stop()
        print(f"  the projections did not fold the store within {SETTLE_TIMEOUT:.0f}s: no RSS figures", file=sys.stderr)
        return out
    # The projections write their checkpoint (the state: an entry per stream) every few seconds
    # while they move, the last one just after they caught up; one written during the replay
    # counted in its RSS (171 MiB at 10M). No checkpoint is due once that one is written.
    with rss_samples(server.proc.pid) as seen:
        time.sleep(CHECKPOINT_WAIT)
    out["rss_checkpoint_peak_mib"] = max(seen)
    out["rss_settled_mib"] = rss_kib(server.proc.pid) / 1024

    async def replay() -> tuple[float, int]:
        token = await server.token()
        return await photon_server.cold_replay(server, token)

    try:
        with rss_samples(server.proc.pid) as seen:
            rate, replayed = asyncio.run(replay())
    finally:
        stopping = time.perf_counter()
        server.stop()
        out["stop_s"] = time.perf_counter() - stopping
    out.update(restart_figures(folder, extra_args))
    out["replay_ev_s"] = rate
    out["replayed"] = replayed
    out["replay_rss_peak_mib"] = max(out["rss_settled_mib"], *seen)
    out["replay_rss_added_mib"] = out["replay_rss_peak_mib"] - out["rss_settled_mib"]
    return out


def restart_figures(folder: Path, extra_args: list[str], append: int = 0) -> dict[str, float]:
    """`photon serve` started again on a store whose projections have checkpoints: the seconds
    until its HTTP API answers, and until every projection has resumed from its checkpoint; then
    the peak RSS (``VmHWM``) of the server and of its largest child (a projection worker), and
    the CPU seconds the server and its children (the workers) have used. With `append`, that many
    events are appended (in one request) and folded before the stop, so the stop finds every
    projection past its checkpoint."""
    started = time.perf_counter()
    server = photon_server.Server(folder, extra_args)
    out = {"restart_checkpointed_s": time.perf_counter() - started}
    try:
        out["resumed_s"] = asyncio.run(_resumed(server)) + out["restart_checkpointed_s"]
        out["server_peak_mib"] = rss_kib(server.proc.pid, "VmHWM") / 1024
        workers = descendants(server.proc.pid)
        out["worker_peak_mib"] = max((rss_kib(pid, "VmHWM") / 1024 for pid in workers), default=0)
        out["server_cpu_s"] = cpu_seconds(server.proc.pid)
        out["workers_cpu_s"] = sum(cpu_seconds(pid) for pid in workers)
        if append:
            asyncio.run(_append_and_fold(server, append))
    finally:
        stopping = time.perf_counter()
        server.stop()
        out["resumed_stop_s"] = time.perf_counter() - stopping
    return out


async def _append_and_fold(server: photon_server.Server, count: int) -> None:
    """Append `count` events (new streams' events, in one request) and wait until every
    projection has folded them."""
    token = await server.token()
    body = orjson.dumps([photon_server.event(i, f"appended-{uuid.uuid4().hex[:8]}") for i in range(count)])
    conn = await photon_server.Conn.open(server.host, server.port)
    status, answer = await conn.send(photon_server.post("/api/event", body, token))
    conn.close()
    if status >= 300:
        raise RuntimeError(f"the append was refused: {answer[:200]!r}")
    head = int(orjson.loads(answer)[-1]["order-id"]) if answer.startswith(b"[") else 0
    if not head:
        raise RuntimeError(f"no order-id in the append's answer: {answer[:200]!r}")
    _, done = await projections_caught_up(server, token, head, SETTLE_TIMEOUT)
    if not done:
        raise RuntimeError("the projections did not fold the appended events")


async def _resumed(server: photon_server.Server) -> float:
    """Seconds until `GET /api/projections` lists no projection still loading its checkpoint."""
    token = await server.token()
    started = time.perf_counter()
    while True:
        conn = await photon_server.Conn.open(server.host, server.port)
        status, body = await conn.send(
            f"GET /api/projections HTTP/1.1\r\nHost: b\r\nAuthorization: Token {token}\r\n\r\n".encode()
        )
        conn.close()
        if status == 200 and all(p.get("status") != "loading" for p in orjson.loads(body)):
            return time.perf_counter() - started
        if time.perf_counter() - started > SETTLE_TIMEOUT:
            raise RuntimeError("the projections did not resume from their checkpoints")
        await asyncio.sleep(0.05)


@contextmanager
def rss_samples(pid: int) -> Iterator[list[float]]:
    """The RSS (MiB) of process `pid`, sampled every 50 ms while the block runs (from its start):
    the list's `max` is the most it held then."""
    samples = [rss_kib(pid) / 1024]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            try:
                samples.append(rss_kib(pid) / 1024)
            except OSError:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        done.set()
        sampler.join()


async def _settle(server: photon_server.Server, head: int) -> tuple[float, bool]:
    return await projections_caught_up(server, await server.token(), head, timeout=SETTLE_TIMEOUT)


Target = Callable[[int], tuple[dict[str, Any], list[str], Floor | None, Callable[[], float]]]


@contextmanager
def sqlite_target(root: Path, keep: Path | None, fill_way: str = "appends") -> Iterator[Target]:
    """SQLite stores, filled by appends (`fill_way` is for PostgreSQL only)."""

    def make(size: int) -> tuple[dict[str, Any], list[str], Floor | None, Callable[[], float]]:
        folder = root / f"sqlite-{size}"
        folder.mkdir()
        path = str(folder / "bench.db")
        config = {"db.backend": "sqlite", "sqlite.path": path, "sqlite.synchronous": "FULL"}
        if keep is not None:
            kept = keep / f"sqlite-{size}.db"
            if not kept.exists():
                filling = keep / f"filling-sqlite-{size}.db"
                with EventStore.open({**config, "sqlite.path": str(filling)}) as store:
                    fill(store, size)
                checkpointed(filling)
                filling.rename(kept)
            shutil.copyfile(kept, path)
        return config, ["-sqlite.path", path], SQLiteFloor(path), no_server

    yield make


def checkpointed(path: Path) -> None:
    """Everything of a closed SQLite store in its main file, so that the file alone can be copied."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    for suffix in ("-wal", "-shm", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@contextmanager
def postgres_target(root: Path, keep: Path | None, fill_way: str = "appends") -> Iterator[Target]:
    import psycopg

    from tests.servers import PostgresServer

    from . import postgres_fill

    with PostgresServer() as server:
        if fill_way == "sql":
            took = postgres_fill.check_same_as_appends(server.dsn, size=20_000, shape="growth")
            print(f"  a store of 20,000 events filled by SQL reads back as one filled by appends ({took:.0f}s)")

        def server_cpu() -> float:
            return tree_cpu(server._procs[-1].pid)  # the postmaster: its backends are its children

        def make(size: int) -> tuple[dict[str, Any], list[str], Floor | None, Callable[[], float]]:
            name = f"growth_{size}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            dsn = server.dsn.rsplit("/", 1)[0] + "/" + name
            config = {"db.backend": "postgres", "postgres.url": dsn}
            if fill_way == "sql":
                started = time.perf_counter()
                with EventStore.open(config) as store:
                    postgres_fill.fill_photon(store, dsn, size, shape="growth")
                print(f"  postgres {size:,}: filled by SQL in {time.perf_counter() - started:.0f}s", file=sys.stderr)
            serve_args = ["-db.backend", "postgres", "-postgres.url", dsn]
            return config, serve_args, PostgresFloor(dsn), server_cpu

        yield make


TARGETS: dict[str, Callable[[Path, Path | None, str], Any]] = {
    "sqlite": sqlite_target,
    "postgres": postgres_target,
}
COSTS = [  # (key, what, cost is 1/value)
    ("append_ev_s", "batched appends (ev/s)", True),
    ("floor_append_ev_s", "the floor: raw sqlite3 / psycopg, the same rows, same store and durability (ev/s)", True),
    ("append_cpu_us", "batched appends, CPU of the process (us/event)", False),
    ("floor_append_cpu_us", "the floor's CPU (us/event)", False),
    ("stream_read_ms", "read of a 100-event stream (ms)", False),
    ("floor_stream_read_ms", "the floor: raw sqlite3 / psycopg, the read's statement on the same store (ms)", False),
    ("stream_read_cpu_ms", "read of a 100-event stream, CPU (ms)", False),
    ("floor_stream_read_cpu_ms", "the floor's CPU (ms)", False),
    ("middle_read_ev_s", "read of __all__ from the middle (ev/s)", True),
    ("catch_up_ev_s", "hot-cold catch-up (ev/s)", True),
    ("floor_catch_up_ev_s", "the floor: raw sqlite3 / psycopg, the catch-up's pages of __all__ (ev/s)", True),
    ("catch_up_cpu_us", "hot-cold catch-up, CPU of the process (us/event)", False),
    ("floor_catch_up_cpu_us", "the floor's CPU (us/event)", False),
    ("catch_up_server_cpu_us", "hot-cold catch-up, the database server's CPU (us/event)", False),
    ("restart_s", "restart of photon serve (s)", False),
    ("restart_checkpointed_s", "restart of photon serve on the store with checkpoints, until HTTP answers (s)", False),
    ("resumed_s", "restart on the store with checkpoints, until the projections resumed (s)", False),
    ("stop_s", "stop of photon serve once the projections have checkpointed (s)", False),
    ("resumed_stop_s", "stop of photon serve just after the projections resumed (s)", False),
    ("rss_mib", "server RSS (RssAnon) after start (MiB)", False),
    ("rss_settled_mib", "server RSS (RssAnon) once the projections caught up (MiB)", False),
    ("replay_rss_peak_mib", "server RSS (RssAnon) peak during a full replay (MiB)", False),
    ("replay_rss_added_mib", "server RSS (RssAnon) the full replay added (MiB)", False),
]
UNTARGETED = {
    "resumed_s",
    "stop_s",
    "resumed_stop_s",
    "rss_mib",
    "rss_settled_mib",
    "replay_rss_peak_mib",
    "floor_append_ev_s",
    "floor_append_cpu_us",
    "floor_stream_read_ms",
    "floor_stream_read_cpu_ms",
    "floor_catch_up_ev_s",
    "floor_catch_up_cpu_us",
    "catch_up_server_cpu_us",
}
"""Figures shown without a target: the projections' state grows with the streams by design."""


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="photon-growth-", dir=args.dir) as root:
        for backend in args.backends:
            with TARGETS[backend](Path(root), args.keep, args.fill) as make:
                results: dict[int, dict[str, float]] = {}
                for size in args.sizes:
                    config, serve_args, floor, server_cpu = make(size)
                    load = os.getloadavg()[0]
                    figures = measure_store(config, size, floor, server_cpu)
                    folder = Path(root) / f"serve-{backend}-{size}"
                    folder.mkdir()
                    figures.update(serve_figures(folder, serve_args, int(figures.pop("head"))))
                    figures["load"] = load
                    results[size] = figures
                    print(f"  {backend} {size:,}: {figures}", file=sys.stderr, flush=True)
                smallest = results[min(results)]
                for size, figures in sorted(results.items()):
                    for key, what, higher in COSTS:
                        if key not in figures:
                            continue
                        # Cost growth: how many times the cost at this size is the cost at the smallest.
                        growth = smallest[key] / figures[key] if higher else figures[key] / smallest[key]
                        rows.append(
                            {
                                "backend": backend,
                                "events": size,
                                "figure": what,
                                "value": figures[key],
                                "cost vs smallest": round(growth, 2),
                                "target": "<= 1.5x" if key not in UNTARGETED else "-",
                                "load": figures["load"],
                            }
                        )
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000,10000000", type=lambda t: [int(x) for x in t.split(",")])
    parser.add_argument("--backends", default="sqlite,postgres", type=lambda t: t.split(","))
    parser.add_argument("--dir", default=None, help="where the stores are made (default: the temp dir)")
    parser.add_argument(
        "--keep",
        default=None,
        type=Path,
        help="SQLite: keep each size's filled store in this folder and measure a copy of it; a later run "
        "with the same folder copies it instead of filling again",
    )
    parser.add_argument(
        "--fill",
        default="appends",
        choices=("appends", "sql"),
        help="PostgreSQL: fill the stores by appends (the default) or on the server with SQL (postgres_fill)",
    )
    args = parser.parse_args(argv)
    unknown = [b for b in args.backends if b not in TARGETS]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(TARGETS)}")
    rows = run(args)
    print("| backend | events | figure | value | cost vs smallest size | target |")
    print("|---|---:|---|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['events']:,} | {r['figure']} | {r['value']:,.2f} | {r['cost vs smallest']:.2f}x "
            f"| {r['target']} |"
        )
    return rows


if __name__ == "__main__":
    main()
