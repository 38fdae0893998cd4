"""SQLite's category and event-type index, filled by the writer in steps rather than at every
commit (`schema.read_index_tables`), as KurrentDB builds its `$ce-` and `$et-` indexes beside
the log rather than in each write.

The writer's append counts the events past the mark (the order-id up to which every event has
its entries); when they reach `ReadIndexer.every`, the same transaction files them all, in
order-id order (so each name's entries go to the end of its range; sorting them by name first
saved no log page of an eventsourcing insert and cost a sort of every batch), and moves the
mark. The entries and the mark therefore change with the events they describe, atomically: a
killed writer leaves them consistent. Reads take the index up to the mark and scan
``photon_events`` past it (`statements.read_select`), at most `every` order-ids. A deletion or
truncation (a scavenge's too) removes its events' entries in the same transaction
(`SQLBackend._drop_read_entries`); reads join the index with the events all the same.
"""

from __future__ import annotations

import logging
from typing import Any

from .schema import CATEGORY_KIND, READ_INDEX, READ_INDEX_MARK, TYPE_KIND, category_expression

log = logging.getLogger("photon.sqlite")

EVERY = 1000
"""Order-ids past the mark that make the writer's next append file them: a read of a category
or an event type scans at most this many events of ``photon_events`` beyond the index. Measured
(`benchmarks.es_floor --pages`): the steps add about 0.1 log pages to an insert of 10 events,
where two indexes of ``photon_events`` took 4.5."""
CATCH_UP_LOGGED = 100_000
"""A catch-up at least this long (in order-ids) is logged: an upgrade, or a killed restore."""


def _entries(kind: int, name: str, in_key_order: bool) -> str:
    return (
        f"INSERT OR IGNORE INTO {READ_INDEX} (kind, name, order_id) SELECT {kind}, {name}, order_id"
        " FROM photon_events WHERE order_id > ? AND order_id <= ?" + (" ORDER BY 2, 3" if in_key_order else "")
    )


STEP = (
    _entries(CATEGORY_KIND, str(category_expression("sqlite")), False),
    _entries(TYPE_KIND, "event_type", False),
)
CATCH_UP_STEP = (
    _entries(CATEGORY_KIND, str(category_expression("sqlite")), True),
    _entries(TYPE_KIND, "event_type", True),
)
"""A catch-up's entries in key order: a whole store's (an upgrade, a restore) go into the index
page after page, as a built index's do, rather than at the end of each name's range in turn,
which leaves pages half full."""
SET_MARK = f"INSERT OR REPLACE INTO {READ_INDEX_MARK} (id, order_id) VALUES (0, ?)"
GET_MARK = f"SELECT order_id FROM {READ_INDEX_MARK} WHERE id = 0"


def stored_mark(connection: Any) -> int:
    row = connection.execute(GET_MARK).fetchone()
    return int(row[0]) if row else 0


class ReadIndexer:
    """The writer's side of the read index, on the writer's own sqlite3 connection."""

    def __init__(self, every: int | None = None) -> None:
        self.every = EVERY if every is None else every
        self.mark: int | None = None
        """The stored mark as the writer knows it (None: to be read again)."""

    def file(self, connection: Any, last: int) -> None:
        """In the transaction of an append whose last event has order-id `last`: file the events
        past the mark when they have reached `every`."""
        mark = self.mark
        if mark is None:
            mark = self.mark = stored_mark(connection)
        if last - mark >= self.every:
            self._step(connection, mark, last)

    def _step(self, connection: Any, mark: int, last: int, statements: tuple[str, ...] = STEP) -> None:
        for statement in statements:
            connection.execute(statement, (mark, last))
        connection.execute(SET_MARK, (last,))
        self.mark = last

    def forget(self) -> None:
        """After a rolled back write, or when the tables were emptied: read the mark again."""
        self.mark = None

    def catch_up(self, connection: Any) -> None:
        """File every event past the mark, in a transaction of its own (a writer's open, the end
        of a bulk load)."""
        self.forget()
        connection.execute("BEGIN IMMEDIATE")
        try:
            mark = stored_mark(connection)
            last = connection.execute("SELECT max(order_id) FROM photon_events").fetchone()[0] or 0
            if last > mark:
                self._step(connection, mark, last, CATCH_UP_STEP if last - mark > self.every else STEP)
            connection.execute("COMMIT")
        except BaseException:
            self.forget()
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if last - mark >= CATCH_UP_LOGGED:
            log.info("filed %d order-ids of events into the category and event-type index", last - mark)


def drop_entries(conn: Any, metadata: Any, events: Any, where: Any) -> None:
    """Remove the entries of the events `where` selects, before a deletion or truncation removes
    the events (in its transaction, on `conn`): reads would skip them (they join the events),
    but a category whose events were mostly removed would still be read entry by entry. Nothing
    where the store keeps no read index (`metadata` without its table: PostgreSQL)."""
    import sqlalchemy as sa

    index = metadata.tables.get(READ_INDEX)
    if index is None:
        return
    entries = sa.union_all(
        sa.select(sa.literal(CATEGORY_KIND), category_expression("sqlite"), events.c.order_id).where(*where),
        sa.select(sa.literal(TYPE_KIND), events.c.event_type, events.c.order_id).where(*where),
    )
    conn.execute(sa.delete(index).where(sa.tuple_(index.c.kind, index.c.name, index.c.order_id).in_(entries)))
