"""PostgreSQL's planner statistics of the events table, made by the writer once it holds events.

Before a table's first ANALYZE the planner knows neither how many rows it holds nor that its rows
lie in order-id order: for a page of `__all__` (``order_id >= $1 ORDER BY order_id LIMIT $2``) it
then scans the whole table and sorts it (measured on 20,000 events: 46 ms for a page of 1,000,
against 2 ms through the primary key once analyzed). Autovacuum analyzes a table only a minute or
more after it grew, and a store just filled is read meanwhile; so the writer asks for an ANALYZE
of the store's tables itself when the events table first holds `FIRST_ROWS` events (or at open,
when it holds them but has no statistics), on a connection and thread of its own: an append never
waits for it. Once is enough: with the order known, the planner takes the primary key for any
start (it reads the index's actual bounds past the statistics' range; measured at 40,000 events
with no later ANALYZE), and autovacuum keeps the statistics from then on.
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
    """Runs ``ANALYZE`` of `tables` on `engine` once the first of them (the events) holds
    `FIRST_ROWS` rows, unless it has statistics already."""

    def __init__(self, engine: Any, tables: tuple[str, ...]) -> None:
        self._engine = engine
        self._tables = tables
        self._rows = 0
        self._due = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def opened(self, rows: int) -> None:
        """The store opened with about `rows` events: analyze now if it holds `FIRST_ROWS` and has
        no statistics (never analyzed, or analyzed nearly empty), later if it holds fewer."""
        self._rows = rows
        with self._engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(name)s)", {"name": self._tables[0]}
            ).first()
        analyzed = float(found[0]) if found is not None else -1.0  # -1: never analyzed
        self._due = analyzed < FIRST_ROWS / 2
        if self._due and rows >= FIRST_ROWS:
            self._start()

    def appended(self, count: int) -> None:
        """`count` more events were committed."""
        if self._due:
            self._rows += count
            if self._rows >= FIRST_ROWS:
                self._start()

    def _start(self) -> None:
        with self._lock:
            if not self._due:
                return
            self._due = False
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
