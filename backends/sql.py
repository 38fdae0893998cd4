"""SQL backends through SQLAlchemy Core: `sqlite` (the default; alias `h2`) and `sql` (any URL).

Layout (table names prefixed `photon_` so a store can share a database):

- ``photon_events``: one row per event: ``order_id`` (primary key), ``stream_name``,
  ``stream_version``, ``event_id`` (unique), ``event_type``, ``event_time``, ``data`` (the whole
  event as JSON) and ``stream_id``; the unique stream index over ``(stream_version >> 6,
  stream_id, stream_version)`` is how a stream's events are found (see `_tables`). `__all__` is
  this table in order-id order.
- ``photon_streams``: each stream's number (``stream_id``) and current version, updated in the
  same transaction as its events. The events' stream index holds these small numbers rather than
  the names: measured, 0.7 µs less per appended event than indexing the names.
- ``photon_checkpoints``: key/value entries (projection checkpoints, consumer positions,
  and ``photon:high-water``, the highest order-id ever given, so deletions never free one).

SQLAlchemy Core defines the schema and builds every statement for the connected dialect; the
two hot paths (the batch insert and the page read) run those compiled statements on the
driver's cursor directly, which saves SQLAlchemy's per-row result processing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from functools import partial
from itertools import chain, pairwise
from operator import add, itemgetter
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from photon.core.append_request import QueryItem
from photon.core.backend import Backend, Query, StoreState, StreamInfo
from photon.core.config import one_of
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError, StoreLocked
from photon.core.events import RecordedEvent, event_tags
from photon.core.setting import Setting

from ._locks import FileLock

HIGH_WATER_KEY = "photon:high-water"
TAGS_TABLE = "photon_event_tags"
ID_INDEX = "photon_events_event_id"
STREAM_INDEX = "photon_events_stream_block"
EARLIER_STREAM_INDEX = "photon_events_stream_version"
"""The stream index of earlier layouts, over (stream_name or stream_id, stream_version)."""
BLOCK_BITS = 6
"""A stream's versions are indexed in blocks of 2**BLOCK_BITS (see `_tables`)."""
BLOCKS_PER_READ = 9
"""Blocks one statement of a stream read asks for: a page of 512 events spans at most 9."""
PAGE_SIZE = 8192
RECLAIM_TRIES = 100
"""Times reclaim_step tries its closing checkpoint again when readers hold the log."""
RECLAIM_PAGES = 2048
"""Free pages one reclaim step gives back (16 MiB at 8 KiB pages: about a commit's time)."""
"""SQLite page size of a new store's file."""
CHECKPOINT_EVERY_SECONDS = 0.5
CHECKPOINT_LOG_BYTES = 4 << 20
LOG_RESTART_BYTES = 32 << 20
"""A log holding more than this is started again from its beginning (see _checkpoint_loop)."""
LOG_SIZE_LIMIT = 64 << 20
"""PRAGMA journal_size_limit: the log file is cut back to this size when it starts again."""
BULK_ROWS = 2048
"""Rows per INSERT statement in a bulk load: 8 parameters a row stays under SQLite's limit of
32766 parameters a statement."""
log = logging.getLogger("photon.backends.sql")
#: The PostgreSQL advisory lock a writer holds (one store per database; the number spells "PHOT").
POSTGRES_LOCK_KEY = 0x50484F54
_CHUNK = 500
STREAM_IDS_KEPT = 100_000
"""The writer remembers this many stream numbers; past it, it starts again (and looks them up)."""
_make_event = partial(tuple.__new__, RecordedEvent)


CATEGORY_INDEX = "photon_events_category"
TYPE_INDEX = "photon_events_type"


def category_expression(dialect: str) -> Any:
    """A stream's category (its name before the first '-') as SQL, the same text in the index and
    in every query, so that the database matches them; None where no such index is made."""
    import sqlalchemy as sa

    if dialect == "sqlite":
        return sa.literal_column("substr(stream_name, 1, instr(stream_name || '-', '-') - 1)")
    if dialect == "postgresql":
        return sa.literal_column("split_part(stream_name, '-', 1)")
    return None


