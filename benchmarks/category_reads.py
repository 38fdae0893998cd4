"""Category and event-type reads: ``python -m benchmarks.category_reads [--sizes 1000000,10000000] [--postgres]``.

For each size N, one store of N events over many streams, in which the category `target` and the
event type `Rare` each have 2,000 events spread evenly through the store. Timed, interleaved, medians:

- the read of the first 1,000 events of `__category__:target` (the SQL backends' category index);
- the read of the first 1,000 events of type `Rare` (the event-type index);
- the same category read by scanning `__all__` and keeping the category's events, which is how the
  core answers a backend without a category index (and how any reader without one must do it);
- on SQLite, the category and event-type reads of the 1,000 events from the middle of the store
  on (order-id N/2 + 1): in a file larger than the part SQLite maps (2 GiB), those pages are
  read through the readers' page cache (`sqlite.cache.mib`).

Targets: the read at the largest size within 1.5x of the read at the smallest; at least 20x faster
than the scan. With ``--postgres`` (``--postgres-sizes 1000000,3000000`` for several sizes) the same
is done on PostgreSQL, beside Message DB's
``get_category_messages('target', 1, 1000)`` on the same server over the same rows (its SQL from
the npm package @eventide/message-db, installed by scripts/install-bench-peers); target: Photon at
least 1x Message DB. The two category reads are timed alternating, PAIRS of each per size and
round after that size's scan (medians of all of them).

The PostgreSQL stores are filled on the server with SQL (`postgres_fill`: the same rows the
backend writes, 10M events in minutes rather than most of an hour), after a check that a small
store filled so reads back through Photon's API exactly as one filled by appends; ``--fill appends``
fills them as before (the backend's bulk load of appended batches; Message DB by ``COPY``). With
``--keep`` and a server given as the tests take one, the databases are named by size and a later
run reads them again without filling:

    PHOTON_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m \
        benchmarks.category_reads --sizes 0 --postgres --postgres-sizes 1000000,10000000 --repeat 3 --keep

With ``--backends redis,mongo,cassandra`` (sizes from ``--backend-sizes``, default 100,000 and
1,000,000) the same reads, plus a tags read (the first 1,000 events tagged `hot`, which DCB
conditions use), run on each server backend, each on its own server started as the tests start
them (``tests/servers.py``), beside the same category read by scanning `__all__`:

    python -m benchmarks.category_reads --sizes 100000 --backends redis,mongo,cassandra

A Cassandra store of 1M events takes a quarter of an hour to fill here by appends; by default
(``--cassandra-fill raw``) the backend's own rows are written partition by partition instead
(`cassandra_fill`, checked first against a small store filled by appends). With ``--keep`` and a
server given as the tests take one (``PHOTON_TEST_CASSANDRA=host:port``, likewise
``PHOTON_TEST_REDIS`` / ``PHOTON_TEST_MONGO``), each size's store has a fixed name, is left on
the server, and a later run that finds it holding its N events reads it without filling again:

    PHOTON_TEST_CASSANDRA=127.0.0.1:9042 python -m benchmarks.category_reads --sizes 0 \
        --backends cassandra --backend-sizes 100000,1000000 --repeat 3 --keep
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from photon.core.events import category_of
from photon.core.store import EventStore

TARGET_EVENTS = 2000
READ = 1000
BATCH = 5000


def stream_of(i: int, every: int) -> tuple[str, str]:
    """Event i's stream and type: every `every`-th event is in `target`, a shifted one is `Rare`."""
    stream = f"target-{i % 50}" if i % every == 0 else f"filler{i % 97}-{i % 10_000}"
    event_type = "Rare" if i % every == every // 2 else "Common"
    return stream, event_type


def fill(store: EventStore, size: int) -> None:
    # A bulk load (as a restore does): the backend builds its indexes once at the end, in sorted
    # passes, so a 10M-event store is built in minutes. The reads are timed afterwards.
    with store.bulk_load():
        _fill(store, size)


def _fill(store: EventStore, size: int) -> None:
    every = size // TARGET_EVENTS
    for start in range(0, size, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, size)):
            stream, event_type = stream_of(i, every)
            event = {"stream-name": stream, "event-type": event_type, "payload": {"n": i}}
            if i % every == every // 3:  # a third set of 2,000 events: the tag `hot`
                event["tags"] = ["hot"]
            batch.append(event)
        store.append(batch)


