"""Reliability figures: the database server killed mid-commit, and memory under stalled readers.

``python -m benchmarks.reliability [--kills 20] [--backends redis,postgres,mongo,cassandra]``
``python -m benchmarks.reliability --memory [--events 20000] [--size 60000]``

Each backend gets its own real server (tests/servers.py) and a serving Photon (HTTP, live
subscribers over NDJSON and SSE, the `__streams__` projection) with 4 writers posting batches.
The server is SIGKILLed `--kills` times (every other kill right after it stored a commit, before
its reply arrives) and started again. A trial passes when no append got a 500, every
acknowledged event is stored, and every subscriber and the projection end exactly equal to a
cold read (tests/kill_trials.py checks it).

``--memory`` runs tests/memory_scenario.py instead: a `photon` process with four hot-cold readers
that read nothing while `--events` events of `--size` bytes are written, then one full-speed
cold replay, with the server's RSS sampled; then the four drain and must get every event exactly.
The figures are kept in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

BACKENDS = ("redis", "postgres", "mongo", "cassandra")


@contextmanager
def _redis() -> Iterator[tuple[Any, dict[str, str]]]:
    from tests.servers import RedisServer

    with RedisServer(appendonly=True) as server:
        yield server, {"db.backend": "redis", "redis.url": server.url, "redis.prefix": uuid.uuid4().hex[:10]}


@contextmanager
def _postgres() -> Iterator[tuple[Any, dict[str, str]]]:
    import psycopg

    from tests.servers import PostgresServer

    with PostgresServer() as server:
        name = f"kills_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        yield server, {"db.backend": "postgres", "postgres.url": server.dsn.rsplit("/", 1)[0] + "/" + name}


@contextmanager
def _mongo() -> Iterator[tuple[Any, dict[str, str]]]:
    from tests.servers import MongoServer

    with MongoServer(on_disk=True, sync_on_commit=True) as server:
        yield (
            server,
            {
                "db.backend": "mongo",
                "mongodb.host": server.url,
                "mongodb.database": f"kills_{uuid.uuid4().hex[:10]}",
            },
        )


@contextmanager
def _cassandra() -> Iterator[tuple[Any, dict[str, str]]]:
    from tests.servers import CassandraServer

    with CassandraServer(commitlog_sync="batch") as server:
        yield (
            server,
            {
                "db.backend": "cassandra",
                "cassandra.ip": server.host,
                "cassandra.port": str(server.port),
                "cassandra.keyspace": f"kills_{uuid.uuid4().hex[:10]}",
            },
        )


SERVERS: dict[str, Callable[[], AbstractContextManager[tuple[Any, dict[str, str]]]]] = {
    "redis": _redis,
    "postgres": _postgres,
    "mongo": _mongo,
    "cassandra": _cassandra,
}


def kill_trials(backends: list[str], kills: int) -> bool:
    from tests.kill_trials import run_kill_trials

    ok = True
    for name in backends:
        try:
            with SERVERS[name]() as (server, settings):
                report = run_kill_trials(server, settings, kills=kills, deadline=300)
            print(report.line(), flush=True)
        except AssertionError as exc:
            ok = False
            print(f"{name}: FAILED: {exc}", flush=True)
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="server kills per backend")
    parser.add_argument("--backends", default=",".join(BACKENDS), type=lambda text: text.split(","))
    parser.add_argument("--memory", action="store_true", help="run the memory scenario instead of kill trials")
    parser.add_argument("--events", type=int, default=20_000, help="--memory: events written")
    parser.add_argument("--size", type=int, default=60_000, help="--memory: bytes per event")
    args = parser.parse_args(argv)
    if args.memory:
        from tests.memory_scenario import MB, run_memory_scenario

        report = run_memory_scenario(events=args.events, size=args.size)
        print(report.line(), flush=True)
        if report.peak_anon >= 512 * MB:
            print("FAILED: the server's own memory (RssAnon) passed 512 MiB")
            sys.exit(1)
        return
    unknown = [name for name in args.backends if name not in SERVERS]
    if unknown:
        parser.error(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    ok = kill_trials(args.backends, args.kills)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
