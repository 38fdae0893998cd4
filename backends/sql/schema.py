"""The SQL tables and indexes: the store's file format, the same on every dialect.

- ``photon_events``: one row per event: ``order_id`` (primary key), ``stream_name``,
  ``stream_version``, ``event_id`` (unique), ``event_type``, ``event_time``, ``data`` (the whole
  event as JSON) and ``stream_id``; the unique stream index over ``(stream_version >> 6,
  stream_id, stream_version)`` is how a stream's events are found (see `tables`). `__all__` is
  this table in order-id order.
- ``photon_streams``: each stream's number (``stream_id``) and current version, updated in the
  same transaction as its events. The events' stream index holds these small numbers rather than
  the names: measured, 0.7 µs less per appended event than indexing the names. On SQLite a table
  keyed by the name alone (``WITHOUT ROWID``, since 2026-11: `sqlite_upgrade` converts older files).
- ``photon_event_tags``: the tags index, one row per (tag, event).
- ``photon_read_index`` and ``photon_read_index_mark`` (SQLite): the category and event-type
  index, built by the writer in steps off most commits (`read_index`), and the order-id it is
  complete up to. PostgreSQL keeps ``photon_events``' own indexes on both instead.
- ``photon_checkpoints``: key/value entries (projection checkpoints, consumer positions,
  and ``photon:high-water``, the highest order-id ever given, so deletions never free one).
- ``photon_checkpoint_parts``: the rest of a value too large for one row, in parts of at most
  `CHECKPOINT_PART_BYTES` after its ``photon_checkpoints`` row (``part`` 1, 2, ...): a value is
  its row's value followed by its parts (a projection's state of an entry per stream is written
  as it is held, a part at a time, never copied whole into one statement). Created when a
  store is opened; a store written before has no parts, and its values read as they were.
"""

from __future__ import annotations

from typing import Any

HIGH_WATER_KEY = "photon:high-water"
CHECKPOINT_PARTS_TABLE = "photon_checkpoint_parts"
CHECKPOINT_PART_BYTES = 1 << 20
"""The most bytes of a key/value entry one row holds: a larger value goes in parts of this size,
so that neither the driver nor the database holds more than a part of it at a time."""
TAGS_TABLE = "photon_event_tags"
STREAMS_TABLE = "photon_streams"
NUMBER_INDEX = "photon_streams_stream_id"
ID_INDEX = "photon_events_event_id"
STREAM_INDEX = "photon_events_stream_block"
CATEGORY_INDEX = "photon_events_category"
TYPE_INDEX = "photon_events_type"
READ_INDEX = "photon_read_index"
READ_INDEX_MARK = "photon_read_index_mark"
CATEGORY_KIND = 0
TYPE_KIND = 1
"""The kinds of entry of the read index: a stream's category, an event's type."""
BLOCK_BITS = 6
"""A stream's versions are indexed in blocks of 2**BLOCK_BITS (see `tables`)."""
BLOCKS_PER_READ = 9
"""Blocks one statement of a stream read asks for: a page of 512 events spans at most 9."""


def category_expression(dialect: str) -> Any:
    """A stream's category (its name before the first '-') as SQL, the same text in the index and
    in every query, so that the database matches them; None where no such index is made."""
    import sqlalchemy as sa

    if dialect == "sqlite":
        return sa.literal_column("substr(stream_name, 1, instr(stream_name || '-', '-') - 1)")
    if dialect == "postgresql":
        return sa.literal_column("split_part(stream_name, '-', 1)")
    return None


