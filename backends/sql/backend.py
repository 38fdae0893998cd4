"""The generic SQL backend (`sql`, any SQLAlchemy URL), which the `sqlite` and `postgres`
backends specialise: the storage contract over the tables of `schema`.

SQLAlchemy Core defines the schema and builds every statement for the connected dialect; the
two hot paths (the batch insert and the page read) run those compiled statements on the
driver's cursor directly, which saves SQLAlchemy's per-row result processing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from photon.core.backend import StoreState
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError
from photon.core.events import RecordedEvent, event_tags
from photon.core.setting import Setting

from . import key_values
from .planner_statistics import PlannerStatistics
from .postgres import connect_args, take_advisory_lock
from .read_index import drop_entries
from .reads import CHUNK
from .schema import (
    BLOCK_BITS,
    CHECKPOINT_PARTS_TABLE,
    HIGH_WATER_KEY,
    READ_INDEX,
    READ_INDEX_MARK,
    TAGS_TABLE,
    block,
    create_indexes,
    tables,
)
from .statements import Statement, tag_rows, translate_error
from .stream_numbers import StreamNumbers, keep_number


class SQLBackend(StreamNumbers):
    """Any database SQLAlchemy reaches, given by `sql.url`."""

    name = "sql"
    description = "any SQLAlchemy database URL (sql.url), e.g. PostgreSQL"
    indexed_reads: ClassVar[frozenset[str]] = frozenset({"category", "event-type", "tags"})
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
        self._writer: Any = None  # the writer's own DBAPI connection (a pool proxy)
        self._is_writer = False
        self._pipelined = False
        """The writer's connection is psycopg 3's in autocommit mode: an append is one pipeline
        (BEGIN, the inserts, COMMIT: one round trip), a look-up one statement."""
        self._append_sql: tuple[str, str] | None = None
        self._statistics: PlannerStatistics | None = None
        """A PostgreSQL writer's ANALYZE of its tables as they grow (see `planner_statistics`)."""

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
            options["connect_args"] = connect_args(make_url(self.url()).get_driver_name())
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
            self._pipelined = self.pipeline_writer(connection)
            self.configure_writer(connection)
            self._writer = connection
        return self._writer

    def pipeline_writer(self, connection: Any) -> bool:
        """Whether the writer's `connection` sends an append as one pipeline (psycopg 3 on
        PostgreSQL: then it is put in autocommit mode, each append bracketed by its own BEGIN
        and COMMIT, so that neither costs a round trip of its own)."""
        driver = connection.driver_connection
        if self._engine.dialect.name != "postgresql" or not hasattr(driver, "pipeline"):
            return False
        import psycopg

        if not psycopg.Pipeline.is_supported():
            return False
        driver.autocommit = True
        return True

    def upgrade_format(self, conn: Any) -> None:
        """Bring a store written by an older Photon to the current file format (in the writer's
        opening transaction, before the missing tables are made). SQLite has such changes."""

    def configure_writer(self, connection: Any) -> None:
        """Settings of the writer's own connection only (SQLite: a larger page cache)."""

    def lock_writer_connection(self, connection: Any) -> None:
        """Take the writer lock on the writer's own connection, where the dialect has such a lock
        (PostgreSQL: a session-level advisory lock, see `postgres.take_advisory_lock`)."""
        if self._engine.dialect.name == "postgresql":
            take_advisory_lock(connection, self.describe(), self.translate)

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
            self._metadata, self._events, self._streams_table, self._checkpoints = tables(self._dialect)
            self._engine = sa.create_engine(self.url(), **self.engine_options())
            self._append_sql = None
            sa.event.listen(self._engine, "connect", lambda conn, _record: self.on_connect(conn))
            sa.event.listen(self._engine, "begin", self.on_begin)
            self._is_writer = writer
            if writer:
                self.take_writer_lock()
            with self._engine.begin() as conn:
                if writer:
                    self.upgrade_format(conn)
                self._metadata.create_all(conn)
                if writer:
                    # A bulk load (restore) that was killed before it rebuilt the indexes it
                    # dropped leaves a table without them: build them again before any append.
                    create_indexes(conn, (*self._events.indexes, *self._streams_table.indexes))
            if writer:
                self._writer_connection()
            state = StoreState(self.last_order_id())
            if writer and self._dialect == "postgresql":
                analyzed = (self._events.name, self._streams_table.name, TAGS_TABLE)
                self._statistics = PlannerStatistics(self._engine, analyzed)
                self._statistics.opened(state.last_order_id)
            return state
        except sa.exc.SQLAlchemyError as exc:
            self.close()
            raise translate_error(exc) from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._is_writer = False
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        if self._statistics is not None:
            self._statistics.close()
            self._statistics = None
        self._kept_readers.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self.release_writer_lock()

    # -- compiled statements ---------------------------------------------------------

    def _append_statements(self) -> tuple[str, str]:
        """The insert of events and the upsert of stream versions, compiled and checked once
        (an append is on the writer's path: building and checking them again cost about 5 µs)."""
        made = self._append_sql
        if made is None:
            made = self._append_sql = (self._insert_sql().sql, self._upsert_streams_sql().sql)
        return made

    def _insert_sql(self) -> Statement:
        import sqlalchemy as sa

        events = self._events
        statement = self._sql(
            "insert",
            lambda: sa.insert(events).values({c.name: sa.bindparam(c.name) for c in events.columns}),
        )
        if statement.names != (*RecordedEvent._fields, "stream_id"):
            raise BackendError(f"unexpected insert parameter order {statement.names}")
        return statement

    def _upsert_streams_sql(self) -> Statement:
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

    def _writer_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A read on the writer's connection, in a transaction of its own."""
        connection = self._writer_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, params)
                rows: list[Any] = cursor.fetchall()
            finally:
                cursor.close()
            if not self._pipelined:  # in autocommit mode there is no transaction to end
                connection.commit()
            return rows
        except Exception as exc:
            raise self._writer_failed(connection, exc) from exc

    def _writer_failed(self, connection: Any, exc: Exception) -> BaseException:
        """Roll the writer's connection back after `exc`; the error to raise (Photon's)."""
        error = self.translate(exc)
        try:
            connection.rollback()
        except Exception:
            error = error if isinstance(error, BackendUnavailable) else BackendUnavailable(f"{self.name}: {exc}")
        if isinstance(error, BackendUnavailable):
            # The session (and with it the writer lock) is gone: drop it; the next write
            # reconnects and takes the lock again.
            self._drop_writer()
        return error

    # -- the contract --------------------------------------------------------------------

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            return
        insert, upsert = self._append_statements()
        connection = self._writer_connection()
        rows, versions = self._numbered(events)
        cursor = connection.cursor()
        tags = tag_rows(events)
        try:
            if self._pipelined:
                # One round trip: every statement is sent before the first answer is awaited,
                # and the pipeline's end waits for all of them, COMMIT included.
                with connection.driver_connection.pipeline():
                    cursor.execute("BEGIN")
                    cursor.executemany(insert, rows)
                    cursor.executemany(upsert, versions)
                    if tags:
                        cursor.executemany(self._insert_tags_sql(), tags)
                    cursor.execute("COMMIT")
            else:
                self.begin_write(cursor)
                cursor.executemany(insert, rows)
                cursor.executemany(upsert, versions)
                if tags:
                    cursor.executemany(self._insert_tags_sql(), tags)
                connection.commit()
        except Exception as exc:
            self._forget_stream_numbers()
            raise self._writer_failed(connection, exc) from exc
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
        if self._statistics is not None:
            self._statistics.appended(len(events))

    def _drop_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.invalidate()
            self._writer = None

    def begin_write(self, cursor: Any) -> None:
        """Start the write transaction (SQLite takes the write lock at once)."""

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
                    for start in range(0, len(blocks), CHUNK):  # through the index, block by block
                        where = (
                            block(events.c.stream_version).in_(blocks[start : start + CHUNK]),
                            events.c.stream_id == number,
                        )
                        self._drop_read_entries(conn, where)
                        removed += conn.execute(sa.delete(events).where(*where)).rowcount
                conn.execute(sa.delete(streams).where(streams.c.stream_name == stream))
                self._put(conn, HIGH_WATER_KEY, str(high_water).encode())
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
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
                for start in range(0, len(blocks), CHUNK):
                    where = (
                        block(events.c.stream_version).in_(blocks[start : start + CHUNK]),
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
                    self._drop_read_entries(conn, where)
                    removed += conn.execute(sa.delete(events).where(*where)).rowcount or 0
                if removed:  # events of block 0 went: the stream's number is kept where the writer finds it
                    keep_number(conn, streams, number)
                self._put(conn, HIGH_WATER_KEY, str(high_water).encode())
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
        return int(removed)

    def _drop_read_entries(self, conn: Any, where: Any) -> None:
        """Remove the read index's entries of the events `where` selects (SQLite: `read_index`)."""
        drop_entries(conn, self._metadata, self._events, where)

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
            raise translate_error(exc) from exc

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
            raise translate_error(exc) from exc
        return True

    def end_bulk_load(self, ok: bool) -> None:
        import sqlalchemy as sa

        try:
            if ok:
                try:
                    with self._engine.begin() as conn:
                        create_indexes(conn, self._events.indexes)  # a backend may keep one during the load
                    if self._statistics is not None:
                        self._statistics.loaded(self.last_order_id())
                    return
                except sa.exc.IntegrityError as exc:
                    self._empty_and_index()
                    raise IntegrityError(f"the loaded events repeat an id or a stream version: {exc.orig}") from exc
            self._empty_and_index()
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc

    def _empty_and_index(self) -> None:
        import sqlalchemy as sa

        self._forget_stream_numbers()
        with self._engine.begin() as conn:
            conn.execute(sa.delete(self._events))
            conn.execute(sa.delete(self._streams_table))
            conn.execute(sa.delete(self._metadata.tables[TAGS_TABLE]))
            for name in (READ_INDEX, READ_INDEX_MARK):  # SQLite's read index, where the store has one
                if name in self._metadata.tables:
                    conn.execute(sa.delete(self._metadata.tables[name]))
            conn.execute(sa.delete(self._checkpoints).where(self._checkpoints.c.key == HIGH_WATER_KEY))
            create_indexes(conn, self._events.indexes)

    def _put(self, conn: Any, key: str, value: bytes | None) -> None:
        self._put_parts(conn, key, None if value is None else (value,))

    def _put_parts(self, conn: Any, key: str, parts: Sequence[bytes | memoryview] | None) -> None:
        key_values.put(conn, self._checkpoints, self._metadata.tables[CHECKPOINT_PARTS_TABLE], key, parts)

    def write_checkpoint(self, key: str, value: bytes | None) -> None:
        self.write_checkpoint_parts(key, None if value is None else (value,))

    def write_checkpoint_parts(self, key: str, parts: Sequence[bytes | memoryview] | None) -> None:
        import sqlalchemy as sa

        try:
            with self._engine.begin() as conn:
                self._put_parts(conn, key, parts)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