def _tables(dialect: str = "sqlite") -> Any:
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
    # A stream is read a few blocks per statement (`_read_stream`).
    sa.Index(STREAM_INDEX, _block(events.c.stream_version), events.c.stream_id, events.c.stream_version, unique=True)
    sa.Index(ID_INDEX, events.c.event_id, unique=True)
    # Category and event-type reads: one range of an index each, so their cost follows the
    # events they return, not the size of the store.
    sa.Index(TYPE_INDEX, events.c.event_type, events.c.order_id)
    category = category_expression(dialect)
    if category is not None:
        sa.Index(CATEGORY_INDEX, category, events.c.order_id)
    streams = sa.Table(
        "photon_streams",
        metadata,
        sa.Column("stream_name", sa.String(256), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("stream_id", big, nullable=False),
    )
    sa.Index("photon_streams_stream_id", streams.c.stream_id, unique=True)
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
    return metadata, events, streams, checkpoints


def _block(version: Any) -> Any:
    """The block of a version, as SQL: the same text in the index and in every query, so that
    the database matches them (a bound parameter in place of the literal would not)."""
    import sqlalchemy as sa

    return version.op(">>")(sa.literal_column(str(BLOCK_BITS)))


def _create_indexes(conn: Any, indexes: Any) -> None:
    """Build the indexes that are missing. IF NOT EXISTS rather than SQLAlchemy's `checkfirst`,
    whose reflection does not see an index on an expression (the stream index)."""
    import sqlalchemy as sa

    for index in indexes:
        conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


class SQLBackend(Backend):
    """Any database SQLAlchemy reaches, given by `sql.url`."""

    name = "sql"
    description = "any SQLAlchemy database URL (sql.url), e.g. PostgreSQL"
    indexed_reads: ClassVar[frozenset[str]] = frozenset({"category", "event-type"})
    bulk_load = True
    scavenging = True
    redaction = True
    listing_checkpoints = True
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "sql.url",
            None,
            "sql backend: SQLAlchemy database URL, e.g. postgresql+psycopg://user@host/db.",
            secret=True,
        ),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._engine: Any = None
        self._writer: Any = None  # the writer's own DBAPI connection (a pool proxy)
        self._is_writer = False
        self._statements: dict[Any, _Statement] = {}
        self._statement_lock = threading.Lock()
        # The writer's record of stream numbers (photon_streams.stream_id), by name.
        self._stream_ids: dict[str, int] = {}
        self._last_stream_id: int | None = None

    # -- engine and connections -------------------------------------------------------

    def url(self) -> str:
        url = self.config.get("sql.url")
        if not url:
            raise BackendError("the sql backend needs sql.url (a SQLAlchemy database URL)")
        return str(url)

    def engine_options(self) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        # Positional placeholders, so the insert takes RecordedEvent tuples as they are.
        paramstyle = "qmark" if self.url().startswith("sqlite") else "format"
        options: dict[str, Any] = {"pool_size": 8, "max_overflow": 32, "pool_pre_ping": True, "paramstyle": paramstyle}
        if make_url(self.url()).get_backend_name() == "postgresql":
            options["connect_args"] = _postgres_connect_args(make_url(self.url()).get_driver_name())
        return options

    def _writer_connection(self) -> Any:
        """The writer's connection, holding the writer lock; reconnects after the server came back."""
        if self._writer is None:
            if not self._is_writer:
                raise BackendError("the store was opened read-only")
            connection = self._engine.raw_connection()
            try:
                self.lock_writer_connection(connection)
            except BaseException:
                connection.invalidate()
                raise
            self._writer = connection
        return self._writer

    def lock_writer_connection(self, connection: Any) -> None:
        """Take the writer lock on the writer's own connection, where the dialect has such a lock.

        PostgreSQL: a session-level advisory lock. The server drops it when the session ends, so a
        writer that dies (or loses its connection) frees the store; a writer that reconnects takes
        it again, and fails with `StoreLocked` if another process took it meanwhile.
        """
        if self._engine.dialect.name != "postgresql":
            return
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (POSTGRES_LOCK_KEY,))
            (taken,) = cursor.fetchone()
            holder = None
            if not taken:
                cursor.execute(
                    "SELECT a.pid, a.application_name, host(a.client_addr) FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND l.objid = %s",
                    (POSTGRES_LOCK_KEY & 0xFFFFFFFF,),
                )
                holder = cursor.fetchone()
            connection.commit()
        except Exception as exc:
            raise self.translate(exc) from exc
        finally:
            cursor.close()
        if not taken:
            who = (
                f"server process {holder[0]} ({holder[1] or 'no name'} from {holder[2] or 'local'})"
                if holder
                else ("another session")
            )
            raise StoreLocked(
                f"the store is already open for writing by {who} (advisory lock {POSTGRES_LOCK_KEY} on "
                f"{self.describe()}); one process writes a store"
            )

    def on_connect(self, dbapi_connection: Any) -> None:
        """Per-connection settings (PRAGMAs for SQLite)."""

    def on_begin(self, connection: Any) -> None:
        """Called when SQLAlchemy begins a transaction (SQLite needs an explicit BEGIN)."""

    def take_writer_lock(self) -> None:
        """Refuse a second writer. The base class has no portable way; dialects override."""

    def release_writer_lock(self) -> None:
        pass

    def describe(self) -> str:
        from sqlalchemy.engine import make_url

        return f"{self.name} {make_url(self.url()).render_as_string(hide_password=True)}"

    def open(self, *, writer: bool) -> StoreState:
        import sqlalchemy as sa

        try:
            self._dialect = sa.engine.make_url(self.url()).get_backend_name()
            self._metadata, self._events, self._streams_table, self._checkpoints = _tables(self._dialect)
            self._engine = sa.create_engine(self.url(), **self.engine_options())
            sa.event.listen(self._engine, "connect", lambda conn, _record: self.on_connect(conn))
            sa.event.listen(self._engine, "begin", self.on_begin)
            self._is_writer = writer
            if writer:
                self.take_writer_lock()
            with self._engine.begin() as conn:
                self._update_layout(conn, writer=writer)
                self._metadata.create_all(conn)
                if writer:
                    # A bulk load (restore) that was killed before it rebuilt the indexes it
                    # dropped leaves a table without them: build them again before any append.
                    _create_indexes(conn, (*self._events.indexes, *self._streams_table.indexes))
            if writer:
                self._writer_connection()
            return StoreState(self.last_order_id())
        except sa.exc.SQLAlchemyError as exc:
            self.close()
            raise _translate(exc) from exc
        except BaseException:
            self.close()
            raise

    def _update_layout(self, conn: Any, *, writer: bool) -> None:
        """Bring tables made by an earlier Photon to the current layout, in the open's transaction.

        Stores made before streams had numbers get them: each stream a number, each event its
        stream's number, and the stream index rebuilt over the numbers.
        """
        import sqlalchemy as sa

        inspector = sa.inspect(conn)
        if not inspector.has_table("photon_events"):
            return
        if "stream_id" not in {column["name"] for column in inspector.get_columns("photon_events")}:
            if not writer:
                raise BackendError(
                    f"{self.describe()} was written by an earlier Photon: open it for writing once "
                    "(e.g. `photon serve`) to bring its tables up to date"
                )
            self._number_earlier_streams(conn)
        if writer:
            # The stream index of any earlier layout (the name is enough: reflection does not
            # see an index on an expression); open() builds the current one.
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {EARLIER_STREAM_INDEX}"))

    def _number_earlier_streams(self, conn: Any) -> None:
        """Number the streams of tables from before streams had numbers, and their events."""
        import sqlalchemy as sa

        log.warning("%s: numbering streams (tables written by an earlier Photon)", self.describe())
        names = [row[0] for row in conn.execute(sa.text("SELECT stream_name FROM photon_streams ORDER BY stream_name"))]
        conn.execute(sa.text("ALTER TABLE photon_streams ADD COLUMN stream_id BIGINT NOT NULL DEFAULT 0"))
        if names:
            conn.execute(
                sa.text("UPDATE photon_streams SET stream_id = :i WHERE stream_name = :n"),
                [{"i": number, "n": name} for number, name in enumerate(names, start=1)],
            )
        conn.execute(sa.text("ALTER TABLE photon_events ADD COLUMN stream_id BIGINT NOT NULL DEFAULT 0"))
        conn.execute(
            sa.text(
                "UPDATE photon_events SET stream_id = (SELECT s.stream_id FROM photon_streams s "
                "WHERE s.stream_name = photon_events.stream_name)"
            )
        )

    def close(self) -> None:
        self._is_writer = False
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self.release_writer_lock()

    # -- compiled statements ---------------------------------------------------------

    def _sql(self, key: Any, build: Any) -> _Statement:
        statement = self._statements.get(key)
        if statement is None:
            with self._statement_lock:
                compiled = build().compile(dialect=self._engine.dialect)
                names = tuple(compiled.positiontup or ())
                statement = _Statement(str(compiled), names, {n: compiled.params.get(n) for n in names})
                self._statements[key] = statement
        return statement

    def _insert_sql(self) -> _Statement:
        import sqlalchemy as sa

        events = self._events
        statement = self._sql(
            "insert",
            lambda: sa.insert(events).values({c.name: sa.bindparam(c.name) for c in events.columns}),
        )
        if statement.names != (*RecordedEvent._fields, "stream_id"):
            raise BackendError(f"unexpected insert parameter order {statement.names}")
        return statement

    def _upsert_streams_sql(self) -> _Statement:
        import sqlalchemy as sa

        table = self._streams_table
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert: Any = sqlite_insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            insert = postgresql_insert
        else:
            raise BackendError(f"the SQL backend does not support the {dialect} dialect yet")

        def build() -> Any:
            statement = insert(table).values(
                stream_name=sa.bindparam("n"), version=sa.bindparam("v"), stream_id=sa.bindparam("i")
            )
            return statement.on_conflict_do_update(
                index_elements=[table.c.stream_name], set_={"version": statement.excluded.version}
            )

        statement = self._sql("upsert-streams", build)
        if statement.names != ("n", "v", "i"):
            raise BackendError(f"unexpected upsert parameter order {statement.names}")
        return statement

    def _insert_tags_sql(self) -> str:
        import sqlalchemy as sa

        table = self._metadata.tables[TAGS_TABLE]
        statement = self._sql(
            "insert-tags", lambda: sa.insert(table).values(tag=sa.bindparam("tag"), order_id=sa.bindparam("order_id"))
        )
        if statement.names != ("tag", "order_id"):
            raise BackendError(f"unexpected tags insert parameter order {statement.names}")
        return statement.sql

    def read_matching(self, query: tuple[QueryItem, ...], after: int, limit: int) -> list[RecordedEvent]:
        """Through the tags index: each item with tags is a range of it per tag (intersected), so the
        cost follows the events that carry the tags, not the size of the store. Rows of the tags
        index whose event was deleted find no event and drop out."""
        import sqlalchemy as sa

        params: dict[str, Any] = {"after": after, "limit": limit}
        selects: list[str] = []

        def names(prefix: str, values: frozenset[str]) -> str:
            for index, value in enumerate(sorted(values)):
                params[f"{prefix}{index}"] = value
            return ", ".join(f":{prefix}{index}" for index in range(len(values)))

        columns = ", ".join(f"e.{name}" for name in RecordedEvent._fields)
        # Each item is its own ordered, limited select driven by its first tag's range of the
        # tags index (or by the events' primary key when it has no tags); the union of those
        # few rows is then ordered and limited again. (A single `order_id IN (...)` filter over
        # the events table lets the planner walk the whole table in order instead.)
        for number, item in enumerate(query or (QueryItem(),)):
            where = ["substr(e.stream_name, 1, 2) <> '__'"]
            if item.types:
                where.append(f"e.event_type IN ({names(f'q{number}t', item.types)})")
            if item.tags:
                tags = sorted(item.tags)
                for index, tag in enumerate(tags):
                    params[f"q{number}g{index}"] = tag
                    if index:
                        where.append(
                            f"EXISTS (SELECT 1 FROM {TAGS_TABLE} g{index} WHERE g{index}.tag = :q{number}g{index} "
                            f"AND g{index}.order_id = g0.order_id)"
                        )
                selects.append(
                    f"SELECT * FROM (SELECT {columns} FROM {TAGS_TABLE} g0 JOIN photon_events e "
                    f"ON e.order_id = g0.order_id WHERE g0.tag = :q{number}g0 AND g0.order_id > :after AND "
                    + " AND ".join(where)
                    + " ORDER BY g0.order_id LIMIT :limit) AS i"
                    + str(number)
                )
            else:
                selects.append(
                    f"SELECT * FROM (SELECT {columns} FROM photon_events e WHERE e.order_id > :after AND "
                    + " AND ".join(where)
                    + " ORDER BY e.order_id LIMIT :limit) AS i"
                    + str(number)
                )
        if len(selects) == 1:
            sql = selects[0]
        else:
            sql = f"SELECT * FROM ({' UNION '.join(selects)}) AS u ORDER BY order_id LIMIT :limit"
        return [_make_event(tuple(row)) for row in self._core(sa.text(sql), params)]

    def _event_columns(self) -> list[Any]:
        """The columns of a RecordedEvent, in its order."""
        return [self._events.c[name] for name in RecordedEvent._fields]

    def _numbered(self, events: Sequence[RecordedEvent]) -> tuple[Iterator[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows to insert for `events` (each with its stream's number last), made one by one
        as the insert takes them, and the rows that set each stream's version (name, version,
        number). Numbers new streams first."""
        versions = _last_versions(events)
        ids = self._stream_ids
        if not ids.keys() >= versions.keys():
            if len(ids) > STREAM_IDS_KEPT:
                # Bounded cache: start again, and look every stream of this batch up below (a
                # clear between the look-up and the rows would lose the numbers of known ones).
                ids.clear()
            self._number_streams([name for name in versions if name not in ids])
        # event + (number,), in C: zip() of one iterable gives the 1-tuples.
        rows = map(add, events, zip(map(ids.__getitem__, map(_STREAM_NAME, events))))
        return rows, [(name, version, ids[name]) for name, version in versions.items()]

    def _number_streams(self, names: list[str]) -> None:
        """Find the numbers of streams the writer has not met yet; give new streams the next ones."""
        import sqlalchemy as sa

        table, ids = self._streams_table, self._stream_ids
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            rows = self._core(sa.select(table.c.stream_name, table.c.stream_id).where(table.c.stream_name.in_(chunk)))
            ids.update({name: number for name, number in rows})
        if self._last_stream_id is None:
            self._last_stream_id = self._core(sa.select(sa.func.max(table.c.stream_id)))[0][0] or 0
        for name in names:
            if name not in ids:
                self._last_stream_id += 1
                ids[name] = self._last_stream_id

    def _forget_stream_numbers(self) -> None:
        """After a failed write: numbers given to new streams may not have been stored."""
        self._stream_ids.clear()
        self._last_stream_id = None

    def _read_sql(self, query: Query) -> _Statement:
        import sqlalchemy as sa

        events = self._events
        types = len(query.event_types) if query.event_types is not None else 0
        categories = len(query.categories) if query.categories is not None else 0
        key = (
            "read",
            query.stream is not None,
            query.to_order_id is not None,
            query.from_time is not None,
            types,
            categories,
        )

        def build() -> Any:
            conditions = [events.c.order_id >= sa.bindparam("from_order_id")]
            if query.stream is not None:
                conditions += [
                    _block(events.c.stream_version).in_([sa.bindparam(f"b{i}") for i in range(BLOCKS_PER_READ)]),
                    events.c.stream_id == sa.bindparam("stream_id"),
                    events.c.stream_version >= sa.bindparam("from_version"),
                ]
            if query.to_order_id is not None:
                conditions.append(events.c.order_id <= sa.bindparam("to_order_id"))
            if query.from_time is not None:
                conditions.append(events.c.event_time >= sa.bindparam("from_time"))
            if types:
                conditions.append(events.c.event_type.in_([sa.bindparam(f"t{i}") for i in range(types)]))
            if categories:
                conditions.append(self._category_condition(categories))
            order = events.c.stream_version if query.stream is not None else events.c.order_id
            return sa.select(*self._event_columns()).where(*conditions).order_by(order).limit(sa.bindparam("limit"))

        return self._sql(key, build)

    def _category_condition(self, count: int) -> Any:
        import sqlalchemy as sa

        expression = category_expression(self._dialect)
        names: list[Any] = [sa.bindparam(f"c{i}") for i in range(count)]
        if expression is not None:
            return expression.in_(names)
        # Another database: the same meaning, without the index.
        name = self._events.c.stream_name
        return sa.or_(*(sa.or_(name == n, name.like(n + "-%")) for n in names))

    # -- the contract --------------------------------------------------------------------

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        insert, upsert = self._insert_sql(), self._upsert_streams_sql()
        connection = self._writer_connection()
        rows, versions = self._numbered(events)
        cursor = connection.cursor()
        try:
            self.begin_write(cursor)
            cursor.executemany(insert.sql, rows)
            cursor.executemany(upsert.sql, versions)
            tags = _tag_rows(events)
            if tags:
                cursor.executemany(self._insert_tags_sql(), tags)
            connection.commit()
        except Exception as exc:
            self._forget_stream_numbers()
            error = self.translate(exc)
            try:
                connection.rollback()
            except Exception:
                error = error if isinstance(error, BackendUnavailable) else BackendUnavailable(f"{self.name}: {exc}")
            if isinstance(error, BackendUnavailable):
                # The session (and with it the writer lock) is gone: drop it; the next append
                # reconnects and takes the lock again.
                self._drop_writer()
            raise error from exc
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _drop_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.invalidate()
            self._writer = None

    def begin_write(self, cursor: Any) -> None:
        """Start the write transaction (SQLite takes the write lock at once)."""

    def read_params(self, query: Query) -> dict[str, Any]:
        params: dict[str, Any] = {"from_order_id": query.from_order_id, "limit": query.limit}
        if query.stream is not None:  # the stream's number and blocks are set by _read_stream
            params["from_version"] = query.from_version
        if query.to_order_id is not None:
            params["to_order_id"] = query.to_order_id
        if query.from_time is not None:
            params["from_time"] = query.from_time
        if query.event_types is not None:
            for index, name in enumerate(sorted(query.event_types)):
                params[f"t{index}"] = name
        if query.categories is not None:
            for index, name in enumerate(sorted(query.categories)):
                params[f"c{index}"] = name
        return params

    def _execute(self, statement: _Statement, values: dict[str, Any]) -> list[Any]:
        params = statement.bind(values)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(statement.sql, params)
                rows: list[Any] = cursor.fetchall()
            finally:
                cursor.close()
            connection.commit()  # end the read transaction; the connection goes back to the pool clean
            return rows
        except Exception as exc:
            raise self.translate(exc) from exc
        finally:
            connection.close()

    def read(self, query: Query) -> list[RecordedEvent]:
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        if query.stream is not None:
            return self._read_stream(query)
        return self._read_rows(self._read_sql(query), self.read_params(query))

    def _read_stream(self, query: Query) -> list[RecordedEvent]:
        """A stream's events, BLOCKS_PER_READ blocks of versions per statement, until the page is
        full or the stream's last version is passed (filters may leave blocks without a match)."""
        import sqlalchemy as sa

        assert query.stream is not None
        streams = self._streams_table
        found = self._core(
            sa.select(streams.c.stream_id, streams.c.version).where(streams.c.stream_name == query.stream)
        )
        if not found:
            return []
        number, last = found[0]
        statement, values = self._read_sql(query), self.read_params(query)
        values["stream_id"] = number
        version = max(query.from_version, 1)
        events: list[RecordedEvent] = []
        while version <= last and len(events) < query.limit:
            first = version >> BLOCK_BITS
            values.update({f"b{i}": first + i for i in range(BLOCKS_PER_READ)})
            values["from_version"] = version
            values["limit"] = query.limit - len(events)
            events += self._read_rows(statement, values)
            version = (first + BLOCKS_PER_READ) << BLOCK_BITS
        return events

    def _read_rows(self, statement: _Statement, values: dict[str, Any]) -> list[RecordedEvent]:
        return list(map(_make_event, self._execute(statement, values)))

    def _core(self, statement: Any, params: Any = None) -> list[Any]:
        """Run a SQLAlchemy Core statement (the paths that are not hot)."""
        import sqlalchemy as sa

        try:
            with self._engine.begin() as conn:
                result = conn.execute(statement, params) if params is not None else conn.execute(statement)
                return list(result.all()) if result.returns_rows else []
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    def last_order_id(self) -> int:
        import sqlalchemy as sa

        events, checkpoints = self._events, self._checkpoints
        highest = self._core(sa.select(sa.func.max(events.c.order_id)))[0][0] or 0
        mark = self._core(sa.select(checkpoints.c.value).where(checkpoints.c.key == HIGH_WATER_KEY))
        return max(highest, int(mark[0][0]) if mark else 0)

    def stream_versions(self, streams: Collection[str]) -> dict[str, int]:
        import sqlalchemy as sa

        table = self._streams_table
        names = list(streams)
        found: dict[str, int] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            rows = self._core(sa.select(table.c.stream_name, table.c.version).where(table.c.stream_name.in_(chunk)))
            found.update({name: version for name, version in rows})
        return found

    def streams(self) -> Iterator[StreamInfo]:
        import sqlalchemy as sa

        table = self._streams_table
        rows = self._core(
            sa.select(table.c.stream_name, table.c.version).where(table.c.version > 0).order_by(table.c.stream_name)
        )
        return (StreamInfo(name, version) for name, version in rows)

    def stream_page(self, prefix: str, after: str | None, limit: int) -> list[StreamInfo]:
        import sqlalchemy as sa

        table = self._streams_table
        name = table.c.stream_name
        statement = sa.select(name, table.c.version).where(table.c.version > 0)
        if after is not None:
            statement = statement.where(name > after)
        if prefix:
            # An exact test (LIKE is case-insensitive on SQLite and needs escaping), plus, where
            # names compare as code points (SQLite's BINARY collation), a range the primary key
            # seeks to, so a page of a prefix reads only that page's rows.
            statement = statement.where(sa.func.substr(name, 1, len(prefix)) == prefix)
            if self._engine.dialect.name == "sqlite":
                statement = statement.where(name >= prefix)
                if ord(prefix[-1]) < 0x10FFFF:
                    statement = statement.where(name < prefix[:-1] + chr(ord(prefix[-1]) + 1))
        rows = self._core(statement.order_by(name).limit(limit))
        return [StreamInfo(n, v) for n, v in rows]

    def events_by_id(self, event_ids: Collection[str]) -> dict[str, RecordedEvent]:
        import sqlalchemy as sa

        events = self._events
        ids = list(event_ids)
        found: dict[str, RecordedEvent] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self._core(sa.select(*self._event_columns()).where(events.c.event_id.in_(chunk)))
            for row in rows:
                event = _make_event(tuple(row))
                found[event.event_id] = event
        return found

    def delete_stream(self, stream: str) -> int:
        import sqlalchemy as sa

        events, streams, _checkpoints = self._events, self._streams_table, self._checkpoints
        high_water = self.last_order_id()
        self._stream_ids.pop(stream, None)
        try:
            with self._engine.begin() as conn:
                found = conn.execute(
                    sa.select(streams.c.stream_id, streams.c.version).where(streams.c.stream_name == stream)
                ).all()
                removed = 0
                if found:
                    number, last = found[0]
                    blocks = list(range((last >> BLOCK_BITS) + 1))
                    for start in range(0, len(blocks), _CHUNK):  # through the index, block by block
                        removed += conn.execute(
                            sa.delete(events).where(
                                _block(events.c.stream_version).in_(blocks[start : start + _CHUNK]),
                                events.c.stream_id == number,
                            )
                        ).rowcount
                conn.execute(sa.delete(streams).where(streams.c.stream_name == stream))
                self._put(conn, HIGH_WATER_KEY, str(high_water).encode())
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc
        return int(removed or 0)

    def truncate_stream(self, stream: str, before_version: int) -> int:
        """Through the stream index, block by block; the tags of the removed events go too (found
        from their JSON: most events have none). The high-water mark keeps the last order-id."""
        import sqlalchemy as sa

        events, streams = self._events, self._streams_table
        tags_table = self._metadata.tables[TAGS_TABLE]
        high_water = self.last_order_id()
        try:
            with self._engine.begin() as conn:
                found = conn.execute(sa.select(streams.c.stream_id).where(streams.c.stream_name == stream)).all()
                if not found or before_version <= 1:
                    return 0
                number = found[0][0]
                blocks = list(range(((before_version - 1) >> BLOCK_BITS) + 1))
                removed = 0
                for start in range(0, len(blocks), _CHUNK):
                    where = (
                        _block(events.c.stream_version).in_(blocks[start : start + _CHUNK]),
                        events.c.stream_id == number,
                        events.c.stream_version < before_version,
                    )
                    rows = conn.execute(sa.select(events.c.order_id, events.c.data).where(*where)).all()
                    tagged = [
                        {"t": tag, "o": order_id}
                        for order_id, data in rows
                        if b'"tags"' in bytes(data)
                        for tag in set(event_tags(bytes(data)))
                    ]
                    if tagged:
                        conn.execute(
                            sa.delete(tags_table).where(
                                tags_table.c.tag == sa.bindparam("t"), tags_table.c.order_id == sa.bindparam("o")
                            ),
                            tagged,
                        )
                    removed += conn.execute(sa.delete(events).where(*where)).rowcount or 0
                self._put(conn, HIGH_WATER_KEY, str(high_water).encode())
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc
        return int(removed)

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        import sqlalchemy as sa

        table = self._events
        if not events:
            return
        try:
            with self._engine.begin() as conn:
                self.before_erasure(conn)
                conn.execute(
                    sa.update(table).where(table.c.order_id == sa.bindparam("o")).values(data=sa.bindparam("d")),
                    [{"o": e.order_id, "d": e.data} for e in events],
                )
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    def before_erasure(self, conn: Any) -> None:
        """In a transaction that overwrites or removes data: make sure the old bytes go (SQLite)."""

    def begin_bulk_load(self) -> bool:
        # Loading rows into a table without its unique indexes, then building each index in one
        # sorted pass, is about twice as fast as maintaining them row by row.
        import sqlalchemy as sa

        try:
            with self._engine.begin() as conn:
                for index in self._events.indexes:
                    conn.execute(sa.schema.DropIndex(index, if_exists=True))
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc
        return True

    def end_bulk_load(self, ok: bool) -> None:
        import sqlalchemy as sa

        try:
            if ok:
                try:
                    with self._engine.begin() as conn:
                        _create_indexes(conn, self._events.indexes)  # a backend may keep one during the load
                    return
                except sa.exc.IntegrityError as exc:
                    self._empty_and_index()
                    raise IntegrityError(f"the loaded events repeat an id or a stream version: {exc.orig}") from exc
            self._empty_and_index()
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    def _empty_and_index(self) -> None:
        import sqlalchemy as sa

        self._forget_stream_numbers()
        with self._engine.begin() as conn:
            conn.execute(sa.delete(self._events))
            conn.execute(sa.delete(self._streams_table))
            conn.execute(sa.delete(self._metadata.tables[TAGS_TABLE]))
            conn.execute(sa.delete(self._checkpoints).where(self._checkpoints.c.key == HIGH_WATER_KEY))
            _create_indexes(conn, self._events.indexes)

    def _put(self, conn: Any, key: str, value: bytes | None) -> None:
        import sqlalchemy as sa

        table = self._checkpoints
        conn.execute(sa.delete(table).where(table.c.key == key))
        if value is not None:
            conn.execute(sa.insert(table).values(key=key, value=value))

    def read_checkpoint(self, key: str) -> bytes | None:
        import sqlalchemy as sa

        table = self._checkpoints
        rows = self._core(sa.select(table.c.value).where(table.c.key == key))
        return bytes(rows[0][0]) if rows else None

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        import sqlalchemy as sa

        table = self._checkpoints
        # A range rather than LIKE: no escaping of % and _ in the prefix, and the key's index serves it.
        rows = self._core(
            sa.select(table.c.key, table.c.value).where(table.c.key >= prefix, table.c.key < prefix + "\U0010ffff")
        )
        return {str(key): bytes(value) for key, value in rows if str(key).startswith(prefix)}

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        import sqlalchemy as sa

        try:
            with self._engine.begin() as conn:
                self._put(conn, key, value)
        except sa.exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    def translate(self, exc: BaseException) -> BaseException:
        """The driver's exception as one of Photon's."""
        import sqlalchemy as sa

        if isinstance(exc, sa.exc.SQLAlchemyError):
            return _translate(exc)
        dbapi = self._engine.dialect.dbapi if self._engine is not None else None
        if dbapi is not None:
            if isinstance(exc, dbapi.IntegrityError):
                return IntegrityError(f"{self.name}: {exc}")
            if isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError)):
                return BackendUnavailable(f"{self.name}: {exc}")
            if isinstance(exc, dbapi.Error):
                return BackendError(f"{self.name}: {exc}")
        return exc


