"""The reading half of the SQL backends: the engine's compiled statements, how they run, and
every read of the storage contract. `SQLBackend` adds the connections, the writer and the writes."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from photon.core.append_request import QueryItem
from photon.core.backend import Backend, Query, StreamInfo
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError
from photon.core.events import RecordedEvent

from .schema import BLOCK_BITS, BLOCKS_PER_READ, HIGH_WATER_KEY
from .statements import (
    Statement,
    event_columns,
    make_event,
    matching_sql,
    read_key,
    read_params,
    read_select,
    translate_error,
)

CHUNK = 500
"""Names or ids per statement of a look-up by many."""


class SQLReads(Backend):
    """Reads from the tables of `schema` through the engine `SQLBackend.open` makes."""

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

    def _read_sql(self, query: Query) -> Statement:
        return self._sql(read_key(query), lambda: read_select(self._events, self._dialect, query))

    def _execute(self, statement: Statement, values: dict[str, Any]) -> list[Any]:
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
        return self._read_rows(self._read_sql(query), read_params(query))

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
        statement, values = self._read_sql(query), read_params(query)
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

    def read_data(self, query: Query) -> list[tuple[int, bytes]]:
        """The order-id and JSON columns alone, which SQLite hands over in about a third of the
        time of whole rows (0.5 against 1.4 µs an event); a stream's read goes by blocks, as `read`."""
        if query.stream is not None:
            return super().read_data(query)
        if (query.event_types is not None and not query.event_types) or (
            query.categories is not None and not query.categories
        ):
            return []
        events = self._events
        statement = self._sql(
            ("data", *read_key(query)),
            lambda: read_select(events, self._dialect, query).with_only_columns(events.c.order_id, events.c.data),
        )
        rows: list[tuple[int, bytes]] = self._execute(statement, read_params(query))
        return rows

    def _read_rows(self, statement: Statement, values: dict[str, Any]) -> list[RecordedEvent]:
        return list(map(make_event, self._execute(statement, values)))

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
