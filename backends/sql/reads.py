"""The reading half of the SQL backends: the engine's compiled statements, how they run, and
every read of the storage contract. `SQLBackend` adds the connections, the writer and the writes.

Long because a stream's read walks its blocks through either shape of its statement (the
stream's version on every row for SQLite, in a row of its own on PostgreSQL), and the kept
PostgreSQL connections' reading lives here beside the pool's."""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, TypeVar

from photon.core.append_request import QueryItem
from photon.core.backend import Backend, Query, StreamInfo
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError
from photon.core.events import RecordedEvent

from . import key_values
from .kept_readers import KeptReaders
from .postgres import CHUNK_ROWS, DRAIN_ROWS, hands_out_chunks
from .schema import BLOCK_BITS, BLOCKS_PER_READ, CHECKPOINT_PARTS_TABLE, HIGH_WATER_KEY
from .statements import (
    BLOCK_PARAMS,
    LAST_VERSION,
    Statement,
    event_columns,
    make_event,
    matching_sql,
    read_key,
    read_params,
    read_select,
    stream_read_select,
    translate_error,
)

_NEW_TUPLE: Callable[[type[RecordedEvent], Any], RecordedEvent] = tuple.__new__

CHUNK = 500
"""Names or ids per statement of a look-up by many."""

T = TypeVar("T")
EVENT_COLUMNS = itemgetter(slice(0, len(RecordedEvent._fields)))
"""A stream page's row without its last column (the stream's version)."""
_DATA = itemgetter(6)
"""A row's RecordedEvent.data."""
_DATA_COLUMNS = itemgetter(slice(0, 3))
"""A stream data page's row without its last column: (order-id, version, JSON)."""
Run = Callable[[str, Sequence[Any]], Iterable[Any]]
"""Runs a statement on a read's connection and returns its rows."""


def fetching(cursor: Any, **options: Any) -> Run:
    """`Run` on a DB-API cursor (`options` go to its `execute`)."""

    def run(sql: str, params: Sequence[Any]) -> Iterable[Any]:
        cursor.execute(sql, params, **options)
        rows: list[Any] = cursor.fetchall()
        return rows

    return run


def chunked(cursor: Any, opened: list[Any]) -> Run:
    """`Run` on a `chunk_cursor.ChunkCursor`: the rows come as lists of up to CHUNK_ROWS, each
    as the server sends it (binary results); each result's generator goes into `opened`, for the
    reader to close when it stops early (which drains or cancels the rest of the result)."""

    def run(sql: str, params: Sequence[Any]) -> Iterable[Any]:
        chunks = cursor.chunks(sql, params, CHUNK_ROWS, DRAIN_ROWS)
        opened.append(chunks)
        return chunks  # type: ignore[no-any-return]

    return run


def split_last_version(rows: list[Any]) -> int | None:
    """Take the stream's version row of a `statements.stream_read_select` result out of `rows`
    (the event rows stay, in order) and return its version; None when the statement found no
    such stream (no rows at all). The row comes first; it is looked for only where it does not."""
    if not rows:
        return None
    if rows[0][0] is not None:  # order_id: only the version's row has none
        for index, row in enumerate(rows):
            if row[0] is None:
                rows.insert(0, rows.pop(index))
                break
        else:
            raise BackendError("a stream page came without the stream's version row")
    return int(rows.pop(0)[2])  # RecordedEvent.stream_version


def _without_last(rows: Iterable[Any]) -> list[Any]:
    return list(map(_DATA_COLUMNS, rows))


def as_events(rows: Iterable[Any]) -> list[RecordedEvent]:
    """Rows of a RecordedEvent's columns in order as RecordedEvents, made in C: `tuple.__new__`
    called by `map` (no `partial` between them, which built an argument tuple a row: about 0.3M
    instructions less a 1,000-event page than `map(make_event, rows)`)."""
    return list(map(_NEW_TUPLE, repeat(RecordedEvent), rows))


