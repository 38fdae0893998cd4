"""What the SQL backends do differently on PostgreSQL: the writer lock is a session-level advisory
lock, and libpq's connection options make a dead server or peer show quickly."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from photon.core.errors import StoreLocked

#: The advisory lock a writer holds (one store per database; the number spells "PHOT").
POSTGRES_LOCK_KEY = 0x50484F54


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
