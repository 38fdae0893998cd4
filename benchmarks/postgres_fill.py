"""Filling the category-read and growth benchmarks' PostgreSQL stores on the server, with SQL.

Filling 10M events through the backend took about 47 minutes here (and Message DB's table by
``COPY`` 11 more), too long to measure a 10M store more than once. Here the server builds the
same rows itself, from ``generate_series``: each event's stream, type and tag as
`category_reads.stream_of` and `category_reads.fill` give them, its version in its stream, the
stream numbers in order of first appearance, the ``data`` JSON byte for byte as the store writes
it (Photon's field names in the store's order), the tags index and the streams table. The Photon
store is loaded as its bulk load (a restore) loads one: through the backend's own
``begin_bulk_load`` (its event indexes dropped) and ``end_bulk_load`` (each index built in one
pass, then the planner statistics). Message DB's ``messages`` table gets the same events, its
indexes dropped for the load and built again from their own definitions.

Only the ids and times differ from a store filled by appends: ids keep the store's UUIDv7 text
layout and ascend, one millisecond per batch of `category_reads.BATCH` events, as appends of those
batches would stamp them. `check_same_as_appends` compares a small store filled both ways through
Photon's API; `category_reads` runs it before each SQL fill, so the figures stay honest.

The growth benchmark's events (`growth.fill`: a stream per 10 events, a probe stream of 100) are
made the same way (``shape="growth"``, `GROWTH_ROWS`); `growth --fill sql` checks them the same
way against a store filled by its plain appends. A store loaded so has its indexes built in one
pass each, denser than the ones appends grow.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from photon.core.events import RecordedEvent

TARGET_EVENTS = 2000  # as category_reads
BATCH = 5000
BASE_MILLIS = 1_700_000_000_000
"""The first event's time (epoch milliseconds); each batch of BATCH events one millisecond later."""

ROWS = """
CREATE TEMP TABLE bench_rows AS
SELECT i,
       CASE WHEN i % {every} = 0 THEN 'target-' || (i % 50)
            ELSE 'filler' || (i % 97) || '-' || (i % 10000) END AS stream,
       CASE WHEN i % {every} = {every} / 2 THEN 'Rare' ELSE 'Common' END AS event_type,
       i % {every} = {every} / 3 AS tagged,
       '{{"n":' || i || '}}' AS payload,
       {base} + i / {batch} AS millis
FROM generate_series(0::bigint, {size} - 1) AS i
"""
"""One row per event: its stream, type, tag and payload's JSON (as `category_reads.stream_of` and `fill`)."""

GROWTH_ROWS = """
CREATE TEMP TABLE bench_rows AS
SELECT i,
       CASE WHEN i % {probe_every} = {probe_every} - 1 AND i / {probe_every} < 100 THEN '{probe}'
            ELSE 's-' || (i * 7919 % {streams}) END AS stream,
       'filled'::text AS event_type,
       false AS tagged,
       '{{"i":' || i || ',"pad":"' || repeat('x', 40) || '"}}' AS payload,
       {base} + i / {batch} AS millis
FROM generate_series(0::bigint, {size} - 1) AS i
"""
"""The growth benchmark's events (as `growth.fill`): one stream per 10 events, each event's stream
``s-((i * 7919) % streams)``, and the 100 events of the probe stream spread evenly."""

VERSIONED = """
CREATE TEMP TABLE bench_versioned AS
SELECT r.*, row_number() OVER (PARTITION BY stream ORDER BY i) AS version FROM bench_rows r
"""

STREAMS = """
CREATE TEMP TABLE bench_streams AS
SELECT stream, count(*) AS version, row_number() OVER (ORDER BY min(i)) AS stream_id
FROM bench_rows GROUP BY stream
"""
"""Each stream's last version and number, numbered in order of first appearance as the writer numbers them."""

# The UUIDv7 text of `photon.core.events.new_event_ids`: the millisecond, a fixed random part, then
# a counter (here the event's number), in lower-case hex.
EVENT_ID = (
    "lpad(to_hex(v.millis >> 16), 8, '0') || '-' || lpad(to_hex(v.millis & 65535), 4, '0')"
    " || '-7a5c-9e31-' || lpad(to_hex(v.i), 12, '0')"
)

PHOTON_EVENTS = f"""
INSERT INTO photon_events
    (order_id, stream_name, stream_version, event_id, event_type, event_time, data, stream_id)
SELECT v.i + 1, v.stream, v.version, e.id, v.event_type, v.millis,
       convert_to('{{"order-id":' || (v.i + 1) || ',"stream-version":' || v.version
           || ',"stream-name":"' || v.stream || '","event-type":"' || v.event_type
           || '","payload":' || v.payload
           || CASE WHEN v.tagged THEN ',"tags":["hot"]' ELSE '' END
           || ',"id":"' || e.id || '","event-time":' || v.millis || '}}', 'UTF8'),
       s.stream_id
FROM bench_versioned v
JOIN bench_streams s ON s.stream = v.stream
CROSS JOIN LATERAL (SELECT {EVENT_ID} AS id) e
ORDER BY v.i
"""

PHOTON_STREAMS = (
    "INSERT INTO photon_streams (stream_name, version, stream_id) SELECT stream, version, stream_id FROM bench_streams"
)
PHOTON_TAGS = "INSERT INTO photon_event_tags (tag, order_id) SELECT 'hot', i + 1 FROM bench_rows WHERE tagged"

