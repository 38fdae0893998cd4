"""What the SQL backends do differently on PostgreSQL: the writer lock is a session-level advisory
lock, and libpq's connection options make a dead server or peer show quickly."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from typing import Any

from photon.core.errors import StoreLocked

#: The advisory lock a writer holds (one store per database; the number spells "PHOT").
POSTGRES_LOCK_KEY = 0x50484F54

CHUNK_ROWS = 100
"""Rows per chunk of a page read the server hands out in chunks (see `hands_out_chunks`): what a
read holds beyond its `max_bytes` is at most this many events."""
DRAIN_ROWS = 2 * CHUNK_ROWS
"""Rows of a page ended early by its `max_bytes` that are read and dropped to finish the result
(the core sizes pages by their events' average size, so few are left); past them the rest of the
statement is cancelled (a cancel request costs a connection, and the server logs it)."""


@functools.cache
def hands_out_chunks(driver: str) -> bool:
    """Whether the driver hands a result out in chunks of rows as they arrive: psycopg 3.2 or later
    over libpq 17 or later (its chunked rows mode).

    Then a page read bounded by bytes is a plain ordered, limited statement whose rows are
    counted as they come and the result left once they pass the bound. Without chunks a psycopg
    client receives the whole result before the first row, so the statement ends the page at the
    bound itself with a running sum of the events' sizes, a window function that cost the server
    about 0.9 µs an event (measured: 2.0 ms of the server's CPU for the statement of a category
    read of 1,000 events, 1.1 ms without the sum; docs/benchmarks.md)."""
    if driver != "psycopg":
        return False
    try:
        import psycopg

        chunked = bool(psycopg.capabilities.has_stream_chunked())
    except (ImportError, AttributeError):  # psycopg before 3.2 has no capabilities
        return False
    # The steps of psycopg's own `Cursor.stream` that `chunk_cursor.ChunkCursor` runs.
    steps = all(hasattr(psycopg.Cursor, step) for step in CURSOR_STEPS)
    return chunked and steps and hasattr(psycopg.Connection, "cancel_safe")


CURSOR_STEPS = ("_stream_send_gen", "_stream_fetchone_gen")
"""What `chunk_cursor.ChunkCursor` runs of psycopg's cursor (3.2 and later have them)."""


def connect_args(driver: str) -> dict[str, Any]:
    """libpq options: fail fast when the server is unreachable, notice a dead peer, name the session."""
    args: dict[str, Any] = {
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
    }
    if driver in ("psycopg", "psycopg2"):
        # Shown by the advisory-lock holder query when a second writer is refused.
        args["application_name"] = f"photon pid {os.getpid()} on {socket.gethostname()}"[:63]
    return args


def take_advisory_lock(connection: Any, where: str, translate: Callable[[BaseException], BaseException]) -> None:
    """Take the writer lock on the writer's own DBAPI `connection`, or raise `StoreLocked` naming the holder.

    The server drops the lock when the session ends, so a writer that dies (or loses its
    connection) frees the store; a writer that reconnects takes it again, and fails if another
    process took it meanwhile. `where` describes the store; `translate` turns driver errors into Photon's.
    """
    cursor = connection.cursor()
    try:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (POSTGRES_LOCK_KEY,))
        (taken,) = cursor.fetchone()
        holder = None
        if not taken:
            cursor.execute(
                "SELECT a.pid, a.application_name, host(a.client_addr) FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.objid = %s",
                (POSTGRES_LOCK_KEY & 0xFFFFFFFF,),
            )
            holder = cursor.fetchone()
        connection.commit()
    except Exception as exc:
        raise translate(exc) from exc
    finally:
        cursor.close()
    if not taken:
        who = (
            f"server process {holder[0]} ({holder[1] or 'no name'} from {holder[2] or 'local'})"
            if holder
            else ("another session")
        )
        raise StoreLocked(
            f"the store is already open for writing by {who} (advisory lock {POSTGRES_LOCK_KEY} on "
            f"{where}); one process writes a store"
        )
