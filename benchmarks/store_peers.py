"""Photon's store beside what a team would run instead, and beside the floor of each backend, in one run.

    python -m benchmarks.store_peers [--events 20000] [--single 3200] [--repeat 3]
                                     [--sections sqlite,postgres,redis,cassandra]

Every contender runs in this process with the client named in its table, on the same server
(started here through tests/servers.py) and with the same durability; each round runs every
contender once on a fresh database, and the figures are medians of the rounds.

- sqlite: Photon vs raw ``sqlite3`` inserting the same rows into the same table (the limit), vs the
  eventsourcing library's SQLite recorder; WAL, ``synchronous=FULL``.
- postgres: Photon's ``postgres`` backend vs the eventsourcing library's PostgreSQL recorder vs
  Message DB (``write_message`` / ``get_stream_messages``, its SQL from ``@eventide/message-db``),
  on one PostgreSQL server with its defaults (fsync at each commit).
- redis: Photon's ``redis`` backend vs raw ``XADD`` of the same records into one Redis stream
  (``XREAD`` to read them back), ``appendfsync always``: the floor of the backend.
- cassandra: Photon's ``cassandra`` backend vs raw ``cassandra-driver`` writes of the same rows into
  the same tables at the same consistency (LOCAL_QUORUM; commit log synced before each answer),
  without the backend's checks and its commit-point lightweight transaction: the floor.

Workloads: (a) batched appends, 1,000 events per append/transaction/pipeline; (b) 64 threads
appending single events (each peer with a connection per thread where its client pools them);
(c) reading: every stream of (a) read whole (about 200 events each; ``__all__`` for Redis); on
PostgreSQL the three contenders' reads interleaved stream by stream (`interleaved_reads`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from photon.core.events import RecordedEvent
from photon.core.store import EventStore

from . import core
from .core import BATCH, THREADS, make_events, raw_rows
from .peer_servers import ensure_installed, install_message_db, message_db_version
from .summary import Row, median, table

Events = list[dict[str, Any]]


def threaded(append_one: Callable[[dict[str, Any]], Any], events: Events) -> float:
    return core.threaded(append_one, events)


def photon_batched(store: EventStore, events: Events) -> float:
    """(a): the events appended in batches of BATCH; events/s."""
    start = time.perf_counter()
    for offset in range(0, len(events), BATCH):
        store.append(events[offset : offset + BATCH])
    return len(events) / (time.perf_counter() - start)


def photon_workloads(
    config: dict[str, Any], events: Events, singles: Events, fresh: Callable[[], dict[str, Any]]
) -> dict[str, float]:
    """(a), (c) on one store, (b) on a second one."""
    streams = sorted({e["stream-name"] for e in events})
    with EventStore.open(config) as store:
        batched = photon_batched(store, events)
        start = time.perf_counter()
        count = sum(1 for stream in streams for _ in store.read(stream))
        read = count / (time.perf_counter() - start)
    assert count == len(events), (count, len(events))
    with EventStore.open(fresh()) as store:
        singles_rate = threaded(store.append, singles)
    return {"a": batched, "b": singles_rate, "c": read}


# -- eventsourcing recorders -----------------------------------------------------------------------


def es_batched(recorder: Any, events: Events) -> float:
    """(a) through the recorder: the events made into its StoredEvents and inserted in batches; events/s."""
    start = time.perf_counter()
    stored = core.es_stored(events)
    for offset in range(0, len(stored), BATCH):
        recorder.insert_events(stored[offset : offset + BATCH])
    return len(stored) / (time.perf_counter() - start)


def es_workloads(make_recorder: Callable[[], Any], events: Events, singles: Events) -> dict[str, float]:
    recorder = make_recorder()
    try:
        batched = es_batched(recorder, events)
        start = time.perf_counter()
        count = sum(len(recorder.select_events(originator)) for originator in core.ES_IDS.values())
        read = count / (time.perf_counter() - start)
        assert count == len(events), (count, len(events))
    finally:
        recorder.datastore.close()
    return {"a": batched, "b": es_singles(make_recorder, singles), "c": read}


def es_singles(make_recorder: Callable[[], Any], singles: Events) -> float:
    """(b) through a fresh recorder: THREADS threads inserting one event each time; events/s."""
    from eventsourcing.persistence import StoredEvent

    recorder = make_recorder()
    versions: dict[str, int] = {}
    lock = threading.Lock()

    def insert(event: dict[str, Any]) -> None:
        stream = event["stream-name"]
        with lock:  # the recorder expects its caller to know the next version
            versions[stream] = version = versions.get(stream, 0) + 1
        recorder.insert_events([StoredEvent(core.ES_IDS[stream], version, event["event-type"], orjson.dumps(event))])

    try:
        return threaded(insert, singles)
    finally:
        recorder.datastore.close()


# -- sqlite ----------------------------------------------------------------------------------------------


def sqlite_round(
    work: core.Workdir, events: Events, singles: Events, rows: list[tuple[Any, ...]]
) -> dict[str, dict[str, float]]:
    def fresh() -> dict[str, Any]:
        return {"db.backend": "sqlite", "sqlite.path": str(work.fresh("p")), "sqlite.synchronous": "FULL"}

    photon = photon_workloads(fresh(), events, singles, fresh)
    raw_path = work.fresh("raw")
    raw = {"a": core.raw_batched(raw_path, rows)}
    raw["c"] = raw_stream_reads(raw_path)
    es = es_workloads(lambda: core.es_recorder(work.fresh("es")), events, singles)
    return {"photon": photon, "raw": raw, "es": es}


def raw_stream_reads(path: Path) -> float:
    connection = core.raw_connection(path)
    streams = [name for (name,) in connection.execute("SELECT DISTINCT stream_name FROM photon_events")]
    start = time.perf_counter()
    count = 0
    for stream in streams:
        for _ in connection.execute(
            "SELECT order_id, stream_name, stream_version, event_id, event_type, event_time, data "
            "FROM photon_events WHERE stream_name = ? ORDER BY order_id",
            (stream,),
        ):
            count += 1
    elapsed = time.perf_counter() - start
    connection.close()
    return count / elapsed


# -- postgres --------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[Callable[[], str]]:
    import psycopg

    from tests.servers import PostgresServer

    with PostgresServer() as server:

        def fresh_dsn() -> str:
            name = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            return server.dsn.rsplit("/", 1)[0] + "/" + name

        yield fresh_dsn


def es_postgres(dsn: str) -> Any:
    import urllib.parse

    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urllib.parse.urlsplit(dsn)
    datastore = PostgresDatastore(
        parts.path.lstrip("/"), parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres", "",
        pool_size=THREADS, max_overflow=THREADS,
    )  # fmt: skip
    recorder = PostgresApplicationRecorder(datastore)
    recorder.create_table()
    return recorder


WRITE_MESSAGE = "SELECT message_store.write_message(%s, %s, %s, %s)"
GET_STREAM_MESSAGES = "SELECT * FROM get_stream_messages(%s, 0, 1000)"


def message_db_connect(dsn: str) -> Any:
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET search_path TO message_store, public")
    return conn


def message_db_params(event: dict[str, Any]) -> tuple[Any, ...]:
    return (str(uuid.uuid4()), event["stream-name"], event["event-type"], orjson.dumps(event["payload"]).decode())


def message_db_batched(conn: Any, events: Events) -> float:
    """(a): `write_message` of each event, BATCH to a transaction; events/s."""
    start = time.perf_counter()
    for offset in range(0, len(events), BATCH):
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(WRITE_MESSAGE, [message_db_params(e) for e in events[offset : offset + BATCH]])
    return len(events) / (time.perf_counter() - start)


def message_db_singles(dsn: str, singles: Events) -> float:
    """(b): THREADS threads, each on a connection of its own, one `write_message` at a time; events/s."""
    # Connections are opened before the clock starts, as the other contenders' pools are.
    barrier_events = singles[: THREADS * (len(singles) // THREADS)]
    pool = [message_db_connect(dsn) for _ in range(THREADS)]
    per = len(barrier_events) // THREADS
    index = {id(e): n // per for n, e in enumerate(barrier_events)}

    def write_pooled(event: dict[str, Any]) -> None:
        pool[index[id(event)]].execute(WRITE_MESSAGE, message_db_params(event))

    try:
        return threaded(write_pooled, barrier_events)
    finally:
        for conn in pool:
            conn.close()


def interleaved_reads(readers: dict[str, Callable[[str], int]], streams: list[str], expected: int) -> dict[str, float]:
    """(c) for every contender in the same pass: each stream read whole by each contender in turn
    (`readers`: a stream's name to the number of events or rows its read returned, as a list),
    the order turning by one from stream to stream, each read timed on its own; a contender's
    rate is its events over the sum of its reads' times. Every store is read once, cold, after
    all were written, so a moment of load on this shared machine weighs on every contender alike
    (read one contender after the other, a ratio moved by half from run to run)."""
    names = list(readers)
    spent = dict.fromkeys(names, 0.0)
    counts = dict.fromkeys(names, 0)
    for number, stream in enumerate(streams):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            start = time.perf_counter()
            counts[name] += readers[name](stream)
            spent[name] += time.perf_counter() - start
    assert all(count == expected for count in counts.values()), (counts, expected)
    return {name: counts[name] / spent[name] for name in names}


def postgres_round(fresh_dsn: Callable[[], str], events: Events, singles: Events) -> dict[str, dict[str, float]]:
    """(a) for each contender in turn, each on a database of its own; then (c) interleaved on the
    stores (a) filled (`interleaved_reads`); then (b) for each on fresh databases."""

    def fresh() -> dict[str, Any]:
        return {"db.backend": "postgres", "postgres.url": fresh_dsn()}

    def message_db_dsn() -> str:
        dsn = fresh_dsn()
        install_message_db(dsn)
        return dsn

    streams = sorted({e["stream-name"] for e in events})
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(EventStore.open(fresh()))
        photon = {"a": photon_batched(store, events)}
        recorder = es_postgres(fresh_dsn())
        stack.callback(recorder.datastore.close)
        es = {"a": es_batched(recorder, events)}
        conn = message_db_connect(message_db_dsn())
        stack.callback(conn.close)
        mdb = {"a": message_db_batched(conn, events)}
        rates = interleaved_reads(
            {
                "photon": lambda stream: len(list(store.read(stream))),
                "es": lambda stream: len(recorder.select_events(core.ES_IDS[stream])),
                "mdb": lambda stream: len(conn.execute(GET_STREAM_MESSAGES, (stream,)).fetchall()),
            },
            streams,
            len(events),
        )
    with EventStore.open(fresh()) as singles_store:
        photon["b"] = threaded(singles_store.append, singles)
    es["b"] = es_singles(lambda: es_postgres(fresh_dsn()), singles)
    mdb["b"] = message_db_singles(message_db_dsn(), singles)
    results = {"photon": photon, "es": es, "mdb": mdb}
    for name, result in results.items():
        result["c"] = rates[name]
    return results


# -- redis -------------------------------------------------------------------------------------------


def redis_round(url: str, events: Events, singles: Events, rows: list[tuple[Any, ...]]) -> dict[str, dict[str, float]]:
    import redis
    from photon_backends.redis import _record

    def fresh() -> dict[str, Any]:
        return {"db.backend": "redis", "redis.url": url, "redis.prefix": uuid.uuid4().hex[:10]}

    config = fresh()
    with EventStore.open(config) as store:
        start = time.perf_counter()
        for offset in range(0, len(events), BATCH):
            store.append(events[offset : offset + BATCH])
        batched = len(events) / (time.perf_counter() - start)
        start = time.perf_counter()
        count = sum(1 for _ in store.read())
        read = count / (time.perf_counter() - start)
    with EventStore.open(fresh()) as store:
        singles_rate = threaded(store.append, singles)
    photon = {"a": batched, "b": singles_rate, "c": read}

    client = redis.Redis.from_url(url, max_connections=THREADS * 2)
    key = f"raw-{uuid.uuid4().hex[:10]}"
    records = [_record(RecordedEvent(*row[:7])) for row in rows]
    start = time.perf_counter()
    for offset in range(0, len(records), BATCH):
        pipe = client.pipeline(transaction=True)
        for record in records[offset : offset + BATCH]:
            pipe.xadd(key, {"r": record})
        pipe.execute()
    raw_batched = len(records) / (time.perf_counter() - start)
    start = time.perf_counter()
    count, last = 0, "0"
    while True:
        answer = client.xread({key: last}, count=BATCH)
        if not answer:
            break
        entries = answer[0][1]
        count += len(entries)
        last = entries[-1][0]
    raw_read = count / (time.perf_counter() - start)
    assert count == len(records)
    single_key = f"raw-{uuid.uuid4().hex[:10]}"
    singles_rate = threaded(lambda event: client.xadd(single_key, {"r": orjson.dumps(event)}), singles)
    client.close()
    return {"photon": photon, "raw": {"a": raw_batched, "b": singles_rate, "c": raw_read}}


# -- cassandra ---------------------------------------------------------------------------------------


def cassandra_round(
    host: str, port: int, events: Events, singles: Events, rows: list[tuple[Any, ...]]
) -> dict[str, dict[str, float]]:
    def fresh() -> dict[str, Any]:
        return {
            "db.backend": "cassandra",
            "cassandra.ip": host,
            "cassandra.port": str(port),
            "cassandra.keyspace": f"bench_{uuid.uuid4().hex[:10]}",
        }

    config = fresh()
    with EventStore.open(config) as store:
        start = time.perf_counter()
        for offset in range(0, len(events), BATCH):
            store.append(events[offset : offset + BATCH])
        batched = len(events) / (time.perf_counter() - start)
    with EventStore.open(fresh()) as store:
        singles_rate = threaded(store.append, singles)
    photon = {"a": batched, "b": singles_rate}
    raw = RawCassandra(host, port)
    try:
        raw.use(f"raw_{uuid.uuid4().hex[:10]}")
        recorded = [RecordedEvent(*row[:7]) for row in rows]
        start = time.perf_counter()
        for offset in range(0, len(recorded), BATCH):
            raw.write(recorded[offset : offset + BATCH])
        raw_batched = len(recorded) / (time.perf_counter() - start)
        raw.use(f"raw_{uuid.uuid4().hex[:10]}")
        single_rows = [RecordedEvent(*row[:7]) for row in raw_rows(singles)]
        by_event = {id(e): r for e, r in zip(singles, single_rows, strict=True)}
        raw_singles = threaded(lambda event: raw.write([by_event[id(event)]]), singles)
    finally:
        raw.close()
    return {"photon": photon, "raw": {"a": raw_batched, "b": raw_singles}}


class RawCassandra:
    """The cassandra backend's rows (same tables, statements, batching and consistency), nothing else:
    events_all, stream_index, event_ids, streams, and the read index (key_index rows with their
    copies of the event, key_index_parts rows), without the checks, the head and its commit point."""

    def __init__(self, host: str, port: int) -> None:
        from cassandra import ConsistencyLevel
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile

        profile = ExecutionProfile(consistency_level=ConsistencyLevel.LOCAL_QUORUM, request_timeout=20)
        self.cluster = Cluster(
            [host], port=port, protocol_version=3, execution_profiles={EXEC_PROFILE_DEFAULT: profile}
        )
        self.session = self.cluster.connect()
        self.ps: dict[str, Any] = {}
        self.parts: dict[tuple[str, str], list[int]] = {}  # each key's current part: [first order-id, rows]

    def use(self, keyspace: str) -> None:
        from photon_backends.cassandra import _SCHEMA, _STATEMENTS

        self.session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        self.session.set_keyspace(keyspace)
        for statement in _SCHEMA:
            self.session.execute(statement)
        self.ps = {
            name: self.session.prepare(_STATEMENTS[name])
            for name in ("insert_all", "insert_index", "insert_id", "set_stream", "insert_key_index", "set_part")
        }
        self.parts = {}

    def write(self, events: list[RecordedEvent]) -> None:
        from cassandra.concurrent import execute_concurrent
        from photon_backends.cassandra import _CONCURRENCY, BUCKET, PART_ENTRIES, _Batches, _read_keys

        ps = self.ps
        stamp = time.time_ns() // 1000  # the statements carry their write timestamp, as the backend's do
        batches = _Batches()
        for event in events:
            batches.add(("all", event.order_id // BUCKET), ps["insert_all"], (event.order_id // BUCKET, *event, stamp))
        touched: dict[tuple[str, str, int], int] = {}
        for event in events:
            copy = (event.order_id, 1, *event[1:])
            for kind, key in _read_keys(event):
                part = self.parts.get((kind, key))
                if part is None or part[1] >= PART_ENTRIES:
                    part = self.parts[(kind, key)] = [event.order_id, 0]
                batches.add("keys", ps["insert_key_index"], (kind, key, part[0], *copy, stamp))
                part[1] += 1
                touched[(kind, key, part[0])] = part[1]
        for (kind, key, first), entries in touched.items():
            batches.add("keys", ps["set_part"], (kind, key, first, entries, 1, stamp))
        last: dict[str, RecordedEvent] = {}
        for event in events:
            bucket = (event.stream_version - 1) // BUCKET
            batches.add(
                "index", ps["insert_index"], (event.stream_name, bucket, event.stream_version, event.order_id, stamp)
            )
            batches.add(
                "ids", ps["insert_id"], (event.event_id, event.order_id, event.stream_name, event.stream_version, stamp)
            )
            last[event.stream_name] = event
        for name, event in last.items():
            batches.add("streams", ps["set_stream"], (name, event.stream_version, event.order_id, stamp))
        execute_concurrent(self.session, batches.statements(), concurrency=_CONCURRENCY, raise_on_first_error=True)

    def close(self) -> None:
        self.cluster.shutdown()


# -- the run -------------------------------------------------------------------------------------------

WORKLOADS = {
    "a": f"batched appends, {BATCH} per append",
    "b": f"{THREADS} threads, single events",
    "c": "reading whole streams",
}


def rows_for(
    results: list[dict[str, dict[str, float]]], peer: str, peer_name: str, backend: str, client: str,
    durability: str, targets: dict[str, float], in_flight: dict[str, str] | None = None,
) -> list[Row]:  # fmt: skip
    out = []
    for key, workload in WORKLOADS.items():
        if key not in results[0][peer] or key not in results[0]["photon"]:
            continue
        photon_runs = [r["photon"][key] for r in results]
        peer_runs = [r[peer][key] for r in results]
        flight = (in_flight or {}).get(key, {"a": "1 (one batch at a time)", "b": str(THREADS), "c": "1"}[key])
        out.append(
            Row(f"{backend}: {workload}", median(photon_runs), peer_name, median(peer_runs), client=client,
                in_flight=flight, durability=durability, target=targets.get(key),
                runs={"photon": photon_runs, "peer": peer_runs})
        )  # fmt: skip
    return out


def run(args: argparse.Namespace) -> list[Row]:
    events = make_events(args.events)
    singles = make_events(args.single, seed=2)
    rows_ = raw_rows(events)
    out: list[Row] = []
    if "sqlite" in args.sections:
        work = core.Workdir()
        try:
            results = [sqlite_round(work, events, singles, rows_) for _ in range(args.repeat)]
        finally:
            work.close()
        durability = "WAL, synchronous=FULL (fsync per commit)"
        out += rows_for(results, "raw", "raw sqlite3 executemany / SELECT, same table", "sqlite", "in process",
                        durability, {"a": 0.8})  # fmt: skip
        out += rows_for(results, "es", "eventsourcing 9.5 SQLite recorder", "sqlite", "in process", durability,
                        {"a": 1.0, "b": 1.0, "c": 1.0})  # fmt: skip
        print("  sqlite done", file=sys.stderr, flush=True)
    if "postgres" in args.sections:
        with postgres() as fresh_dsn:
            results = [postgres_round(fresh_dsn, events, singles) for _ in range(args.repeat)]
        durability = "PostgreSQL defaults (fsync at each commit)"
        out += rows_for(results, "es", "eventsourcing 9.5 PostgreSQL recorder", "postgres",
                        "in process, psycopg 3", durability, {"a": 1.0, "b": 1.0, "c": 1.0})  # fmt: skip
        out += rows_for(results, "mdb", f"Message DB {message_db_version()} write_message / get_stream_messages",
                        "postgres", "in process, psycopg 3", durability, {"a": 1.0, "b": 1.0, "c": 1.0})  # fmt: skip
        print("  postgres done", file=sys.stderr, flush=True)
    if "redis" in args.sections:
        from tests.servers import RedisServer

        with RedisServer(appendonly=True) as server:
            results = [redis_round(server.url, events, singles, rows_) for _ in range(args.repeat)]
        out += rows_for(results, "raw", "raw XADD (MULTI pipeline) / XREAD, redis-py", "redis", "in process, redis-py",
                        "appendonly yes, appendfsync always", {"a": 0.5, "b": 0.5})  # fmt: skip
        out[-1].workload = "redis: reading __all__"
        print("  redis done", file=sys.stderr, flush=True)
    if "cassandra" in args.sections:
        from tests.servers import CassandraServer

        with CassandraServer(commitlog_sync="batch") as server:
            results = [cassandra_round(server.host, server.port, events, singles, rows_) for _ in range(args.repeat)]
        peer = "raw cassandra-driver, same rows, no commit point"
        durability = "LOCAL_QUORUM, commitlog_sync batch"
        client = "in process, cassandra-driver"
        out += rows_for(results, "raw", peer, "cassandra 2.1", client, durability, {"a": 0.5, "b": 0.3})
        print("  cassandra done", file=sys.stderr, flush=True)
    return out


SECTIONS = ("sqlite", "postgres", "redis", "cassandra")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events of the batched and reading workloads")
    parser.add_argument("--single", type=int, default=3_200, help="events appended one at a time by 64 threads")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown")
    parser.add_argument("--sections", default=",".join(SECTIONS), type=lambda text: text.split(","))
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    ensure_installed()
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory():
        rows = run(args)
    print(table(rows))
    print(f"\nload average: {before:.1f} at start, {os.getloadavg()[0]:.1f} at end ({os.cpu_count()} cores)")
    return rows


if __name__ == "__main__":
    main()