MESSAGES = """
INSERT INTO message_store.messages (global_position, position, stream_name, type, data, metadata, id)
SELECT i + 1, version - 1, stream, event_type, ('{"n": ' || i || '}')::jsonb, NULL, gen_random_uuid()
FROM bench_versioned ORDER BY i
"""


def _rows(conn: Any, size: int, shape: str = "category") -> None:
    """The temporary tables of the events' rows, on `conn` (a psycopg connection), for the
    category-read benchmark's events or (`shape` "growth") the growth benchmark's."""
    conn.execute("SET work_mem = '256MB'")  # the versions' window sorts 10M rows
    if shape == "growth":
        from .growth import PROBE

        conn.execute(
            GROWTH_ROWS.format(
                probe_every=max(size // 100, 1),
                probe=PROBE,
                streams=max(size // 10, 1),
                size=size,
                batch=BATCH,
                base=BASE_MILLIS,
            )
        )
    else:
        conn.execute(ROWS.format(every=size // TARGET_EVENTS, size=size, batch=BATCH, base=BASE_MILLIS))
    conn.execute(VERSIONED)
    conn.execute(STREAMS)


def fill_photon(store: Any, dsn: str, size: int, shape: str = "category") -> None:
    """Fill the empty Photon PostgreSQL `store` (open for writing on the database at `dsn`) with
    the benchmark's `size` events (`shape`: "category" or "growth"), loaded as its bulk load
    loads a restore."""
    import psycopg

    backend = store.backend
    if backend.last_order_id():
        raise ValueError("fill_photon needs an empty store")
    backend.begin_bulk_load()
    ok = False
    try:
        with psycopg.connect(dsn) as conn:
            _rows(conn, size, shape)
            conn.execute(PHOTON_EVENTS)
            conn.execute(PHOTON_STREAMS)
            conn.execute(PHOTON_TAGS)
            conn.commit()
        ok = True
    finally:
        backend.end_bulk_load(ok)


def fill_message_db(dsn: str, size: int) -> None:
    """Fill Message DB's empty `messages` table (installed at `dsn`) with the same `size` events."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'message_store' "
            "AND tablename = 'messages' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'message_store.messages'::regclass)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX message_store.{name}")
        _rows(conn, size)
        conn.execute(MESSAGES)
        for _, definition in indexes:  # Message DB's own definitions, built in one pass each
            conn.execute(definition)
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE message_store.messages")


def comparable(event: RecordedEvent) -> tuple[Any, ...]:
    """An event without what only the clock decides (its id and time), in the data too."""
    import orjson

    data = orjson.loads(event.data)
    data.pop("id"), data.pop("event-time")
    return (*event[:3], event[4], data, list(orjson.loads(event.data)))


def check_same_as_appends(admin_dsn: str, size: int = 20_000, shape: str = "category") -> float:
    """Fill a store of `size` events by the benchmark's appends and another by `fill_photon`, and
    compare what Photon's API reads back from both: `__all__`, the category, the event type, the
    tags read and the streams (`shape` "growth": `__all__`, the probe stream, a stream, `__all__`
    from the middle, and the streams). Raises AssertionError at the first difference; returns the
    seconds it took."""
    import psycopg

    from photon.core.store import EventStore

    from . import category_reads, growth

    READ = category_reads.READ
    fill = category_reads.fill if shape == "category" else growth.fill
    reads = (
        (
            lambda s: list(s.read()),
            lambda s: list(s.read("__category__:target", limit=READ)),
            lambda s: list(s.read(event_types=["Rare"], limit=READ)),
            lambda s: list(s.read_matching([{"tags": ["hot"]}], limit=READ)),
            lambda s: list(s.read("target-10")),
            lambda s: list(s.read("filler5-5")),
        )
        if shape == "category"
        else (
            lambda s: list(s.read()),
            lambda s: list(s.read(growth.PROBE)),
            lambda s: list(s.read("s-5")),
            lambda s: list(s.read(from_order_id=size // 2, limit=1000)),
        )
    )

    started = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    names = {way: f"bench_fill_check_{way}_{run}" for way in ("appends", "sql")}
    stores = []
    for way, name in names.items():
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
        store = EventStore.open({"db.backend": "postgres", "postgres.url": dsn})
        if way == "appends":
            fill(store, size)
        else:
            fill_photon(store, dsn, size, shape)
            store.close()
            store = EventStore.open({"db.backend": "postgres", "postgres.url": dsn})
        stores.append(store)
    try:
        appended, loaded = stores
        for read in reads:
            a, b = read(appended), read(loaded)
            assert len(a) == len(b) > 0, (len(a), len(b), read)
            for x, y in zip(a, b, strict=True):
                assert comparable(x) == comparable(y), (x, y)
                assert len(x.data) == len(y.data), (x, y)
        assert list(appended.backend.streams()) == list(loaded.backend.streams())
        numbers = []
        for name in names.values():
            with psycopg.connect(admin_dsn.rsplit("/", 1)[0] + "/" + name) as conn:
                numbers.append(
                    conn.execute(
                        "SELECT (SELECT array_agg(s ORDER BY stream_id) FROM photon_streams s),"
                        " (SELECT array_agg(stream_id ORDER BY order_id) FROM photon_events),"
                        " (SELECT array_agg(t ORDER BY order_id) FROM photon_event_tags t)"
                    ).fetchone()
                )
        assert numbers[0] == numbers[1], "the streams' numbers or the tags index differ"
        ids = [e.event_id for e in loaded.read()]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    finally:
        for store in stores:
            store.close()
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return time.perf_counter() - started
