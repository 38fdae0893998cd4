"""The SQL the backends run: statements compiled once per dialect, the reads' queries, and the
rows an append writes. Functions of their arguments: the backends own the connections."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

from photon.core.append_request import QueryItem
from photon.core.backend import Query
from photon.core.errors import BackendError, BackendUnavailable, IntegrityError
from photon.core.events import RecordedEvent, Tagless, event_tags

from .schema import (
    BLOCKS_PER_READ,
    CATEGORY_KIND,
    READ_INDEX,
    READ_INDEX_MARK,
    TAGS_TABLE,
    TYPE_KIND,
    block,
    category_expression,
)

make_event = partial(tuple.__new__, RecordedEvent)
"""A row (a RecordedEvent's columns in order) as a RecordedEvent, without the constructor's checks."""
STREAM_NAME = itemgetter(1)  # RecordedEvent.stream_name
_STREAM_AND_VERSION = itemgetter(1, 2)  # RecordedEvent.stream_name, .stream_version
_DATA = itemgetter(6)  # RecordedEvent.data


class Statement(NamedTuple):
    """A statement compiled for the connected dialect, with positional parameters."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    def bind(self, values: dict[str, Any]) -> tuple[Any, ...]:
        defaults = self.defaults
        return tuple(values[n] if n in values else defaults[n] for n in self.names)


def event_columns(events: Any) -> list[Any]:
    """The columns of a RecordedEvent, in its order."""
    return [events.c[name] for name in RecordedEvent._fields]


def read_key(query: Query, bytes_in_sql: bool) -> tuple[Any, ...]:
    """What the statement of `query` depends on: one compiled statement serves every query of a shape."""
    types = len(query.event_types) if query.event_types is not None else 0
    categories = len(query.categories) if query.categories is not None else 0
    return (
        "read",
        query.stream is not None,
        query.to_order_id is not None,
        query.from_time is not None,
        types,
        categories,
        bytes_in_sql and query.max_bytes is not None,
    )


BLOCK_PARAMS = tuple(f"b{i}" for i in range(BLOCKS_PER_READ))
"""The parameters of a stream statement's blocks of versions, in order."""
LAST_VERSION = "last_version"
"""The extra column of a stream's page: the stream's current version (from ``photon_streams``)."""


def read_select(
    events: Any,
    streams: Any,
    dialect: str,
    query: Query,
    bytes_in_sql: bool = False,
    last_version: bool = True,
    columns: Sequence[Any] | None = None,
) -> Any:
    """The statement of one page of `query` (its values come from `read_params`), selecting
    `columns` of the events (default: a RecordedEvent's).

    A read of categories or event types where the store keeps them in a read index of its own
    (SQLite, `schema.read_index_tables`) is that index up to its mark joined with the events,
    and the events past the mark scanned (`indexed_select`).

    A stream's page finds the stream's number by its name in the same statement, and gives the
    stream's current version with every row (LAST_VERSION, after the event's columns): one round
    trip per page (without it with `last_version` False: `stream_read_select` gives it once).

    With `bytes_in_sql` and a `max_bytes`, the database itself ends the page at the byte bound
    (a running sum of the events' sizes, which the limit stops early): for a client that receives
    a whole result before it hands out the first row (psycopg without libpq's chunked rows mode),
    the bound on what it holds. Where the rows come in chunks, the reader ends the page instead
    (`SQLReads._page_bytes_in_sql`): the window was nearly half the server's time of such a read."""
    import sqlalchemy as sa

    if not (bytes_in_sql and query.max_bytes is not None):
        if query.stream is None and (query.categories or query.event_types) and READ_INDEX in events.metadata.tables:
            return indexed_select(events, dialect, query, columns)
        select = _page_select(events, streams, dialect, query, last_version)
        if columns is not None:
            select = select.with_only_columns(*columns)
        return select.limit(sa.bindparam("limit"))
    if columns is not None:
        raise BackendError("a page bounded by bytes in SQL selects whole events")
    # A stream's limited rows in version order alone (the same order as by block and version):
    # the running sum's window is then over rows already in its order, where by (block,
    # version) PostgreSQL sorted them a second time (about 15% of the statement's time).
    select = _page_select(events, streams, dialect, query, last_version, by_version=True)
    # The limit is taken first, in a subquery of its own, and the running sum over its rows only:
    # with the window over the whole selection the database sorted every row from the start on
    # (to disk, past work_mem) before the limit could stop it (measured on PostgreSQL: 28 ms
    # against 8 ms for a page of 1,000 events of 15,000), where an ordered limit is a top-N
    # sort or an index walk. The sum of a row depends only on the rows before it: the same rows.
    order_name = "stream_version" if query.stream is not None else "order_id"
    limited = select.limit(sa.bindparam("limit")).subquery("limited")
    size = sa.func.length(limited.c.data)
    order = limited.c[order_name]
    before = (sa.func.sum(size).over(order_by=order, rows=(None, 0)) - size).label("bytes_before")
    with_last = query.stream is not None and last_version
    names = [*RecordedEvent._fields, LAST_VERSION] if with_last else RecordedEvent._fields
    page = sa.select(*[limited.c[name] for name in names], before).subquery("page")
    return (
        sa.select(*[page.c[name] for name in names])
        .where(page.c.bytes_before < sa.bindparam("max_bytes"))
        .order_by(page.c[order_name])
    )


def stream_read_select(events: Any, streams: Any, dialect: str, query: Query, bytes_in_sql: bool = False) -> Any:
    """A stream's page as `read_select`'s, but with the stream's current version in a row of its
    own before the events (`order_id` NULL, the version as `stream_version`, the other columns
    NULL) rather than as a last column on every row: each event row is then a RecordedEvent's
    columns as they are, made into an event without slicing it (about 730 instructions a row
    less, and one column less a row to send and load), and a statement past the stream's last
    event still says where the stream ends. No such row: no such stream.

    The row comes first where the database runs a UNION ALL's branches in turn (PostgreSQL's
    Append); a reader that finds it elsewhere looks for it (`reads.split_last_version`)."""
    import sqlalchemy as sa

    page = read_select(events, streams, dialect, query, bytes_in_sql, last_version=False)
    version = streams.c.version
    columns = [
        sa.cast(version, column.type).label(name) if name == "stream_version" else sa.cast(sa.null(), column.type)
        for name, column in zip(RecordedEvent._fields, event_columns(events), strict=True)
    ]
    head = sa.select(*columns).where(streams.c.stream_name == sa.bindparam("stream"))
    return sa.union_all(head, page)


def _page_select(
    events: Any,
    streams: Any,
    dialect: str,
    query: Query,
    last_version: bool = True,
    by_version: bool = False,
    lowest: Any = None,
) -> Any:
    """`lowest`: the lowest order-id as SQL (default: the query's `from_order_id`)."""
    import sqlalchemy as sa

    types = len(query.event_types) if query.event_types is not None else 0
    categories = len(query.categories) if query.categories is not None else 0
    conditions = [events.c.order_id >= (sa.bindparam("from_order_id") if lowest is None else lowest)]
    columns = event_columns(events)
    source = events
    if query.stream is not None:
        source = streams.join(events, events.c.stream_id == streams.c.stream_id)
        if last_version:
            columns.append(streams.c.version.label(LAST_VERSION))
        conditions += [
            streams.c.stream_name == sa.bindparam("stream"),
            block(events.c.stream_version).in_([sa.bindparam(name) for name in BLOCK_PARAMS]),
            events.c.stream_version >= sa.bindparam("from_version"),
        ]
    if query.to_order_id is not None:
        conditions.append(events.c.order_id <= sa.bindparam("to_order_id"))
    if query.from_time is not None:
        conditions.append(events.c.event_time >= sa.bindparam("from_time"))
    if types:
        conditions.append(events.c.event_type.in_([sa.bindparam(f"t{i}") for i in range(types)]))
    if categories:
        conditions.append(category_condition(events, dialect, categories))
    if query.stream is None:
        return sa.select(*columns).select_from(source).where(*conditions).order_by(events.c.order_id)
    # Versions in the stream index's own order (block, then version: the same order), so that
    # SQLite walks the index's blocks in turn instead of sorting the rows (measured: about 20%
    # less time for a read of a 200-event stream).
    order = (events.c.stream_version,) if by_version else (block(events.c.stream_version), events.c.stream_version)
    return sa.select(*columns).select_from(source).where(*conditions).order_by(*order)


def indexed_select(events: Any, dialect: str, query: Query, columns: Sequence[Any] | None) -> Any:
    """A page of categories or event types through the read index: the index's range of each
    name up to the mark, joined with the events, then the events past the mark that match, in
    order-id order (SQLite merges the two, each in that order already, and stops at the limit).

    The index drives by category when the query names categories (the types then filter the
    events), else by type."""
    import sqlalchemy as sa

    index = events.metadata.tables[READ_INDEX]
    mark_table = events.metadata.tables[READ_INDEX_MARK]
    mark = sa.select(sa.func.coalesce(sa.func.max(mark_table.c.order_id), 0)).scalar_subquery()
    selected = list(columns) if columns is not None else event_columns(events)
    # The events past the mark: one lower bound (SQLite seeks by one of two), the later of the two.
    lowest = sa.func.max(mark + 1, sa.bindparam("from_order_id"))
    tail = _page_select(events, None, dialect, query, lowest=lowest).with_only_columns(*selected).order_by(None)
    names: list[Any]
    if query.categories:
        kind, names = CATEGORY_KIND, [sa.bindparam(f"c{i}") for i in range(len(query.categories))]
    else:
        kind, names = TYPE_KIND, [sa.bindparam(f"t{i}") for i in range(len(query.event_types or ()))]
    conditions = [
        index.c.kind == sa.literal_column(str(kind)),
        index.c.name.in_(names),
        index.c.order_id >= sa.bindparam("from_order_id"),
        index.c.order_id <= mark,
    ]
    if query.to_order_id is not None:
        conditions.append(index.c.order_id <= sa.bindparam("to_order_id"))
    if query.from_time is not None:
        conditions.append(events.c.event_time >= sa.bindparam("from_time"))
    if query.categories and query.event_types:
        conditions.append(events.c.event_type.in_([sa.bindparam(f"t{i}") for i in range(len(query.event_types))]))
    # The order-id from the index itself: its range is in that order, so nothing is sorted.
    filed_columns = [index.c.order_id.label("order_id") if c is events.c.order_id else c for c in selected]
    filed = (
        sa.select(*filed_columns)
        .select_from(index.join(events, events.c.order_id == index.c.order_id))
        .where(*conditions)
    )
    return sa.union_all(filed, tail).order_by(sa.literal_column("order_id")).limit(sa.bindparam("limit"))


def category_condition(events: Any, dialect: str, count: int) -> Any:
    import sqlalchemy as sa

    expression = category_expression(dialect)
    names: list[Any] = [sa.bindparam(f"c{i}") for i in range(count)]
    if expression is not None:
        return expression.in_(names)
    # Another database: the same meaning, without the index.
    name = events.c.stream_name
    return sa.or_(*(sa.or_(name == n, name.like(n + "-%")) for n in names))


def read_params(query: Query) -> dict[str, Any]:
    params: dict[str, Any] = {"from_order_id": query.from_order_id, "limit": query.limit}
    if query.max_bytes is not None:
        params["max_bytes"] = query.max_bytes
    if query.stream is not None:  # the stream's blocks are set per statement
        params["stream"] = query.stream
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


def matching_sql(query: tuple[QueryItem, ...], after: int, limit: int) -> tuple[str, dict[str, Any]]:
    """The statement (and its values) of events matching a DCB query, through the tags index: each
    item with tags is a range of it per tag (intersected), so the cost follows the events that
    carry the tags, not the size of the store. Rows of the tags index whose event was deleted find
    no event and drop out."""
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
    return sql, params


def last_versions(events: Sequence[RecordedEvent]) -> dict[str, int]:
    """Each stream's last version among `events` (later events overwrite earlier ones)."""
    return dict(map(_STREAM_AND_VERSION, events))


def tag_rows(events: Sequence[RecordedEvent]) -> list[tuple[str, int]]:
    """The rows of the tags index for `events` (most events have no tags: nothing to decode).

    Whether any event may carry tags is asked first over the whole batch in C (a loop in
    Python over every event cost about 0.3 µs an event of a batch without tags), with
    `bytes.find`: ``in`` (`bytes.__contains__`) first tries its argument as an integer (a byte
    value), and for bytes formats and drops a TypeError each time (counted with callgrind: about
    1,800 instructions an event, more than the search). A `Tagless` list is not searched."""
    if type(events) is Tagless or max(map(bytes.find, map(_DATA, events), repeat(b'"tags"')), default=-1) < 0:
        return []
    return [
        (tag, event.order_id)
        for event in events
        if event.data.find(b'"tags"') >= 0
        for tag in set(event_tags(event.data))
    ]


def translate_error(exc: Any) -> BackendError:
    """A SQLAlchemy error as one of Photon's."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.IntegrityError):
        return IntegrityError(str(exc.orig or exc))
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        return BackendUnavailable(str(getattr(exc, "orig", None) or exc))
    return BackendError(str(exc))
