"""Pages of history sized by bytes, not only by events: the one paging read of the store.

Every reader of history (`EventStore.read` and `read_pages`, subscriptions and replays, backups,
stream exports) reads through `HistoryPages`. A page of 10,000 events is 2 MB of small events
and 10 GB of 1 MiB ones. Readers of history ask the backend for a number of events, so the
number is worked out from the sizes of the events just read: the first page is small, each
next one holds about `max_bytes` at the average size seen so far (growing at most 4-fold a
page, so that a stream whose events grow cannot blow a page up by much), never more than
`max_events`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from photon.core.backend import Backend
from photon.core.events import RecordedEvent
from photon.core.filtered_reads import ReadPlan, read_page

FIRST_PAGE = 16
"""Events in the first page, before any size is known."""
GROWTH = 4


class PageSizer:
    """How many events the next page of a history read should ask for."""

    __slots__ = ("_next", "backend_bounds_bytes", "max_bytes", "max_events")

    def __init__(self, max_events: int, max_bytes: int, *, backend_bounds_bytes: bool = False) -> None:
        self.max_events = max(1, max_events)
        self.max_bytes = max(1, max_bytes)
        self.backend_bounds_bytes = backend_bounds_bytes
        """The backend stops a page at `max_bytes` itself (`Backend.reads_by_bytes`): every page
        asks for `max_events`."""
        self._next = self.max_events if backend_bounds_bytes else min(self.max_events, FIRST_PAGE)

    def next(self) -> int:
        return self._next

    def saw(self, events: Sequence[RecordedEvent]) -> None:
        """Size the next page from the page just read."""
        if not events or self.backend_bounds_bytes:
            return
        size = sum(len(event.data) for event in events)
        average = max(1, size // len(events))
        fitting = max(1, self.max_bytes // average)
        self._next = max(1, min(self.max_events, fitting, len(events) * GROWTH))


class HistoryPages:
    """A read of history through a read plan (`photon.core.filtered_reads`), page by page, each
    page of about `max_bytes` of event data and at most `max_events` events.

    `from_version` and `from_time` bound the read (a stream's metadata narrows them: see
    `EventStore.read_bounds`); order-ids carry the read on from page to page, and a stream's read
    also moves its version bound past the last version it returned.
    """

    __slots__ = ("backend", "from_time", "from_version", "plan", "sizer")

    def __init__(
        self,
        backend: Backend,
        plan: ReadPlan,
        *,
        max_events: int,
        max_bytes: int,
        from_version: int | None = None,
        from_time: int | None = None,
    ) -> None:
        self.backend = backend
        self.plan = plan
        self.sizer = PageSizer(max_events, max_bytes, backend_bounds_bytes=backend.reads_by_bytes)
        self.from_version = from_version or 1
        self.from_time = from_time

    def next_page(
        self, from_order_id: int, to_order_id: int | None, limit: int | None = None
    ) -> tuple[list[RecordedEvent], int, bool]:
        """The next page from `from_order_id` up to `to_order_id`, of at most `limit` events:
        (events, the order-id to read on from, whether the read is done)."""
        size = self.sizer.next() if limit is None else min(self.sizer.next(), limit)
        page = read_page(
            self.backend,
            self.plan,
            from_order_id=from_order_id,
            to_order_id=to_order_id,
            from_version=self.from_version,
            from_time=self.from_time,
            limit=size,
            max_bytes=self.sizer.max_bytes,
        )
        events = page[0]
        # Order-ids carry the read on; a stream's read also starts its next page past the last
        # version it returned, so that the backend starts there rather than at the first version.
        if events:
            self.from_version = events[-1].stream_version + 1 if self.plan.stream is not None else 1
        self.sizer.saw(events)
        return page

    def pages(
        self, from_order_id: int = 1, to_order_id: int | None = None, limit: int | None = None
    ) -> Iterator[list[RecordedEvent]]:
        """Every page from `from_order_id` up to `to_order_id`, at most `limit` events in all."""
        position = from_order_id
        remaining = limit
        while remaining is None or remaining > 0:
            events, position, exhausted = self.next_page(position, to_order_id, remaining)
            if events:
                yield events
            if exhausted:
                return
            if remaining is not None:
                remaining -= len(events)
