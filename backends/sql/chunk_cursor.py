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
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import pq
from psycopg._preparing import Prepare
from psycopg.generators import execute, send

_ACTIVE = pq.TransactionStatus.ACTIVE
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR


class ChunkCursor(psycopg.Cursor[Any]):
    """A cursor whose `chunks` yields each chunk of a result as one list of rows (binary results)."""

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
        0.1 to 0.3 ms a read; docs/benchmarks.md). The statement is prepared at its first run, in
        psycopg's cache of the connection's prepared statements (the one `execute` uses, so its
        limit, its eviction and a connection's `prepare_threshold = None` hold here as there);
        libpq's chunked rows mode serves a prepared statement as it serves any other."""
        yield from self._start_query(query)
        cache = self._conn._prepared
        yield from cache.maintain_gen(self._conn)  # statements the cache let go, deallocated
        pgq = self._convert_query(query, params)
        prep, name = cache.get(pgq, True)
        if prep is Prepare.NO:  # preparing is switched off on this connection
            self._execute_send(pgq, binary=True, force_extended=True)
        else:
            if prep is Prepare.SHOULD:
                self._send_prepare(name, pgq)
                results = yield from execute(self._pgconn)
                for result in results:
                    if result.status == _FATAL_ERROR:
                        raise psycopg.errors.error_from_result(result, encoding=self._encoding)
                key = cache.maybe_add_to_cache(pgq, prep, name)
                if key is not None:
                    cache.validate(key, prep, name, results)
            else:
                cache.maybe_add_to_cache(pgq, prep, name)  # most recently used
            self._send_query_prepared(name, pgq, binary=True)
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