def timed(read: Callable[[], int], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        count = read()
        times.append(time.perf_counter() - started)
        assert count == READ, count
    return statistics.median(times)


def photon_reads(store: EventStore, later: int | None = None) -> dict[str, Callable[[], int]]:
    """The timed reads of `store`; with `later` (an order-id), also the category and event-type
    reads of the 1,000 events from there (in a SQLite file larger than its mapped size, the part
    read through its page cache)."""

    def category() -> int:
        return len(list(store.read("__category__:target", limit=READ)))

    def event_type() -> int:
        return len(list(store.read(event_types=["Rare"], limit=READ)))

    def scan() -> int:
        found = 0
        for event in store.read():
            if category_of(event.stream_name) == "target":
                found += 1
                if found == READ:
                    break
        return found

    def tags() -> int:
        return len(list(store.read_matching([{"tags": ["hot"]}], limit=READ)))

    reads = {"category": category, "event-type": event_type, "tags": tags, "scan": scan}
    if later is not None:
        reads["category-later"] = lambda: len(list(store.read("__category__:target", from_order_id=later, limit=READ)))
        reads["event-type-later"] = lambda: len(list(store.read(event_types=["Rare"], from_order_id=later, limit=READ)))
    return reads


@contextlib.contextmanager
def backend_configs(backend: str, keep: bool = False) -> Iterator[Callable[[int], dict[str, str]]]:
    """A server for `backend`, started as the tests start it, and a fresh store's configuration
    per size (with `keep`, the same store each run)."""
    from tests import servers

    run = "kept" if keep else uuid.uuid4().hex[:6]
    if backend == "redis":
        with servers.RedisServer() as redis:
            yield lambda size: {"db.backend": "redis", "redis.url": redis.url, "redis.prefix": f"bench-{run}-{size}"}
    elif backend == "mongo":
        with servers.MongoServer(on_disk=True) as mongo:
            yield lambda size: {
                "db.backend": "mongo",
                "mongodb.host": mongo.url,
                "mongodb.database": f"bench_{run}_{size}",
            }
    elif backend == "cassandra":
        with servers.CassandraServer(heap_mb=1024) as cassandra:
            yield lambda size: {
                "db.backend": "cassandra",
                "cassandra.ip": cassandra.host,
                "cassandra.port": str(cassandra.port),
                "cassandra.keyspace": f"bench_{run}_{size}",
            }
    else:
        raise SystemExit(f"--backends: no benchmark set-up for {backend!r} (redis, mongo, cassandra)")


def open_filled(
    config: dict[str, str],
    size: int,
    label: str,
    keep: bool,
    kept_where: str,
    filler: Callable[[EventStore, int], None] | None = None,
) -> EventStore:
    """The store of `config`, filled with `size` events (by `filler`, `fill` by default); with
    `keep`, one that already holds them (kept from an earlier run) is read as it is."""
    started = time.perf_counter()
    store = EventStore.open(config)
    held = store.backend.last_order_id()
    if keep and held == size:
        print(f"   {label} store of {size:,} events kept {kept_where}", flush=True)
        return store
    if held:
        store.close()
        raise SystemExit(f"{label}: the kept store of {size:,} {kept_where} holds {held:,} events; remove it first")
    (filler or fill)(store, size)
    print(f"   {label} store of {size:,} events built in {time.perf_counter() - started:.0f}s", flush=True)
    return store


def run_backend(
    backend: str, sizes: list[int], repeat: int, keep: bool = False, cassandra_fill: str = "raw"
) -> dict[int, dict[str, float]]:
    """Stores of each size on one server of `backend`; the reads timed interleaved, medians.

    Cassandra's stores are filled with the backend's rows written partition by partition
    (`cassandra_fill` "raw": `benchmarks.cassandra_fill`, after a check that a small store filled
    so reads back through Photon's API as one filled by appends), or by appends ("appends")."""
    filler = None
    with backend_configs(backend, keep) as config_for:
        if backend == "cassandra" and cassandra_fill == "raw":
            from . import cassandra_fill as raw

            def keyspace(name: str) -> dict[str, str]:
                return {**config_for(0), "cassandra.keyspace": f"bench_{name}"}

            print(f"   cassandra raw fill checked against appends in {raw.check_same_as_appends(keyspace):.0f}s")
            filler = raw.fill_cassandra
        stores = {}
        try:
            for size in sizes:
                stores[size] = open_filled(config_for(size), size, backend, keep, "from an earlier run", filler)
            results: dict[int, dict[str, list[float]]] = {size: {} for size in sizes}
            for _ in range(repeat):
                for size, store in stores.items():
                    for name, read in photon_reads(store, size // 2 + 1).items():
                        results[size].setdefault(name, []).append(timed(read, 1 if name == "scan" else 3))
        finally:
            for store in stores.values():
                store.close()
    return {size: {name: statistics.median(times) for name, times in r.items()} for size, r in results.items()}


def print_backend(backend: str, sizes: list[int], results: dict[int, dict[str, float]]) -> None:
    print(
        f"{backend + ' store':<16}{'category':>12}{'event-type':>12}{'tags':>12}{'scan __all__':>14}"
        f"{'index vs scan':>15}"
    )
    for size in sizes:
        r = results[size]
        print(
            f"{size:<16,}{ms(r['category']):>12}{ms(r['event-type']):>12}{ms(r['tags']):>12}{ms(r['scan']):>14}"
            f"{r['scan'] / r['category']:>14.0f}x"
        )
    small, large = results[sizes[0]], results[sizes[-1]]
    if len(sizes) > 1:
        print(
            f"   largest / smallest: category {large['category'] / small['category']:.2f}x, event-type "
            f"{large['event-type'] / small['event-type']:.2f}x, "
            f"tags {large['tags'] / small['tags']:.2f}x (target <= 1.5x)"
        )


@contextlib.contextmanager
def postgres_dsns(keep: bool = False) -> Iterator[tuple[str, Callable[[str], str]]]:
    """A PostgreSQL server (``PHOTON_TEST_POSTGRES_URL``'s, or one started as the tests start it):
    its administrative DSN, and a database per name: fresh each run, or with `keep` the database
    of that name, created when missing and left on the server."""
    import psycopg

    from tests.servers import PostgresServer

    with PostgresServer() as server:
        admin_dsn = server.dsn

        def dsn_for(name: str) -> str:
            name = f"bench_{name}" if keep else f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                    admin.execute(f'CREATE DATABASE "{name}"')
            return admin_dsn.rsplit("/", 1)[0] + "/" + name

        yield admin_dsn, dsn_for


def message_db_copy(dsn: str, size: int) -> None:
    """Message DB's `messages` filled with the benchmark's N events by ``COPY`` from the client."""
    import orjson
    import psycopg

    every = size // TARGET_EVENTS
    versions: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY message_store.messages"
                " (global_position, position, stream_name, type, data, metadata, id) FROM STDIN"
            ) as copy,
        ):
            for i in range(size):
                stream, event_type = stream_of(i, every)
                version = versions.get(stream, -1) + 1
                versions[stream] = version
                copy.write_row(
                    (i + 1, version, stream, event_type, orjson.dumps({"n": i}).decode(), None, uuid.uuid4())
                )
        conn.execute("ANALYZE message_store.messages")


