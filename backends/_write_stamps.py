"""Write timestamps: how the cassandra backend makes a stale writer's rows lose.

Cassandra settles two writes of the same cell by their timestamps (the higher wins; a tombstone
deletes only what is not newer than it). The head's lightweight transaction fences a writer's
commit, but not the rows it writes before it: a writer paused past its lease and taken over
would, on waking, overwrite the rows the next writer committed at the same order-ids. So every
write of the events' tables carries ``USING TIMESTAMP`` from this clock, and the clock gives each
writer timestamps above every earlier writer's.

The head row holds ``stamp``, a ceiling: the writer that holds the head issues only timestamps
below it. A writer claims the head (its lightweight transaction names the ceiling it read, so
nothing moved it meanwhile) and sets a new ceiling; its own timestamps begin at the ceiling it
read, above anything an earlier writer issued. When its timestamps come near its ceiling it
raises it, with another lightweight transaction conditioned on the head still naming it and
that ceiling. A writer that lost the head can raise nothing, so whatever it sends after waking
carries a timestamp below the next writer's first.

Within those bounds the timestamps follow the wall clock in microseconds (Cassandra's own
default), strictly rising: rows an older version wrote with default timestamps are older than
any stamped write after them, when the writers' clocks agree, as Cassandra requires anyway.
"""

from __future__ import annotations

import threading
import time

SPAN = 30_000_000
"""How far (microseconds) past the wall clock, or past the ceiling before, a writer sets its
ceiling: it raises it (one lightweight transaction) about every SPAN of writing, and a takeover
leaves the next writer's timestamps at most this far ahead of the clock."""


def now_us() -> int:
    return time.time_ns() // 1000


def ceiling_after(current: int | None, now: int) -> int:
    """The ceiling a writer sets when the head's is `current` (None: a store of a version before)."""
    return max(current or 0, now) + SPAN


class WriteStamps:
    """One writer's timestamps: strictly rising, never below its floor, always below its ceiling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.floor = 0
        self.ceiling = 0  # 0: none claimed (a reader, or a writer before its claim)
        self._last = 0

    def claimed(self, floor: int, ceiling: int) -> None:
        """The head was claimed: the earlier writers' timestamps are all below `floor`."""
        with self._lock:
            self.floor, self.ceiling = floor, ceiling

    def raised(self, ceiling: int) -> None:
        with self._lock:
            self.ceiling = max(self.ceiling, ceiling)

    def next(self, now: int) -> int | None:
        """The next timestamp, or None when the ceiling must be raised first."""
        with self._lock:
            stamp = max(self._last + 1, self.floor, now)
            if stamp >= self.ceiling:
                return None
            self._last = stamp
            return stamp
