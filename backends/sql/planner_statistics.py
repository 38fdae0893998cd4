"""PostgreSQL's planner statistics of the events table, made by the writer as the table grows.

Before a table's first ANALYZE the planner knows neither how many rows it holds nor that its rows
lie in order-id order: for a page of `__all__` (``order_id >= $1 ORDER BY order_id LIMIT $2``) it
then scans the whole table and sorts it (measured on 20,000 events: 46 ms for a page of 1,000,
against 2 ms through the primary key once analyzed). Statistics taken when the table was small
mislead it too: a category read (``split_part(stream_name, '-', 1) = $1 ... ORDER BY order_id
LIMIT 1000``) planned from the category counts of the first thousand events fetched every event of
the category through a bitmap scan and sorted them (measured on 200,000 events: 17.9 ms against
3.9 ms through the category index in order, once analyzed).

Autovacuum analyzes a table only a minute or more after it grew, and a store just filled is read
meanwhile; so the writer asks for an ANALYZE of the store's tables itself when the events table
first holds `FIRST_ROWS` events and again each time it has grown `GROWTH` times since (or at open,
when its statistics are that far behind), on a connection and thread of its own: an append never
waits for it. An ANALYZE samples a bounded number of rows, so its cost does not grow with the
table, and tenfold steps make it rare. A bulk load (a restore) analyzes at its end, before the
store is read.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

FIRST_ROWS = 1000
"""Events the table holds at its first ANALYZE."""
GROWTH = 10
"""How many times larger the table grows between two ANALYZEs of the writer."""
JOIN_SECONDS = 10.0
"""How long closing the store waits for an ANALYZE under way."""


class PlannerStatistics:
    """Runs ``ANALYZE`` of `tables` on `engine` when the first of them (the events) holds
    `FIRST_ROWS` rows and at each `GROWTH`-fold growth since, unless its statistics are that
    recent already."""

    def __init__(self, engine: Any, tables: tuple[str, ...]) -> None:
        self._engine = engine
        self._tables = tables
        self._rows = 0
        self._next = FIRST_ROWS
        """The number of events at which the writer analyzes next."""
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def opened(self, rows: int) -> None:
        """The store opened with about `rows` events: analyze now if it holds `FIRST_ROWS` and its
        statistics are missing or describe a table `GROWTH` times smaller, else when it is due."""
        self._rows = rows
        with self._engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(name)s)", {"name": self._tables[0]}
            ).first()
        analyzed = float(found[0]) if found is not None else -1.0  # -1: never analyzed
        self._next = max(FIRST_ROWS, int(analyzed * GROWTH))
        if rows >= self._next:
            self._start()

    def appended(self, count: int) -> None:
        """`count` more events were committed."""
        self._rows += count
        if self._rows >= self._next:
            self._start()

    def loaded(self, rows: int) -> None:
        """A bulk load left the table holding `rows` events: analyze now, before it is read."""
        self._rows = rows
        self.wait()
        self._next = max(FIRST_ROWS, rows * GROWTH)
        self._analyze()

    def _start(self) -> None:
        with self._lock:
            if self._rows < self._next:
                return
            self._next = self._rows * GROWTH
            thread = self._thread
            if thread is not None and thread.is_alive():
                return  # the ANALYZE under way sees these rows, or most of them
            self._thread = threading.Thread(target=self._analyze, name="photon-analyze", daemon=True)
            self._thread.start()

    def _analyze(self) -> None:
        try:
            with self._engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE " + ", ".join(self._tables))
        except Exception as exc:  # statistics only help the planner: a failure costs no data
            log.warning("ANALYZE of %s failed: %s", ", ".join(self._tables), exc)

    def close(self) -> None:
        """Wait (a little) for an ANALYZE under way, before the engine goes."""
        thread = self._thread
        if thread is not None:
            thread.join(JOIN_SECONDS)

    def wait(self) -> None:
        """Wait for an ANALYZE under way (tests)."""
        thread = self._thread
        if thread is not None:
            thread.join()
