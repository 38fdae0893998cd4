"""Core store benchmarks, side by side in one run on the same machine and settings.

    python -m benchmarks.core [--events 100000] [--repeat 3]

a. batched appends (1000 per batch) through the store vs raw sqlite3 executemany of the same
   rows into the same table, both WAL + synchronous=FULL;
b. 64 threads appending single events: group commit vs one commit per event;
c. cold read of __all__ in process vs a raw sqlite3 SELECT of the same rows;
d. the same three workloads through the eventsourcing library's SQLite recorder.

Each figure is the median of --repeat runs, each on a fresh database.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from photon.core.events import new_event_id
from photon.core.store import EventStore

BATCH = 1000
THREADS = 64


def make_events(count: int, streams: int = 100, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "stream-name": f"account-{rng.randrange(streams)}",
            "event-type": rng.choice(["Deposited", "Withdrawn", "Opened"]),
            "payload": {"amount": rng.randrange(1, 1000), "currency": "EUR", "note": "x" * rng.randrange(20, 120)},
            "service-id": "bench",
        }
        for _ in range(count)
    ]


def median_rate(runs: list[float]) -> float:
    return statistics.median(runs)


class Workdir:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="photon-bench-"))
        self.counter = 0

    def fresh(self, name: str) -> Path:
        self.counter += 1
        return self.root / f"{name}-{self.counter}.db"

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def open_store(path: Path, **settings: Any) -> EventStore:
    return EventStore.open(db_backend="sqlite", sqlite_path=str(path), sqlite_synchronous="FULL", **settings)


# -- a. batched appends ----------------------------------------------------------------------


def photon_batched(path: Path, events: list[dict[str, Any]]) -> float:
    with open_store(path) as store:
        start = time.perf_counter()
        for offset in range(0, len(events), BATCH):
            store.append(events[offset : offset + BATCH])
        elapsed = time.perf_counter() - start
    return len(events) / elapsed


def raw_rows(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows Photon would store for these events, built outside the timed part."""
    versions: dict[str, int] = {}
    numbers: dict[str, int] = {}  # each stream's number, as photon_streams gives them
    rows = []
    now = int(time.time() * 1000)
    for order_id, event in enumerate(events, start=1):
        stream = event["stream-name"]
        versions[stream] = versions.get(stream, 0) + 1
        number = numbers.setdefault(stream, len(numbers) + 1)
        event_id = new_event_id()  # the same ids Photon generates
        data = orjson.dumps(
            {"order-id": order_id, "stream-version": versions[stream], **event, "id": event_id, "event-time": now}
        )
        rows.append((order_id, stream, versions[stream], event_id, event["event-type"], now, data, number))
    return rows


