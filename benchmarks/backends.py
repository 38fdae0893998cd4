"""Every storage backend side by side: the same workloads, the same machine, one run.

    python -m benchmarks.backends [--events 20000] [--threads 64] [--single 6400]
                                  [--backends sqlite,postgres,redis,mongo,cassandra]

Workloads (each on a fresh, empty store of the backend):

a. batched appends: --events events, 1000 per `append`;
b. --threads threads appending --single single events in all, through group commit;
c. cold read of `__all__`: every event of (a) read back in order.

The servers are started here, through tests/servers.py, with the durability the tests use
(Redis appendfsync always, PostgreSQL fsync on commit, the MongoDB-wire server syncing every
commit, Cassandra commitlog_sync batch); ``PHOTON_TEST_*_URL`` variables point at running ones
instead. Figures are events per second, and the ratio to sqlite (the embedded default).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from photon.core.store import EventStore

from .core import BATCH, make_events


def _postgres() -> Iterator[Callable[[], dict[str, Any]]]:
    import psycopg

    from tests.servers import PostgresServer

    with PostgresServer() as server:

        def fresh() -> dict[str, Any]:
            name = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            return {"db.backend": "postgres", "postgres.url": server.dsn.rsplit("/", 1)[0] + "/" + name}

        yield fresh


def _redis() -> Iterator[Callable[[], dict[str, Any]]]:
    from tests.servers import RedisServer

    with RedisServer(appendonly=True) as server:
        yield lambda: {"db.backend": "redis", "redis.url": server.url, "redis.prefix": uuid.uuid4().hex[:10]}


def _mongo() -> Iterator[Callable[[], dict[str, Any]]]:
    from tests.servers import MongoServer

    with MongoServer(on_disk=True, sync_on_commit=True) as server:
        yield lambda: {
            "db.backend": "mongo",
            "mongodb.host": server.url,
            "mongodb.database": f"bench_{uuid.uuid4().hex[:10]}",
        }


def _cassandra() -> Iterator[Callable[[], dict[str, Any]]]:
    from tests.servers import CassandraServer

    with CassandraServer(commitlog_sync="batch") as server:
        yield lambda: {
            "db.backend": "cassandra",
            "cassandra.ip": server.host,
            "cassandra.port": str(server.port),
            "cassandra.keyspace": f"bench_{uuid.uuid4().hex[:10]}",
        }


def _sqlite() -> Iterator[Callable[[], dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="photon-bench-") as root:
        yield lambda: {
            "db.backend": "sqlite",
            "sqlite.path": str(Path(root) / f"{uuid.uuid4().hex[:10]}.db"),
            "sqlite.synchronous": "FULL",
        }


SERVERS: dict[str, Callable[[], Iterator[Callable[[], dict[str, Any]]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "redis": _redis,
    "mongo": _mongo,
    "cassandra": _cassandra,
}


def batched(config: dict[str, Any], events: list[dict[str, Any]]) -> tuple[float, float]:
    """(a) and (c) on one store: batched appends, then a cold read of everything."""
    with EventStore.open(config) as store:
        start = time.perf_counter()
        for offset in range(0, len(events), BATCH):
            store.append(events[offset : offset + BATCH])
        write = len(events) / (time.perf_counter() - start)
    with EventStore.open(config, read_only=True) as reader:
        start = time.perf_counter()
        count = sum(1 for _ in reader.read())
        read = count / (time.perf_counter() - start)
    if count != len(events):
        raise AssertionError(f"read {count} events back, wrote {len(events)}")
    return write, read


def threaded(config: dict[str, Any], events: list[dict[str, Any]], threads: int) -> float:
    """(b): many threads, one event per append; the committer groups them."""
    per_thread = len(events) // threads
    with EventStore.open(config) as store:
        barrier = threading.Barrier(threads + 1)

        def work(index: int) -> None:
            barrier.wait()
            for event in events[index * per_thread : (index + 1) * per_thread]:
                store.append(event)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        return per_thread * threads / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    events = make_events(args.events)
    singles = make_events(args.single, seed=2)
    results: list[dict[str, Any]] = []
    for name in args.backends:
        with contextlib.ExitStack() as stack:
            began = time.perf_counter()
            fresh = stack.enter_context(contextlib.contextmanager(SERVERS[name])())
            started = time.perf_counter() - began
            write, read = batched(fresh(), events)
            grouped = threaded(fresh(), singles, args.threads)
        row = {"backend": name, "batched": write, "threads": grouped, "read": read, "start_s": started}
        results.append(row)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return results


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    base = next((r for r in results if r["backend"] == "sqlite"), results[0])
    lines = [
        f"| backend | a. batched appends ({BATCH}/append) | b. {args.threads} threads, single appends "
        "| c. cold read of `__all__` |",
        "|---|---:|---:|---:|",
    ]
    for row in results:
        cells = [f"{row[key]:,.0f} ev/s ({row[key] / base[key]:.2f}x)" for key in ("batched", "threads", "read")]
        lines.append(f"| {row['backend']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events appended in batches, then read")
    parser.add_argument("--single", type=int, default=6_400, help="events appended one per call, from all threads")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--backends", default=",".join(SERVERS), type=lambda text: text.split(","))
    args = parser.parse_args(argv)
    unknown = [name for name in args.backends if name not in SERVERS]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(SERVERS)}")
    results = run(args)
    print(
        f"{args.events:,} events in batches of {BATCH}; {args.single:,} single appends from "
        f"{args.threads} threads; ratios to sqlite"
    )
    print(table(results, args))
    return results


if __name__ == "__main__":
    main()
