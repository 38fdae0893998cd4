"""A psycopg cursor that hands a result out a chunk of rows at a time, as the server sends it.

psycopg's own `Cursor.stream(size=N)` receives the rows in chunks (libpq 17's chunked rows mode)
but hands them out one by one from a Python generator: one generator step and one call into
the row loader per row, about 0.6M instructions of a 1,000-event page read (callgrind; see
docs/benchmarks.md). `ChunkCursor.chunks` runs the same steps as `stream` (the same send and
fetch generators of psycopg's cursor) and loads each chunk with one call (`load_rows`, in C with
the binary wheels), so a page read runs no Python per row at all.

A reader that stops before the end of the result closes the generator: the rest of the result
is read and dropped without being loaded up to `drain_rows` rows (cheaper than a cancel request,
which costs the server a connection and a log line), and past them the statement is cancelled,
as `stream` cancels it.

Imported only where psycopg is (`SQLReads._reading_kept`); `postgres.hands_out_chunks` checks
that the installed psycopg has the steps this cursor is built on.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import pq
from psycopg.generators import execute, send

_ACTIVE = pq.TransactionStatus.ACTIVE
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_BINARY = pq.Format.BINARY
_NAMES = itertools.count()
"""Numbers of the prepared statements' names, unique in the process (a connection's chunk cursor
made again, after the first was closed, never meets a name already prepared on its session)."""

MAX_PREPARED = 50
"""Prepared chunked statements a connection at most (a read's statement is one of a few shapes;
an unusual shape past them runs unprepared rather than growing the server's session)."""


class ChunkCursor(psycopg.Cursor[Any]):
    """A cursor whose `chunks` yields each chunk of a result as one list of rows (binary results)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared_names: dict[tuple[str, Any], bytes] = {}
        """The statements this cursor prepared on its connection: (query, parameter types) -> name."""

    def chunks(self, query: str, params: Any, size: int, drain_rows: int) -> Iterator[list[Any]]:
        """The rows of `query`, `size` at a time (the last chunk may be shorter), run as a
        prepared statement from its first run on the connection (see `_prepared_send_gen`)."""
        if self._pgconn.pipeline_status:
            raise psycopg.ProgrammingError("chunks() cannot be used in pipeline mode")
        with self._conn.lock:
            try:
                self._conn.wait(self._prepared_send_gen(query, params, size))
                first = True
                while result := self._conn.wait(self._stream_fetchone_gen(first)):
                    yield self._tx.load_rows(0, result.ntuples, self._make_row)
                    first = False
            finally:
                if self._pgconn.transaction_status == _ACTIVE:
                    self._finish(drain_rows)

    def _prepared_send_gen(self, query: str, params: Any, size: int) -> Any:
        """Send `query` as `Cursor.stream` sends it, but as a prepared statement: psycopg's own
        `stream` never prepares, so every read was parsed and planned again by the server (about
        0.15 ms a read; docs/benchmarks.md). The statement is prepared at its first run on the
        connection (named `photon_chunks_N`; psycopg's own names are `_pg3_N`), up to
        MAX_PREPARED statements a connection, then sent unprepared; a connection whose
        `prepare_threshold` is None (preparing switched off) is never prepared on. libpq's chunked
        rows mode serves a prepared statement as it serves any other."""
        yield from self._start_query(query)
        pgq = self._convert_query(query, params)
        key = (query, pgq.types)
        name = self._prepared_names.get(key)
        if name is None and self._conn.prepare_threshold is not None and len(self._prepared_names) < MAX_PREPARED:
            name = b"photon_chunks_%d" % next(_NAMES)
            self._pgconn.send_prepare(name, pgq.query, param_types=pgq.types)
            for result in (yield from execute(self._pgconn)):
                if result.status == _FATAL_ERROR:
                    raise psycopg.errors.error_from_result(result, encoding=self._encoding)
            self._prepared_names[key] = name
        if name is None:
            self._execute_send(pgq, binary=True, force_extended=True)
        else:
            self._pgconn.send_query_prepared(name, pgq.params, param_formats=pgq.formats, result_format=_BINARY)
        self._pgconn.set_chunked_rows_mode(size)
        self._last_query = query
        yield from send(self._pgconn)

    def _finish(self, drain_rows: int) -> None:
        """End a result its reader left early: drop up to `drain_rows` more rows unloaded, then
        cancel the statement if it still has more, and read what is left of it (as `stream`)."""
        drained = 0
        with contextlib.suppress(psycopg.Error):
            while drained < drain_rows:
                result = self._conn.wait(self._stream_fetchone_gen(False))
                if result is None:
                    return  # the result's end: the connection is idle again
                drained += result.ntuples
        if self._pgconn.transaction_status != _ACTIVE:
            return
        with contextlib.suppress(Exception):  # as `stream`: a failed cancel leaves the rest to read
            self._conn.cancel_safe()
        with contextlib.suppress(psycopg.Error):
            while self._conn.wait(self._stream_fetchone_gen(False)):
                pass
        with contextlib.suppress(psycopg.Error):  # out of the ACTIVE state after the cancel's error
            self._conn.wait(self._stream_fetchone_gen(False))
