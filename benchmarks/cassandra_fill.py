"""Filling the category-read benchmark's Cassandra stores with the backend's own rows, written
straight through the driver, partition by partition.

Through the backend's appends a store of 10M events takes about 2.5 hours to fill on this
machine's Cassandra 2.1 node: each append of 5,000 events writes about 6 rows an event in
unlogged batches that span many partitions (its ``stream_index``, ``event_ids`` and ``streams``
batches), which the node takes at about 10,000 rows a second, against about 27,000 for batches of
one partition's rows (docs/benchmarks.md, "Cassandra category and event-type reads at 10M").
Here the same rows are written grouped by partition, in batches of one partition's rows: each
event's ``events_all`` row, its ``stream_index`` and ``event_ids`` rows and its ``key_index`` rows
with their copies of the event, each key's ``key_index_parts`` rows, and each stream's ``streams``
row once, with its last version; the rows alone in their partition go in batches of 100 spanning
partitions (one request a batch rather than a row: 1.6x the appends' rate, against 0.4x with a
request a row). The ``key_index`` parts and their rows are made by the backend's own
`_add_key_index_rows`, every write carries a timestamp from the backend's own clock (`_stamp`,
below the ceiling the head names) and the key-index rows the writer's epoch, and the head is
moved by the backend's lightweight transaction once every row is written: the store is then the
one the appends would have left, but for the ids and times, which follow `postgres_fill`
(ascending UUIDv7 text, one millisecond a batch of `BATCH` events).

`check_same_as_appends` fills a small store both ways on one server and compares what Photon's
API reads back; `category_reads` runs it before a raw fill, so the figures stay honest.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from photon.core.events import RecordedEvent
from photon.core.store import EventStore

from .postgres_fill import BASE_MILLIS, BATCH, TARGET_EVENTS, comparable

CHUNK = 50_000
"""Events made and written in one round: their rows, grouped by partition."""
ROWS_PER_BATCH = 100
BATCH_BYTES = 40_000
CONCURRENCY = 96


def event_id(i: int, millis: int) -> str:
    """Event i's id in the layout of `photon.core.events.new_event_ids`, as `postgres_fill` makes it."""
    return f"{millis >> 16:08x}-{millis & 0xFFFF:04x}-7a5c-9e31-{i:012x}"


def events(start: int, end: int, size: int, versions: dict[str, int]) -> list[RecordedEvent]:
    """The benchmark's events start..end-1 of a store of `size` (as `category_reads.fill` makes
    them), stored as the core stores them: order-id i + 1, the stream's next version."""
    from .category_reads import stream_of

    every = size // TARGET_EVENTS
    made = []
    for i in range(start, end):
        stream, event_type = stream_of(i, every)
        version = versions[stream] = versions.get(stream, 0) + 1
        millis = BASE_MILLIS + i // BATCH
        ident = event_id(i, millis)
        tags = b',"tags":["hot"]' if i % every == every // 3 else b""
        data = (
            b'{"order-id":%d,"stream-version":%d,"stream-name":%b,"event-type":%b,"payload":{"n":%d}%b,"id":"%b","event-time":%d}'
            % (
                i + 1,
                version,
                orjson.dumps(stream),
                orjson.dumps(event_type),
                i,
                tags,
                ident.encode(),
                millis,
            )
        )
        made.append(RecordedEvent(i + 1, stream, version, ident, event_type, millis, data))
    return made


class _ByPartition:
    """Statements gathered by table and partition (the `add` of the backend's `_Batches`)."""

    def __init__(self) -> None:
        self.groups: dict[Any, list[tuple[Any, Sequence[Any]]]] = defaultdict(list)

    def add(self, group: Any, statement: Any, params: Sequence[Any]) -> None:
        # The backend's groups name a table only; the partition is the key's leading columns.
        partition = tuple(params[:3]) if len(params) == 12 else tuple(params[:2])
        self.groups[(id(statement), partition)].append((statement, params))


def _batches(groups: Iterable[list[tuple[Any, Sequence[Any]]]]) -> Iterator[tuple[Any, Sequence[Any]]]:
    """Unlogged batches of one partition's rows each, within the backend's bounds."""
    from cassandra.query import BatchStatement, BatchType

    singles: list[tuple[Any, Sequence[Any]]] = []
    for rows in groups:
        if len(rows) == 1:
            singles.append(rows[0])
            continue
        batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
        for statement, params in rows:
            weight = 64 + sum(len(p) for p in params if isinstance(p, (bytes, str)))
            if len(batch) >= ROWS_PER_BATCH or (len(batch) and size + weight > BATCH_BYTES):
                yield batch, ()
                batch, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0
            batch.add(statement, params)
            size += weight
        yield batch, ()
    # Rows alone in their partition (event ids, most streams' index rows and stream rows) go in
    # batches spanning partitions: on one node each still costs the node one mutation, but the
    # driver and the node one request a batch rather than a row.
    for at in range(0, len(singles), ROWS_PER_BATCH):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, params in singles[at : at + ROWS_PER_BATCH]:
            batch.add(statement, params)
        yield batch, ()