class _Statement(NamedTuple):
    """A statement compiled for the connected dialect, with positional parameters."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    def bind(self, values: dict[str, Any]) -> tuple[Any, ...]:
        defaults = self.defaults
        return tuple(values[n] if n in values else defaults[n] for n in self.names)


def _last_versions(events: Sequence[RecordedEvent]) -> dict[str, int]:
    """Each stream's last version among `events` (later events overwrite earlier ones)."""
    return dict(map(_STREAM_AND_VERSION, events))


_STREAM_AND_VERSION = itemgetter(1, 2)  # RecordedEvent.stream_name, .stream_version
_STREAM_NAME = itemgetter(1)


def _tag_rows(events: Sequence[RecordedEvent]) -> list[tuple[str, int]]:
    """The rows of the tags index for `events` (most events have no tags: nothing to decode)."""
    return [(tag, event.order_id) for event in events if b'"tags"' in event.data for tag in set(event_tags(event.data))]


def _postgres_connect_args(driver: str) -> dict[str, Any]:
    """libpq options: fail fast when the server is unreachable, notice a dead peer, name the session."""
    args: dict[str, Any] = {
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
    }
    if driver in ("psycopg", "psycopg2"):
        # Shown by the advisory-lock holder query when a second writer is refused.
        args["application_name"] = f"photon pid {os.getpid()} on {socket.gethostname()}"[:63]
    return args