def take_events(rows: Iterable[Any], max_bytes: int | None) -> list[RecordedEvent]:
    """`rows` as events; with `max_bytes`, only up to the event whose data reaches that many bytes
    (the rows after it are never made into events, nor, from a cursor that steps, read)."""
    if max_bytes is None:
        return as_events(rows)
    events: list[RecordedEvent] = []
    size = 0
    for row in rows:
        events.append(make_event(row))
        size += len(row[6])  # RecordedEvent.data
        if size >= max_bytes:
            break
    return events


def take_chunked_events(chunks: Iterable[list[Any]], max_bytes: int) -> list[RecordedEvent]:
    """As `take_events` with a `max_bytes`, for rows that arrive in chunks (lists of rows): a
    chunk whose events all fit is taken whole (its sizes summed and its events made in C, about
    a third of a microsecond less an event than row by row); only the chunk that reaches the
    bound goes row by row, up to the event that reaches it."""
    events: list[RecordedEvent] = []
    size = 0
    for chunk in chunks:
        chunk_size = sum(map(len, map(_DATA, chunk)))
        if size + chunk_size < max_bytes:
            events += as_events(chunk)
            size += chunk_size
            continue
        return events + take_events(chunk, max_bytes - size)
    return events


_KEPT_CURSOR = "photon.read_cursor"
"""Where a kept read connection holds its cursor (`connection.info`, which lives as long as the
driver's connection and is cleared when the pool invalidates it)."""


def _kept_cursor(connection: Any) -> Any:
    """The one plain cursor of a kept read connection, made at its first read and used by every
    read after: psycopg keeps a cursor's parameter dumpers and column loaders while it runs the
    same statement again (a new cursor looked each of them up again, a read), and the cursor's
    making and closing cost a read as much again. It holds its last result until the next read
    on the connection: at most a page (`Query.max_bytes`) a kept connection."""
    info = connection.info
    cursor = info.get(_KEPT_CURSOR)
    if cursor is None or cursor.closed:
        cursor = info[_KEPT_CURSOR] = connection.driver_connection.cursor()
    return cursor


_KEPT_CHUNK_CURSOR = "photon.read_chunk_cursor"
"""Where a kept read connection holds its `chunk_cursor.ChunkCursor` (as `_KEPT_CURSOR`)."""


def _kept_chunk_cursor(connection: Any) -> Any:
    """The one `chunk_cursor.ChunkCursor` of a kept read connection (imported where psycopg is
    used: only then are reads in chunks), kept as `_kept_cursor` keeps the plain one: the same
    statement run again keeps its dumpers and loaders. It holds at most its last chunk."""
    info = connection.info
    cursor = info.get(_KEPT_CHUNK_CURSOR)
    if cursor is None or cursor.closed:
        from .chunk_cursor import ChunkCursor

        cursor = info[_KEPT_CHUNK_CURSOR] = ChunkCursor(connection.driver_connection)
    return cursor