def _write(backend: Any, statements: Iterable[tuple[Any, Sequence[Any]]]) -> None:
    from cassandra.concurrent import execute_concurrent

    for ok, result in execute_concurrent(
        backend._session, statements, concurrency=CONCURRENCY, raise_on_first_error=True, results_generator=True
    ):
        if not ok:
            raise result


def fill_cassandra(store: EventStore, size: int, progress: bool = True) -> None:
    """Fill the empty Cassandra `store` (open for writing) with the benchmark's `size` events."""
    from photon_backends.cassandra import BUCKET, HEAD, _read_keys

    backend: Any = store.backend
    if backend.last_order_id():
        raise ValueError("fill_cassandra needs an empty store")
    ps = backend._ps
    versions: dict[str, int] = {}
    last: dict[str, int] = {}
    started = time.perf_counter()
    for start in range(0, size, CHUNK):
        chunk = events(start, min(start + CHUNK, size), size, versions)
        stamp = backend._stamp()
        rows = _ByPartition()
        for event in chunk:
            rows.groups[("all", event.order_id // BUCKET)].append(
                (ps["insert_all"], (event.order_id // BUCKET, *event, stamp))
            )
            bucket = (event.stream_version - 1) // BUCKET
            rows.groups[("index", event.stream_name, bucket)].append(
                (ps["insert_index"], (event.stream_name, bucket, event.stream_version, event.order_id, stamp))
            )
            last[event.stream_name] = event.order_id
        backend._load_parts({key for event in chunk for key in _read_keys(event)}, start)
        backend._add_key_index_rows(rows, chunk, stamp)
        ids = [(ps["insert_id"], (e.event_id, e.order_id, e.stream_name, e.stream_version, stamp)) for e in chunk]
        _write(backend, _batches([*rows.groups.values(), *([row] for row in ids)]))
        if progress and (start // CHUNK) % 20 == 19:
            done = start + len(chunk)
            print(
                f"   cassandra raw fill: {done:,} of {size:,} events, {done / (time.perf_counter() - started):,.0f}/s",
                flush=True,
            )
    stamp = backend._stamp()
    streams = [[(ps["set_stream"], (stream, versions[stream], order_id, stamp))] for stream, order_id in last.items()]
    _write(backend, _batches(streams))
    moved = backend._run("move_head", (size, HEAD, 0, backend._token))[0]
    if not moved[0]:
        raise RuntimeError(f"cassandra raw fill: the head did not move from 0 (it is at {moved.last_order_id})")
    backend._head = size


def check_same_as_appends(config_for: Any, size: int = 20_000) -> float:
    """Fill a store of `size` events by the benchmark's appends and another by `fill_cassandra`
    (`config_for(name)`: a fresh keyspace's configuration), and compare what Photon's API reads
    back from both: `__all__`, the category, the event type, the tags read, two streams, the
    stream list, and the events found by id. Raises AssertionError at the first difference;
    returns the seconds it took."""
    from . import category_reads

    read = category_reads.READ
    reads = (
        lambda s: list(s.read()),
        lambda s: list(s.read("__category__:target", limit=read)),
        lambda s: list(s.read("__category__:target", from_order_id=size // 2, limit=read)),
        lambda s: list(s.read(event_types=["Rare"], limit=read)),
        lambda s: list(s.read_matching([{"tags": ["hot"]}], limit=read)),
        lambda s: list(s.read("target-10")),
        lambda s: list(s.read("filler5-5")),
    )
    started = time.perf_counter()
    run = uuid.uuid4().hex[:6]
    appended = EventStore.open(config_for(f"check_appends_{run}"))
    loaded = EventStore.open(config_for(f"check_raw_{run}"))
    try:
        category_reads.fill(appended, size)
        fill_cassandra(loaded, size, progress=False)
        loaded.close()
        loaded = EventStore.open(config_for(f"check_raw_{run}"))
        assert loaded.last_order_id() == appended.last_order_id() == size
        for one in reads:
            a, b = one(appended), one(loaded)
            assert len(a) == len(b) > 0, (len(a), len(b))
            for x, y in zip(a, b, strict=True):
                assert comparable(x) == comparable(y), (x, y)
                assert len(x.data) == len(y.data), (x, y)
        assert sorted(appended.backend.streams()) == sorted(loaded.backend.streams())
        stored = list(loaded.read(limit=300))
        found = loaded.backend.events_by_id([e.event_id for e in stored])
        assert [found[e.event_id] for e in stored] == stored
        versions = loaded.backend.stream_versions(["target-10", "filler5-5", "nothing"])
        assert versions == appended.backend.stream_versions(["target-10", "filler5-5", "nothing"])
        # The store takes appends on from there, as one filled by appends does.
        more = {"stream-name": "target-10", "event-type": "Rare", "payload": {"n": -1}}
        assert loaded.append(more)[0].order_id == appended.append(more)[0].order_id == size + 1
        assert loaded.stream_version("target-10") == appended.stream_version("target-10")
    finally:
        appended.close()
        loaded.close()
    return time.perf_counter() - started