def _translate(exc: Any) -> BackendError:
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.IntegrityError):
        return IntegrityError(str(exc.orig or exc))
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        return BackendUnavailable(str(getattr(exc, "orig", None) or exc))
    return BackendError(str(exc))


class SQLiteBackend(SQLBackend):
    """The embedded default: one SQLite file in WAL mode, fsync on every commit by default."""

    name = "sqlite"
    aliases = ("h2",)
    read_page_size = 512
    description = "embedded SQLite file (sqlite.path); the default"
    settings = (
        Setting("sqlite.path", "photon.db", "sqlite backend: the database file.", aliases=("h2.path",)),
        Setting(
            "sqlite.synchronous",
            "FULL",
            "sqlite backend: PRAGMA synchronous; FULL syncs every commit, NORMAL may lose the last "
            "commits on power loss (never on a process crash), OFF leaves it to the OS.",
            one_of("FULL", "NORMAL", "OFF", "EXTRA"),
        ),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.path = Path(config.get("sqlite.path") or "photon.db")
        self.synchronous = config.get("sqlite.synchronous") or "FULL"
        self._lock_file = FileLock(self.path.with_name(self.path.name + ".lock"))
        self._restart_log = False
        self._bulk = False
        self._reclaim_pending = False
        """Removals or replacements happened that reclaim_step has not finished with."""
        self._reclaim_tries = 0
        self._first_bulk_batch = False
        self._multi_row: dict[int, str] = {}
        self._checkpointer: threading.Thread | None = None
        self._outside_wal = False
        """True while a bulk load runs with a rollback journal (see `_leave_wal`)."""

    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def describe(self) -> str:
        return f"sqlite {self.path} (WAL, synchronous={self.synchronous})"

    def engine_options(self) -> dict[str, Any]:
        # qmark placeholders let the insert take RecordedEvent tuples as they are.
        return {"pool_size": 8, "max_overflow": 32, "paramstyle": "qmark"}

    def on_connect(self, dbapi_connection: Any) -> None:
        dbapi_connection.isolation_level = None  # explicit BEGIN/COMMIT, no implicit transactions
        cursor = dbapi_connection.cursor()
        # Takes effect only in a new, empty file (the first connection to a new store). Measured:
        # appends about 4% faster than with 4 KiB pages (fewer pages to log per commit).
        cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
        # Also for a new file only: pages freed by a scavenge can be given back to the file
        # system a few at a time (PRAGMA incremental_vacuum), while the store stays online.
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if not self._outside_wal:  # a connection opened during a bulk load must not switch back
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={self.synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        # Checkpoints run in the background (see _checkpoint_loop), not inside commits.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA journal_size_limit={LOG_SIZE_LIMIT}")
        cursor.close()

    def open(self, *, writer: bool) -> StoreState:
        state = super().open(writer=writer)
        if writer:
            self._start_checkpoints()
        return state

    def _start_checkpoints(self) -> None:
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="photon-sqlite-checkpoints", daemon=True
        )
        self._checkpointer.start()

    def _stop_checkpointer(self) -> None:
        checkpointer = self._checkpointer
        if checkpointer is not None:
            self._stop_checkpoints.set()
            checkpointer.join(timeout=30)
            self._checkpointer = None

    def _checkpoint_loop(self) -> None:
        """Copy the write-ahead log into the database file from a thread of its own.

        SQLite would otherwise do it inside whichever commit crosses the threshold, stalling that
        commit. PASSIVE checkpoints never block the writer or readers, and durability does not
        depend on them: a commit is durable once it is in the log.

        The log starts again from its beginning only when a write begins after a checkpoint that
        copied all of it. Under a steady stream of writes this thread never quite catches up, so
        the log would grow without end; when it is large, the writer is asked to copy the few
        frames left itself, between two commits (see `_finish_checkpoint`).
        """
        import sqlite3

        log_file = self.path.with_name(self.path.name + "-wal")
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            connection.execute("PRAGMA busy_timeout=10000")
            page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
            while not self._stop_checkpoints.wait(CHECKPOINT_EVERY_SECONDS):
                try:
                    if log_file.exists() and log_file.stat().st_size >= CHECKPOINT_LOG_BYTES:
                        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if frames * page_size >= LOG_RESTART_BYTES:
                            self._restart_log = True
                except (sqlite3.Error, OSError) as exc:
                    log.warning("background checkpoint of %s failed: %s", self.path, exc)
        finally:
            connection.close()

    def _finish_checkpoint(self, connection: Any) -> None:
        """In the writer, between two commits: finish the checkpoint the background asked for, so
        that the next write starts the log again (the background copied most of it already)."""
        self._restart_log = False
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # the append is durable already; the log waits for the next try
            log.warning("checkpoint of %s in the writer failed: %s", self.path, exc)

    def _insert_rows(self, connection: Any, insert: str, events: Sequence[tuple[Any, ...]]) -> None:
        """Insert many rows with few statements: each one inserts up to BULK_ROWS rows.

        Against a table without indexes (a bulk load) this costs a third less than
        `executemany`, which steps SQLite once per row. With the indexes in place it was
        measured slower, so ordinary appends keep `executemany`."""
        start, total = 0, len(events)
        while start < total:
            count = min(BULK_ROWS, total - start)
            count = 1 << (count.bit_length() - 1)  # powers of two: a few statements, all cached
            sql = self._multi_row.get(count)
            if sql is None:
                head, _, row = insert.partition(" VALUES ")
                sql = self._multi_row[count] = f"{head} VALUES {', '.join([row] * count)}"
            connection.execute(sql, list(chain.from_iterable(events[start : start + count])))
            start += count

    def _keep_id_index(self, connection: Any, events: Sequence[RecordedEvent]) -> None:
        """On the first batch of a bulk load: when its ids ascend (the store's own ids are
        time-ordered, so a backup of them does), build the id index now and keep it during the
        load. New ids then only add to its end, which costs less than building it at the end
        from a scan of the whole table (measured: a restore 13% faster). Ids in no order (chosen
        by clients) leave it to the end."""
        self._first_bulk_batch = False
        if all(a[3] < b[3] for a, b in pairwise(events)):  # RecordedEvent.event_id
            import sqlalchemy as sa

            index = next(i for i in self._events.indexes if i.name == ID_INDEX)
            connection.execute(str(sa.schema.CreateIndex(index).compile(dialect=self._engine.dialect)))

    def begin_bulk_load(self) -> bool:
        undoable = super().begin_bulk_load()
        self._bulk = True
        self._first_bulk_batch = True
        self._leave_wal()
        # Each batch of a restore need not reach the disk on its own: nothing is acknowledged
        # until the load is over, and end_bulk_load's synced commit (the index rebuild) makes
        # the whole file durable at once. A killed process leaves a prefix of the batches (the
        # operating system still writes what SQLite handed it, and the next open rolls back the
        # batch in progress); open() rebuilds the indexes. A power cut may leave less.
        self._set_synchronous("OFF")
        return undoable

    def end_bulk_load(self, ok: bool) -> None:
        self._bulk = False
        self._set_synchronous(self.synchronous)
        try:
            super().end_bulk_load(ok)
        finally:
            self._back_to_wal()

    def _leave_wal(self) -> None:
        """For a bulk load, write each page once, into the database file, instead of into the log
        and then again into the file at a checkpoint (measured: about 15% faster restores).

        The rollback journal this switches to keeps SQLite's guarantees: a killed load leaves the
        batches it committed, the next open rolls back the one it was writing, and open() goes
        back to the log. Leaving the log needs the only connection to the file: the background
        checkpoints stop and idle connections close. When another process has the file open, the
        load stays with the log.
        """
        import sqlite3

        writer = self._writer_connection().driver_connection
        self._stop_checkpointer()
        self._engine.dispose()  # idle pooled connections; the writer's stays open
        writer.execute("PRAGMA busy_timeout=0")  # another process on the file: do not wait for it
        try:
            mode = writer.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        except sqlite3.OperationalError as exc:  # "database is locked": keep the log
            log.info("bulk load of %s keeps the write-ahead log: %s", self.path, exc)
            mode = "wal"
        finally:
            writer.execute("PRAGMA busy_timeout=10000")
        self._outside_wal = str(mode).lower() != "wal"
        if not self._outside_wal:
            self._start_checkpoints()

    def _back_to_wal(self) -> None:
        if not self._outside_wal:
            return
        import sqlite3

        writer = self._writer_connection().driver_connection
        self._outside_wal = False  # from here, a new connection switches the file back itself
        try:
            mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            mode = f"its rollback journal ({exc})"
        if str(mode).lower() != "wal":
            log.warning("%s stays in %s until a connection can switch it back to the log", self.path, mode)
        self._start_checkpoints()

    def before_erasure(self, conn: Any) -> None:
        # Freed and overwritten content is zeroed, so no copy of a redacted payload stays in a
        # free page of the file (the log goes at the end of the redaction: reclaim_step).
        conn.exec_driver_sql("PRAGMA secure_delete=ON")

    def truncate_stream(self, stream: str, before_version: int) -> int:
        removed = super().truncate_stream(stream, before_version)
        if removed:
            self._reclaim_pending = True
        return removed

    def replace_events(self, events: Sequence[RecordedEvent]) -> None:
        super().replace_events(events)
        self._reclaim_pending = True

    def reclaim_step(self) -> bool:
        """Give up to RECLAIM_PAGES free pages back per call (PRAGMA incremental_vacuum), then, once
        none are left, checkpoint the log into the file and truncate it: the file shrinks, and no
        old copy of a removed or redacted event stays in the log. Files made before Photon set
        auto_vacuum keep their free pages for new events (SQLite reuses them); VACUUM them offline."""
        if not self._reclaim_pending or self._writer is None:
            return False
        connection = self._writer.driver_connection
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        incremental = connection.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        if free and incremental:
            connection.execute("PRAGMA secure_delete=ON")
            # executescript steps the pragma to its end (execute() stops after the first page).
            connection.executescript(f"PRAGMA incremental_vacuum({RECLAIM_PAGES});")
            if free > RECLAIM_PAGES:
                return True
        busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy and self._reclaim_tries < RECLAIM_TRIES:
            # A reader (or the background checkpoint) held the log: try again after the next commit.
            self._reclaim_tries += 1
            time.sleep(0.01)
            return True
        self._reclaim_pending = False
        self._reclaim_tries = 0
        return False

    def _set_synchronous(self, level: str) -> None:
        if self._writer is not None:
            self._writer.driver_connection.execute(f"PRAGMA synchronous={level}")

    def close(self) -> None:
        self._stop_checkpointer()
        super().close()  # the last connection to close checkpoints the rest and removes the log

    def on_begin(self, connection: Any) -> None:
        # With the driver in autocommit mode, SQLAlchemy's transactions need their own BEGIN.
        connection.exec_driver_sql("BEGIN")

    def take_writer_lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file.acquire()

    def release_writer_lock(self) -> None:
        self._lock_file.release()

    def begin_write(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def _read_rows(self, statement: _Statement, values: dict[str, Any]) -> list[RecordedEvent]:
        # Rows go straight from the cursor into events: no intermediate list of rows.
        params = statement.bind(values)
        connection = self._engine.raw_connection()
        try:
            return list(map(_make_event, connection.driver_connection.execute(statement.sql, params)))
        except Exception as exc:
            raise self.translate(exc) from exc
        finally:
            connection.close()

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        if self._writer is None:
            raise BackendError("the store was opened read-only")
        insert, upsert = self._insert_sql(), self._upsert_streams_sql()
        connection = self._writer.driver_connection
        rows, versions = self._numbered(events)
        try:
            connection.execute("BEGIN IMMEDIATE")
            if self._bulk:
                self._insert_rows(connection, insert.sql, list(rows))
                if self._first_bulk_batch:
                    self._keep_id_index(connection, events)
            else:
                connection.executemany(insert.sql, rows)
            connection.executemany(upsert.sql, versions)
            tags = _tag_rows(events)
            if tags:
                connection.executemany(self._insert_tags_sql(), tags)
            connection.execute("COMMIT")
        except Exception as exc:
            self._forget_stream_numbers()
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            error = self.translate(exc)
            if self._bulk and isinstance(error, IntegrityError):  # the id index kept during the load
                error = IntegrityError(f"the loaded events repeat an id or a stream version: {exc}")
            raise error from exc
        if self._restart_log:
            self._finish_checkpoint(connection)