class SQLReads(Backend):
    """Reads from the tables of `schema` through the engine `SQLBackend.open` makes."""

    reads_by_bytes = True
    _bytes_in_sql: bool = True
    """The database ends a page at `Query.max_bytes` (see `read_select`); False where the driver's
    cursor hands rows out one at a time, so that stopping there costs nothing (SQLite)."""

    _dialect: str
    _metadata: Any
    _events: Any
    _streams_table: Any
    _checkpoints: Any

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._engine: Any = None
        self._statements: dict[Any, Statement] = {}
        self._statement_lock = threading.Lock()
        self._kept_readers = KeptReaders()

    @property
    def _keeps_readers(self) -> bool:
        engine = self._engine
        return engine is not None and engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"

    @property
    def _streams_pages(self) -> bool:
        """Page reads come in chunks of rows (psycopg over libpq 17+, see `postgres.hands_out_chunks`)."""
        return self._keeps_readers and hands_out_chunks(self._engine.dialect.driver)

    def _page_bytes_in_sql(self, query: Query) -> bool:
        """Whether the statement of `query` ends the page at its `max_bytes` itself: where the
        driver holds a whole result before the first row, except for the pages of many streams
        that come in chunks (a stream's reads, a few blocks of versions a statement, keep it)."""
        return self._bytes_in_sql and not (query.stream is None and self._streams_pages)

    def _sql(self, key: Any, build: Any) -> Statement:
        statement = self._statements.get(key)
        if statement is None:
            with self._statement_lock:
                compiled = build().compile(dialect=self._engine.dialect)
                names = tuple(compiled.positiontup or ())
                statement = Statement(str(compiled), names, {n: compiled.params.get(n) for n in names})
                self._statements[key] = statement
        return statement

    def read_matching(self, query: tuple[QueryItem, ...], after: int, limit: int) -> list[RecordedEvent]:
        """Through the tags index (see `statements.matching_sql`), on the raw connection with the
        statement compiled once per shape of query: a conditional append runs this in the writer
        for every request, where SQLAlchemy's own execution cost more than the query."""
        import sqlalchemy as sa

        sql, params = matching_sql(query, after, limit)
        shape = ("matching", tuple((len(item.types), len(item.tags)) for item in query))
        return self._read_rows(self._sql(shape, lambda: sa.text(sql)), params)

    @property
    def _version_row(self) -> bool:
        """A stream page gives the stream's version in a row of its own (`stream_read_select`)
        rather than on every row: on PostgreSQL, where the rows come as one list (a result
        fetched whole). SQLite keeps the column a row, its rows handed out one by one."""
        return self._keeps_readers

    def _read_sql(self, query: Query) -> Statement:
        in_sql = self._page_bytes_in_sql(query)
        if query.stream is not None and self._version_row:
            return self._sql(
                ("version-row", *read_key(query, in_sql)),
                lambda: stream_read_select(self._events, self._streams_table, self._dialect, query, in_sql),
            )
        return self._sql(
            read_key(query, in_sql),
            lambda: read_select(self._events, self._streams_table, self._dialect, query, in_sql),
        )

    def _stream_sql(self) -> Statement:
        table = self._streams_table

        def build() -> Any:
            import sqlalchemy as sa

            return sa.select(table.c.stream_id, table.c.version).where(table.c.stream_name == sa.bindparam("stream"))

        return self._sql("stream", build)

    def _reading(self, read: Callable[[Run], T], chunks: bool = False) -> T:
        """`read(run)` with `run` running statements on one connection and returning their rows
        (any iterable): a kept autocommit connection on PostgreSQL with psycopg (`kept_readers`),
        else one of the pool, in one transaction that ends when `read` returns. With `chunks`
        (only where `_streams_pages`), the rows come in chunks as the server sends them."""
        if self._keeps_readers:
            return self._reading_kept(read, chunks)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                result = read(fetching(cursor))
            finally:
                cursor.close()
            connection.commit()  # end the read transaction; the connection goes back to the pool clean
            return result
        except Exception as exc:
            raise self.translate(exc) from exc
        finally:
            connection.close()

    def _reading_kept(self, read: Callable[[Run], T], chunks: bool = False) -> T:
        kept = self._kept_readers
        while True:
            connection, fresh = kept.take(self._engine)
            try:
                cursor = _kept_chunk_cursor(connection) if chunks else _kept_cursor(connection)
                opened: list[Any] = []
                # The collector waits: a page makes a tracked tuple a row, and twice as many when
                # the driver's rows become events; none of them makes a cycle. (Inline: the
                # context manager cost more than the switch, a read.)
                collecting = gc.isenabled()
                gc.disable()
                try:
                    # Results in binary: the JSON's bytes as they are, not in hex (psycopg 3).
                    # Prepared at their first run (psycopg's own threshold is the fifth): a
                    # read's statement is one of a few shapes, run again and again on the kept
                    # connections, and a first read planned from scratch cost the server about
                    # 0.3 ms (docs/benchmarks.md); the chunks' statements are prepared too.
                    result = read(chunked(cursor, opened) if chunks else fetching(cursor, binary=True, prepare=True))
                finally:
                    if collecting:
                        gc.enable()
                    for rows in opened:
                        rows.close()  # the rest of a result left early is drained or cancelled
            except Exception as exc:
                error = self.translate(exc)
                if error is exc:  # not the driver's: the connection is as good as before
                    kept.give_back(connection)
                    raise
                kept.discard(connection)
                if not fresh and isinstance(error, BackendUnavailable):
                    continue  # a kept connection the server dropped: once more on a pinged one
                raise error from exc
            kept.give_back(connection)
            return result

    def read(self, query: Query) -> list[RecordedEvent]:
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        statement, values = self._read_sql(query), read_params(query)
        if query.stream is not None:
            return self._reading(lambda run: self._read_stream(run, query, statement, values))
        max_bytes = None if self._page_bytes_in_sql(query) else query.max_bytes
        # In chunks only when the bound may leave rows unread: a page of at most CHUNK_ROWS
        # events is one chunk anyway, and runs as a prepared statement.
        if max_bytes is not None and query.limit > CHUNK_ROWS and self._streams_pages:
            bound = max_bytes
            return self._reading(
                lambda run: take_chunked_events(run(statement.sql, statement.bind(values)), bound), True
            )
        return self._reading(lambda run: take_events(run(statement.sql, statement.bind(values)), max_bytes))

    def _read_rows(self, statement: Statement, values: dict[str, Any]) -> list[RecordedEvent]:
        """The events a statement of whole event rows selects."""
        return self._reading(lambda run: take_events(run(statement.sql, statement.bind(values)), None))

    def _read_stream(
        self,
        run: Run,
        query: Query,
        statement: Statement,
        values: dict[str, Any],
        take: Callable[[Iterable[Any]], list[Any]] | None = None,
    ) -> list[Any]:
        """A stream's events, BLOCKS_PER_READ blocks of versions per statement, until the page is
        full or the stream's last version is passed (filters may leave blocks without a match).

        Each statement gives the stream's last version with its rows: in a row of its own before
        the events where `_version_row` (a `stream_read_select` statement, whose event rows become
        events as they are), else as the last column of every row (only a statement that finds
        nothing then asks for it on its own). `take` makes the page's items of a statement's rows
        of the second kind (each ending with the last version); whole events when None."""
        assert query.stream is not None
        version_row = take is None and self._version_row
        version = max(query.from_version, 1)
        max_bytes = query.max_bytes
        in_python = None if self._page_bytes_in_sql(query) else max_bytes
        events: list[Any] = []
        size = 0
        last: int | None = None
        while (last is None or version <= last) and len(events) < query.limit:
            first = version >> BLOCK_BITS
            values.update(zip(BLOCK_PARAMS, range(first, first + BLOCKS_PER_READ), strict=True))
            values["from_version"] = version
            values["limit"] = query.limit - len(events)
            if max_bytes is not None:
                values["max_bytes"] = max_bytes - size
            result = run(statement.sql, statement.bind(values))
            version = (first + BLOCKS_PER_READ) << BLOCK_BITS
            rows: Iterable[Any]
            if version_row:
                rows = result if isinstance(result, list) else list(result)
                last = split_last_version(rows)
                if last is None:
                    return events  # no such stream
                if not rows:
                    continue
            else:
                stepping = iter(result)
                head = next(stepping, None)
                if head is None:
                    if last is None:
                        found = list(run(self._stream_sql().sql, (query.stream,)))
                        if not found:
                            return events
                        last = int(found[0][1])
                    continue
                last = int(head[-1])
                if take is not None:
                    events += take(chain((head,), stepping))
                    continue
                rows = map(EVENT_COLUMNS, chain((head,), stepping))
            page = take_events(rows, in_python)
            events += page
            if max_bytes is not None:
                size += sum(map(len, map(_DATA, page)))
                if size >= max_bytes:
                    break
        return events

    def read_data(self, query: Query) -> list[tuple[int, bytes]]:
        """The order-id and JSON columns alone, which SQLite hands over in about a third of the
        time of whole rows (0.5 against 1.4 µs an event); a stream's read goes by blocks, as `read`.
        A `max_bytes` is not applied here: the caller bounds its pages by events."""
        if query.stream is not None:
            return super().read_data(query)
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        events, streams = self._events, self._streams_table
        statement = self._sql(
            ("data", *read_key(query, False)),
            lambda: read_select(events, streams, self._dialect, query, columns=(events.c.order_id, events.c.data)),
        )
        values = read_params(query)
        return self._reading(lambda run: list(run(statement.sql, statement.bind(values))))

    def read_stream_data(self, query: Query) -> list[tuple[int, int, bytes]]:
        """A stream's (order-id, version, JSON) alone, by blocks of versions as `read`: about half
        the time of whole events on SQLite (a projection worker catching up on one stream). No
        `max_bytes`, as `read_data`."""
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        query = dataclasses.replace(query, max_bytes=None)
        events, streams = self._events, self._streams_table
        statement = self._sql(
            ("stream-data", *read_key(query, False)),
            lambda: read_select(events, streams, self._dialect, query).with_only_columns(
                events.c.order_id, events.c.stream_version, events.c.data, streams.c.version.label(LAST_VERSION)
            ),
        )
        values = read_params(query)
        return self._reading(lambda run: self._read_stream(run, query, statement, values, _without_last))

    def _core(self, statement: Any, params: Any = None) -> list[Any]:
        """Run a SQLAlchemy Core statement (the paths that are not hot)."""
        import sqlalchemy as sa

        try:
            with self._engine.begin() as conn:
                result = conn.execute(statement, params) if params is not None else conn.execute(statement)
                return list(result.all()) if result.returns_rows else []
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc

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
        for start in range(0, len(names), CHUNK):
            chunk = names[start : start + CHUNK]
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
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            rows = self._core(sa.select(*event_columns(self._events)).where(events.c.event_id.in_(chunk)))
            for row in rows:
                event = make_event(tuple(row))
                found[event.event_id] = event
        return found

    def _entries(self, *where: Callable[[Any], Any]) -> dict[str, bytes]:
        """The key/value entries whose keys meet `where` (functions of a key column), whole."""
        parts = self._metadata.tables[CHECKPOINT_PARTS_TABLE]
        return key_values.joined(self._core(key_values.select(self._checkpoints, parts, *where)))

    def read_checkpoint(self, key: str) -> bytes | None:
        return self._entries(lambda column: column == key).get(key)

    def checkpoints(self, prefix: str) -> dict[str, bytes]:
        # A range rather than LIKE: no escaping of % and _ in the prefix, and the key's index serves it.
        found = self._entries(lambda column: column >= prefix, lambda column: column < prefix + "\U0010ffff")
        return {key: value for key, value in found.items() if key.startswith(prefix)}

    def translate(self, exc: BaseException) -> BaseException:
        """The driver's exception as one of Photon's."""
        import sqlalchemy as sa

        if isinstance(exc, sa.exc.SQLAlchemyError):
            return translate_error(exc)
        dbapi = self._engine.dialect.dbapi if self._engine is not None else None
        if dbapi is not None:
            if isinstance(exc, dbapi.IntegrityError):
                return IntegrityError(f"{self.name}: {exc}")
            if isinstance(exc, (dbapi.OperationalError, dbapi.InterfaceError)):
                return BackendUnavailable(f"{self.name}: {exc}")
            if isinstance(exc, dbapi.Error):
                return BackendError(f"{self.name}: {exc}")
        return exc
