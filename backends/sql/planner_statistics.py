"""PostgreSQL's planner statistics of the events table, kept fresh by the writer as it grows.

Before a table's first ANALYZE the planner knows neither how many rows it holds nor that its rows
lie in order-id order: for a page of `__all__` (``order_id >= $1 ORDER BY order_id LIMIT $2``) it
then scans the whole table and sorts it (measured on 20,000 events: 46 ms for a page of 1,000,
against 2 ms through the primary key once analyzed). Autovacuum analyzes a table only a minute or
more after it grew, and a store just filled is read meanwhile; so the writer asks for an ANALYZE
of the store's tables itself whenever the events table has doubled since the last one (the first
at `FIRST_ROWS` events, or at open when the table was never analyzed), on a connection and thread
of its own: an append never waits for it. Doubling bounds the work: each ANALYZE reads a sample
of at most 30,000 rows (PostgreSQL's default), and a table of n events gets about log2(n) of them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

FIRST_ROWS = 1000
"""Events the table holds at its first ANALYZE."""
JOIN_SECONDS = 10.0
"""How long closing the store waits for an ANALYZE under way."""


class PlannerStatistics:
    """Runs ``ANALYZE`` of `tables` on `engine` when the first of them (the events) has doubled."""

    def __init__(self, engine: Any, tables: tuple[str, ...]) -> None:
        self._engine = engine
        self._tables = tables
        self._rows = 0
        self._next = FIRST_ROWS
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def opened(self, rows: int) -> None:
        """The store opened with about `rows` events: analyze now if the table never was (or
        has more than doubled since), else when it doubles."""
        self._rows = rows
        with self._engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(name)s)", {"name": self._tables[0]}
            ).first()
        analyzed = float(found[0]) if found is not None else -1.0  # -1: never analyzed
        if rows >= FIRST_ROWS and (analyzed < 0 or 2 * analyzed < rows):
            self._start()
        else:
            self._next = max(FIRST_ROWS, 2 * max(rows, int(analyzed)))

    def appended(self, count: int) -> None:
        """`count` more events were committed."""
        self._rows += count
        if self._rows >= self._next:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return  # the one under way counts; the next is due when the table doubles again
            self._next = 2 * max(self._rows, FIRST_ROWS)
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