def raw_connection(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def raw_schema(path: Path) -> None:
    # Create the very table Photon uses (same columns, keys and indexes), then drop Photon's writer.
    with open_store(path):
        pass


INSERT = (
    "INSERT INTO photon_events "
    "(order_id, stream_name, stream_version, event_id, event_type, event_time, data, stream_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def raw_batched(path: Path, rows: list[tuple[Any, ...]]) -> float:
    """Raw inserts of `rows` in batches, each with the category and event-type index's entries as
    Photon's writer files them (`read_index`: the same statements, when a batch takes the
    order-ids past the mark by its step): the same rows and the same index entries as Photon."""
    from photon_backends.sql import read_index

    raw_schema(path)
    connection = raw_connection(path)
    mark = read_index.stored_mark(connection)
    start = time.perf_counter()
    for offset in range(0, len(rows), BATCH):
        batch = rows[offset : offset + BATCH]
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(INSERT, batch)
        last = batch[-1][0]  # order_id
        if last - mark >= read_index.EVERY:
            for statement in read_index.STEP:
                connection.execute(statement, (mark, last))
            connection.execute(read_index.SET_MARK, (last,))
            mark = last
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return len(rows) / elapsed


# -- b. many threads, single events -------------------------------------------------------------


def threaded(append_one: Callable[[dict[str, Any]], Any], events: list[dict[str, Any]]) -> float:
    per_thread = len(events) // THREADS
    barrier = threading.Barrier(THREADS + 1)

    def work(index: int) -> None:
        mine = events[index * per_thread : (index + 1) * per_thread]
        barrier.wait()
        for event in mine:
            append_one(event)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return per_thread * THREADS / (time.perf_counter() - start)


def photon_threads(path: Path, events: list[dict[str, Any]], *, grouped: bool) -> float:
    with open_store(path, commit_batch_max=5000 if grouped else 1) as store:
        return threaded(store.append, events)


# -- c. cold read -----------------------------------------------------------------------------------


def photon_read(path: Path) -> float:
    with open_store(path) as store:
        start = time.perf_counter()
        count = 0
        for _ in store.read():
            count += 1
        return count / (time.perf_counter() - start)


def raw_read(path: Path) -> float:
    connection = raw_connection(path)
    start = time.perf_counter()
    count = 0
    for _ in connection.execute(
        "SELECT order_id, stream_name, stream_version, event_id, event_type, event_time, data "
        "FROM photon_events ORDER BY order_id"
    ):
        count += 1
    elapsed = time.perf_counter() - start
    connection.close()
    return count / elapsed


# -- d. the eventsourcing library's SQLite recorder ----------------------------------------------


def es_recorder(path: Path) -> Any:
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    datastore = SQLiteDatastore(str(path), pool_size=THREADS, max_overflow=THREADS)
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    return recorder


def es_synchronous(recorder: Any) -> int:
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        return int(cursor.fetchone()[0])


def es_stored(events: list[dict[str, Any]]) -> list[Any]:
    """Turn event dicts into the recorder's StoredEvents: the peer's share of the work Photon's
    append does inside its timed part (serialising, positioning), so it is timed too."""
    from eventsourcing.persistence import StoredEvent

    versions: dict[str, int] = {}
    stored = []
    for event in events:
        stream = event["stream-name"]
        versions[stream] = versions.get(stream, 0) + 1
        stored.append(StoredEvent(ES_IDS[stream], versions[stream], event["event-type"], orjson.dumps(event)))
    return stored


ES_IDS = {f"account-{i}": uuid.uuid5(uuid.NAMESPACE_URL, f"account-{i}") for i in range(100)}


def es_batched(path: Path, events: list[dict[str, Any]]) -> float:
    recorder = es_recorder(path)
    start = time.perf_counter()
    stored = es_stored(events)
    for offset in range(0, len(stored), BATCH):
        recorder.insert_events(stored[offset : offset + BATCH])
    elapsed = time.perf_counter() - start
    recorder.datastore.close()
    return len(stored) / elapsed


def es_threads(path: Path, events: list[dict[str, Any]]) -> float:
    from eventsourcing.persistence import StoredEvent

    recorder = es_recorder(path)
    versions: dict[str, int] = {}
    lock = threading.Lock()

    def insert(event: dict[str, Any]) -> None:
        stream = event["stream-name"]
        with lock:  # the recorder expects callers to know the next version
            versions[stream] = version = versions.get(stream, 0) + 1
        recorder.insert_events([StoredEvent(ES_IDS[stream], version, event["event-type"], orjson.dumps(event))])

    try:
        return threaded(insert, events)
    finally:
        recorder.datastore.close()


def es_read(path: Path) -> float:
    recorder = es_recorder(path)
    start = time.perf_counter()
    count = 0
    position = 1
    while True:
        page = recorder.select_notifications(position, 5000)
        count += len(page)
        if len(page) < 5000:
            break
        position = page[-1].id + 1
    elapsed = time.perf_counter() - start
    recorder.datastore.close()
    return count / elapsed


# -- the run ---------------------------------------------------------------------------------------


def run(events_count: int, repeat: int, thread_events: int) -> list[dict[str, Any]]:
    work = Workdir()
    try:
        events = make_events(events_count)
        rows = raw_rows(events)
        few = make_events(thread_events, seed=2)
        results: dict[str, list[float]] = {}

        def record(name: str, value: float) -> None:
            results.setdefault(name, []).append(value)

        try:
            import eventsourcing  # noqa: F401

            have_es = True
        except ImportError:
            have_es = False

        read_path = work.fresh("read")
        photon_batched(read_path, events)
        es_read_path = work.fresh("es-read")
        if have_es:
            es_batched(es_read_path, events)
            synchronous = es_synchronous(es_recorder(es_read_path))
            print(f"eventsourcing recorder: PRAGMA synchronous={synchronous} (2 = FULL), WAL")

        for _ in range(repeat):
            # Interleave the contenders so machine noise hits all of them alike.
            record("a photon", photon_batched(work.fresh("a"), events))
            record("a raw", raw_batched(work.fresh("a-raw"), rows))
            record("b grouped", photon_threads(work.fresh("b"), few, grouped=True))
            record("b single", photon_threads(work.fresh("b1"), few, grouped=False))
            record("c photon", photon_read(read_path))
            record("c raw", raw_read(read_path))
            if have_es:
                record("a es", es_batched(work.fresh("a-es"), events))
                record("b es", es_threads(work.fresh("b-es"), few))
                record("c es", es_read(es_read_path))

        m = {name: median_rate(values) for name, values in results.items()}
        table = [
            row("a. batched appends (1000/batch)", m["a photon"], "raw sqlite3 executemany", m["a raw"], 0.6),
            row("b. 64 threads, single events", m["b grouped"], "one commit per event", m["b single"], 5.0),
            row("c. cold read of __all__", m["c photon"], "raw sqlite3 SELECT", m["c raw"], 0.5, floor=300_000),
        ]
        if have_es:
            table += [
                row("d-a. batched appends", m["a photon"], "eventsourcing 9.5 recorder", m["a es"], 1.0),
                row("d-b. 64 threads, single events", m["b grouped"], "eventsourcing 9.5 recorder", m["b es"], 1.0),
                row("d-c. cold read", m["c photon"], "eventsourcing 9.5 recorder", m["c es"], 1.0),
            ]
        return table
    finally:
        work.close()


def row(name: str, ours: float, peer_name: str, peer: float, target: float, floor: float = 0) -> dict[str, Any]:
    ratio = ours / peer
    ok = ratio >= target and ours >= floor
    goal = f">= {target}x" + (f" and >= {floor / 1000:.0f}k/s" if floor else "")
    return {
        "workload": name,
        "photon": ours,
        "peer": peer_name,
        "peer rate": peer,
        "ratio": ratio,
        "target": goal,
        "met": ok,
    }


def print_table(table: list[dict[str, Any]]) -> None:
    print(f"{'workload':34} {'photon ev/s':>12} {'peer':28} {'peer ev/s':>12} {'ratio':>7}  target")
    for r in table:
        print(
            f"{r['workload']:34} {r['photon']:12,.0f} {r['peer']:28} {r['peer rate']:12,.0f} "
            f"{r['ratio']:6.2f}x  {r['target']} {'met' if r['met'] else 'NOT MET'}"
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events for workloads a and c")
    parser.add_argument("--thread-events", type=int, default=6400, help="events for workload b (64 threads)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (the median is shown)")
    args = parser.parse_args(argv)
    print(f"photon core benchmark: {args.events} events, {args.repeat} runs each, {os.cpu_count()} cores")
    results = run(args.events, args.repeat, args.thread_events)
    print_table(results)
    return results


if __name__ == "__main__":
    main()
