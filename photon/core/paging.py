"""Pages of history sized by bytes, not only by events.

A page of 10,000 events is 2 MB of small events and 10 GB of 1 MiB ones. Readers of history
(replays, subscriptions, `EventStore.read`) ask the backend for a number of events, so the
number is worked out from the sizes of the events just read: the first page is small, each
next one holds about `max_bytes` at the average size seen so far (growing at most 4-fold a
page, so that a stream whose events grow cannot blow a page up by much), never more than
`max_events`.
"""

from __future__ import annotations

from collections.abc import Sequence

from photon.core.events import RecordedEvent

FIRST_PAGE = 16
"""Events in the first page, before any size is known."""
GROWTH = 4


class PageSizer:
    """How many events the next page of a history read should ask for."""

    __slots__ = ("_next", "max_bytes", "max_events")

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max(1, max_events)
        self.max_bytes = max(1, max_bytes)
        self._next = min(self.max_events, FIRST_PAGE)

    def next(self) -> int:
        return self._next

    def saw(self, events: Sequence[RecordedEvent]) -> None:
        """Size the next page from the page just read."""
        if not events:
            return
        size = sum(len(event.data) for event in events)
        average = max(1, size // len(events))
        fitting = max(1, self.max_bytes // average)
        self._next = max(1, min(self.max_events, fitting, len(events) * GROWTH))
