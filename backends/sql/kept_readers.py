"""Connections the PostgreSQL reads keep between reads, in autocommit mode.

A read through the pool costs three round trips besides its statements: the pool's liveness
ping at checkout, and the BEGIN and COMMIT of the driver's implicit transaction. A read is one
or two statements, each consistent on its own (a stream's events are looked up by the number
the first one finds, which never changes), so it needs no transaction: the kept connections are
in autocommit mode and skip the ping. A read that finds its kept connection dead (the server
restarted) drops it and runs again once on a fresh connection from the pool, which pings.
"""

from __future__ import annotations

import contextlib
from typing import Any

KEPT = 8
"""Idle connections kept for reads; more readers at once take more from the pool and give them back."""


class KeptReaders:
    """Idle read connections (SQLAlchemy pool connections, checked out and kept)."""

    def __init__(self) -> None:
        self._idle: list[Any] = []

    def take(self, engine: Any) -> tuple[Any, bool]:
        """A connection, and whether it is fresh from the pool (so it was pinged just now)."""
        try:
            return self._idle.pop(), False
        except IndexError:
            pass
        connection = engine.raw_connection()
        connection.driver_connection.autocommit = True
        return connection, True

    def give_back(self, connection: Any) -> None:
        if len(self._idle) < KEPT:
            self._idle.append(connection)
        else:
            _release(connection)

    @staticmethod
    def discard(connection: Any) -> None:
        """A connection that failed: the pool makes a new one in its place."""
        with contextlib.suppress(Exception):
            connection.invalidate()

    def close(self) -> None:
        while self._idle:
            _release(self._idle.pop())


def _release(connection: Any) -> None:
    """Back to the pool as it came out of it (the pool's other users run transactions)."""
    with contextlib.suppress(Exception):
        connection.driver_connection.autocommit = False
        connection.close()