def message_db_held(dsn: str) -> int:
    """How many messages the Message DB at `dsn` holds (0 when it is not installed there)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('message_store.messages')").fetchone()[0] is None:  # type: ignore[index]
            return 0
        return int(conn.execute("SELECT coalesce(max(global_position), 0) FROM message_store.messages").fetchone()[0])  # type: ignore[index]


def message_db_read(dsn: str) -> Callable[[], int]:
    """Message DB's category read of the first READ messages of `target`."""
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET search_path TO message_store, public")  # as Message DB's own clients connect

    def read() -> int:
        rows = conn.execute("SELECT * FROM message_store.get_category_messages('target', 1, %s)", (READ,)).fetchall()
        return len(rows)

    return read


def run_sqlite(
    sizes: list[int], repeat: int, keep_dir: str = "", settings: dict[str, str] | None = None
) -> dict[int, dict[str, float]]:
    """With `keep_dir`, each size's store is the file ``SIZE.db`` in it: filled when missing,
    read again as it is when it holds its N events (a 10M-event file takes minutes to fill).
    `settings`: more of the backend's settings (``sqlite.cache.mib``: 2 for SQLite's own size)."""
    results: dict[int, dict[str, list[float]]] = {}
    with contextlib.ExitStack() as scope:
        folder = keep_dir or scope.enter_context(tempfile.TemporaryDirectory())
        Path(folder).mkdir(parents=True, exist_ok=True)
        stores = {}
        for size in sizes:
            config = {"db.backend": "sqlite", "sqlite.path": str(Path(folder) / f"{size}.db"), **(settings or {})}
            stores[size] = open_filled(config, size, "sqlite", bool(keep_dir), f"in {folder}")
        try:
            results = {size: {} for size in sizes}
            for _ in range(repeat):  # interleaved: each round times every read of every store
                for size, store in stores.items():
                    for name, read in photon_reads(store, size // 2 + 1).items():
                        runs = 1 if name == "scan" else 3
                        results[size].setdefault(name, []).append(timed(read, runs))
        finally:
            for store in stores.values():
                store.close()
    return {size: {name: statistics.median(times) for name, times in r.items()} for size, r in results.items()}


def run_postgres(
    sizes: list[int], repeat: int, fill_way: str = "sql", keep: bool = False
) -> dict[int, dict[str, float]]:
    """A Photon store and a Message DB database of each size on one server; the reads timed interleaved.

    `fill_way` "sql": both filled on the server (`postgres_fill`), after a check that a small
    store filled so reads back through Photon's API as one filled by appends; "appends": the
    Photon store by the backend's bulk load of appended batches, Message DB by ``COPY``. With
    `keep`, databases named by size, reused when they hold their N events."""
    from . import postgres_fill
    from .peer_servers import ensure_installed, install_message_db

    ensure_installed()
    with postgres_dsns(keep) as (admin_dsn, dsn_for):
        if fill_way == "sql":
            took = postgres_fill.check_same_as_appends(admin_dsn)
            print(f"   a store of 20,000 events filled by SQL reads back as one filled by appends ({took:.0f}s)")
        stores: dict[int, EventStore] = {}
        mdbs: dict[int, Callable[[], int]] = {}
        try:
            for size in sizes:
                started = time.perf_counter()
                dsn = dsn_for(f"photon_{size}")
                stores[size] = store = EventStore.open({"db.backend": "postgres", "postgres.url": dsn})
                held = store.backend.last_order_id()
                if held == size:
                    print(f"   postgres store of {size:,} events kept from an earlier run", flush=True)
                elif held:
                    raise SystemExit(f"postgres: the kept store of {size:,} holds {held:,} events; drop it first")
                else:
                    if fill_way == "sql":
                        postgres_fill.fill_photon(store, dsn, size)
                    else:
                        fill(store, size)
                    print(
                        f"   postgres store of {size:,} events built in {time.perf_counter() - started:.0f}s"
                        f" ({fill_way}; {database_size(dsn)})",
                        flush=True,
                    )
                started = time.perf_counter()
                dsn = dsn_for(f"mdb_{size}")
                held = message_db_held(dsn)
                if held == size:
                    print(f"   Message DB of {size:,} messages kept from an earlier run", flush=True)
                elif held:
                    raise SystemExit(f"Message DB: the kept database of {size:,} holds {held:,}; drop it first")
                else:
                    install_message_db(dsn)
                    if fill_way == "sql":
                        postgres_fill.fill_message_db(dsn, size)
                    else:
                        message_db_copy(dsn, size)
                    print(
                        f"   Message DB of {size:,} messages built in {time.perf_counter() - started:.0f}s"
                        f" ({fill_way}; {database_size(dsn)})",
                        flush=True,
                    )
                mdbs[size] = message_db_read(dsn)
            times: dict[int, dict[str, list[float]]] = {size: {} for size in sizes}
            for _ in range(repeat):  # interleaved: each round times every read of every size
                for size, store in stores.items():
                    reads = photon_reads(store)
                    t = times[size]
                    photon_times, mdb_times = alternating(reads["category"], mdbs[size], PAIRS)
                    t.setdefault("category", []).extend(photon_times)
                    t.setdefault("message-db", []).extend(mdb_times)
                    t.setdefault("event-type", []).append(timed(reads["event-type"], 3))
                    t.setdefault("scan", []).append(timed(reads["scan"], 1))
        finally:
            for store in stores.values():
                store.close()
    return {size: {name: statistics.median(v) for name, v in t.items()} for size, t in times.items()}


PAIRS = 25
"""Reads of Photon's category and of Message DB's, alternating, per size and round: a few
milliseconds each on a shared machine, so many in turn (medians), each the other's neighbour."""


def alternating(first: Callable[[], int], second: Callable[[], int], pairs: int) -> tuple[list[float], list[float]]:
    """The times of `pairs` reads of each, one after the other, which goes first alternating."""
    times: tuple[list[float], list[float]] = ([], [])
    for pair in range(pairs):
        for which in (0, 1) if pair % 2 == 0 else (1, 0):
            read = (first, second)[which]
            started = time.perf_counter()
            count = read()
            times[which].append(time.perf_counter() - started)
            assert count == READ, count
    return times


def database_size(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return str(conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0])  # type: ignore[index]


def print_postgres(sizes: list[int], results: dict[int, dict[str, float]]) -> None:
    print(
        f"{'postgres store':<16}{'category':>12}{'Message DB':>12}{'event-type':>12}{'scan __all__':>14}"
        f"{'vs Message DB':>15}{'index vs scan':>15}"
    )
    for size in sizes:
        r = results[size]
        print(
            f"{size:<16,}{ms(r['category']):>12}{ms(r['message-db']):>12}{ms(r['event-type']):>12}"
            f"{ms(r['scan']):>14}{r['message-db'] / r['category']:>14.2f}x{r['scan'] / r['category']:>14.0f}x"
        )
    if len(sizes) > 1:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"   largest / smallest: category {large['category'] / small['category']:.2f}x, event-type "
            f"{large['event-type'] / small['event-type']:.2f}x, Message DB "
            f"{large['message-db'] / small['message-db']:.2f}x (target <= 1.5x); vs Message DB >= 1x; "
            f"index vs scan >= 20x"
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="store sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL (largest size) beside Message DB")
    parser.add_argument("--postgres-size", type=int, default=1_000_000, help="the PostgreSQL store size")
    parser.add_argument("--postgres-sizes", default="", help="several PostgreSQL sizes, comma-separated (overrides)")
    parser.add_argument("--backends", default="", help="server backends to run too: redis,mongo,cassandra")
    parser.add_argument("--backend-sizes", default="100000,1000000", help="their store sizes, comma-separated")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="server backends and PostgreSQL: fixed store names, left filled and read again next run",
    )
    parser.add_argument(
        "--sqlite-keep",
        default="",
        metavar="DIR",
        help="SQLite: the stores as files SIZE.db in DIR, filled when missing and read again next run",
    )
    parser.add_argument(
        "--sqlite-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="SQLite: a setting of the stores (repeatable), e.g. sqlite.cache.mib=2 for SQLite's own cache size",
    )
    parser.add_argument(
        "--fill",
        choices=("sql", "appends"),
        default="sql",
        help="PostgreSQL: fill the stores on the server with SQL (checked against appends first), or by appends",
    )
    parser.add_argument(
        "--cassandra-fill",
        choices=("raw", "appends"),
        default="raw",
        help="Cassandra: write the backend's rows partition by partition (checked against appends first), or append",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"== category and event-type reads of {READ:,} events; load average {os.getloadavg()[0]:.2f}")
    backend_sizes = [int(s) for s in args.backend_sizes.split(",")]
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print_backend(
            backend, backend_sizes, run_backend(backend, backend_sizes, args.repeat, args.keep, args.cassandra_fill)
        )
        print(f"   load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.postgres:
        pg_sizes = [int(x) for x in (args.postgres_sizes or str(args.postgres_size)).split(",")]
        print_postgres(pg_sizes, run_postgres(pg_sizes, args.repeat, args.fill, args.keep))
        print(f"   load average {os.getloadavg()[0]:.2f}", flush=True)
    if not sizes or sizes == [0]:
        return
    settings = dict(setting.split("=", 1) for setting in args.sqlite_setting)
    if settings:
        print(f"   sqlite settings: {settings}")
    results = run_sqlite(sizes, args.repeat, args.sqlite_keep, settings)
    print(f"{'sqlite store':<16}{'category':>12}{'event-type':>12}{'scan __all__':>14}{'index vs scan':>15}")
    for size in sizes:
        r = results[size]
        print(
            f"{size:<16,}{ms(r['category']):>12}{ms(r['event-type']):>12}{ms(r['scan']):>14}"
            f"{r['scan'] / r['category']:>14.0f}x"
        )
    print(f"{'later half':<16}{'category':>12}{'event-type':>12}   (the 1,000 events from order-id N/2 + 1)")
    for size in sizes:
        r = results[size]
        print(f"{size:<16,}{ms(r['category-later']):>12}{ms(r['event-type-later']):>12}")
    small, large = results[sizes[0]], results[sizes[-1]]
    print(
        f"largest / smallest: category {large['category'] / small['category']:.2f}x, "
        f"event-type {large['event-type'] / small['event-type']:.2f}x (target <= 1.5x); "
        f"later half {large['category-later'] / small['category-later']:.2f}x, "
        f"{large['event-type-later'] / small['event-type-later']:.2f}x; index vs scan >= 20x"
    )


if __name__ == "__main__":
    main()