def tables(dialect: str = "sqlite") -> Any:
    """The store's tables for `dialect`: (metadata, events, streams, checkpoints)."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid
    events = sa.Table(
        "photon_events",
        metadata,
        sa.Column("order_id", big, primary_key=True, autoincrement=False),
        sa.Column("stream_name", sa.String(256), nullable=False),
        sa.Column("stream_version", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("event_time", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        # Last, so that the columns before it are a RecordedEvent's fields in order.
        sa.Column("stream_id", big, nullable=False),
    )
    # Unique indexes rather than table constraints, so a restore can drop and rebuild them.
    # The stream index leads with the version's block (64 versions), then the stream: an append
    # that touches many streams then changes the few index pages where their latest blocks lie
    # together, not one page per stream as under (stream, version), and each commit writes
    # fewer pages (measured: the backend's append of batches spread over 100 streams went from
    # 6.2 to 4.9 µs per event).
    # A stream is read a few blocks per statement (`SQLBackend.read` of a stream).
    sa.Index(STREAM_INDEX, block(events.c.stream_version), events.c.stream_id, events.c.stream_version, unique=True)
    sa.Index(ID_INDEX, events.c.event_id, unique=True)
    # Category and event-type reads: one range of an index each, so their cost follows the
    # events they return, not the size of the store. On SQLite the index is a table of its own
    # (`read_index_tables`), which the writer fills in steps, not at every commit.
    if dialect == "sqlite":
        read_index_tables(metadata)
    else:
        sa.Index(TYPE_INDEX, events.c.event_type, events.c.order_id)
        category = category_expression(dialect)
        if category is not None:
            sa.Index(CATEGORY_INDEX, category, events.c.order_id)
    # SQLite keeps it without a rowid: the name is the key of the table's one b-tree. With a
    # rowid, a new stream wrote three b-trees (the rows, the name's automatic index and the
    # number's index); every read finds a stream by its name. Measured (`benchmarks.es_floor
    # --pages`): an insert of a new aggregate's 10 events put 17.4 pages into the log, 16.4 after.
    streams = sa.Table(
        STREAMS_TABLE,
        metadata,
        sa.Column("stream_name", sa.String(256), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("stream_id", big, nullable=False),
        sqlite_with_rowid=False,
    )
    # The numbers' index served only the writer's ``max(stream_id)`` at its start; on SQLite the
    # writer finds the highest number without it (`stream_numbers`), and a new stream writes one
    # b-tree less (1.2 of the 12.2 pages an eventsourcing insert put into the log). PostgreSQL
    # keeps it: its log records the index entry, not the page.
    if dialect != "sqlite":
        sa.Index(NUMBER_INDEX, streams.c.stream_id, unique=True)
    # The tags index: one row per (tag, event). Its primary key is the index, so a tag's events
    # after a position are one range of it (what a conditional append asks). SQLite keeps it
    # without a rowid: the key is the row.
    sa.Table(
        TAGS_TABLE,
        metadata,
        sa.Column("tag", sa.String(256), primary_key=True),
        sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    checkpoints = sa.Table(
        "photon_checkpoints",
        metadata,
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    # Rows of up to a MiB: with a rowid on SQLite (a table without one keeps each row in its
    # key's b-tree pages, meant for rows far smaller than a page).
    sa.Table(
        CHECKPOINT_PARTS_TABLE,
        metadata,
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    return metadata, events, streams, checkpoints


def read_index_tables(metadata: Any) -> tuple[Any, Any]:
    """SQLite's category and event-type index (kind, name, order-id: a category's or a type's
    events are one range of its key, in order), and the one row that says up to which order-id
    every event has its entries there (the mark; 0 before the first step).

    Written by the writer in steps (`read_index.ReadIndexer`): an insert of 10 events into
    ``photon_events`` with two indexes of its own on the category and the type put 4.5 of its
    17.4 pages into the log (`benchmarks.es_floor --pages`); a step files many commits' events
    at once, each name's entries at the end of its range. Reads take the index up to
    the mark and the events past it from ``photon_events`` (`statements.read_select`): at most a
    step's worth of them."""
    import sqlalchemy as sa

    index = sa.Table(
        READ_INDEX,
        metadata,
        sa.Column("kind", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    mark = sa.Table(
        READ_INDEX_MARK,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("order_id", sa.BigInteger, nullable=False),
    )
    return index, mark


def block(version: Any) -> Any:
    """The block of a version, as SQL: the same text in the index and in every query, so that
    the database matches them (a bound parameter in place of the literal would not)."""
    import sqlalchemy as sa

    return version.op(">>")(sa.literal_column(str(BLOCK_BITS)))


def create_indexes(conn: Any, indexes: Any) -> None:
    """Build the indexes that are missing. IF NOT EXISTS rather than SQLAlchemy's `checkfirst`,
    whose reflection does not see an index on an expression (the stream index)."""
    import sqlalchemy as sa

    for index in indexes:
        conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
