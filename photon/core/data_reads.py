"""History as each event's stored JSON alone, for a reader that decodes the events itself.

A projection worker catching up decodes every event's JSON and needs nothing else: whole events
(`RecordedEvent`: seven columns, three of them strings) cost SQLite about 1.4 µs an event to hand
over, the order-id and the JSON about 0.5 µs. `read_data_pages` reads the same events as
`EventStore.read_pages` (same plan, same bounds) through `Backend.read_data` (and, for one stream,
read by blocks of versions, `Backend.read_stream_data`) wherever the backend's answer needs no
check by the core: `__all__`, one stream, and categories and event types the backend has an index
for. Any other read (a filter the core checks event by event; a stream whose metadata bounds its
reads) is `read_pages`, its events' JSON taken.
`read_data_arrays` gives each page as one JSON array (decoded by one call, or sent on whole).
`read_data_rows` gives each event's order-id too (the `eventsourcing` module's notification
selects: on PostgreSQL this also spares the statement the running byte sum of `read`'s pages).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from photon.core.backend import Query

if TYPE_CHECKING:
    from photon.core.store import EventStore

GROWTH = 4
"""A page holds at most this many times the events of the page before it (as `photon.core.paging`)."""


def read_data_pages(
    store: EventStore,
    stream: str,
    *,
    from_order_id: int,
    to_order_id: int | None,
    event_types: Iterable[str] | None = None,
    max_events: int = 5000,
) -> Iterator[list[bytes]]:
    """The stored JSON of the events `store.read(stream, ...)` gives, page by page: each page at
    most `max_events` events and about the store's `replay.page.bytes` of data."""
    for rows in read_data_rows(
        store,
        stream,
        from_order_id=from_order_id,
        to_order_id=to_order_id,
        event_types=event_types,
        max_events=max_events,
    ):
        yield [data for _, data in rows]


def read_data_arrays(
    store: EventStore,
    stream: str,
    *,
    from_order_id: int,
    to_order_id: int | None,
    event_types: Iterable[str] | None = None,
    max_events: int = 5000,
) -> Iterator[tuple[int, int, bytes]]:
    """`read_data_pages` with each page as one JSON array: (events, last order-id, `[json,...]`).

    `__all__` (and the categories and types the backend indexes) through `Backend.read_data_array`,
    which SQLite answers with the page joined by the database (0.4 µs an event against 0.75 for
    the rows joined here); every other read is `read_data_rows`, joined here."""
    history = store.history(stream, event_types=event_types, page_events=max_events)
    plan = history.plan
    if plan.stream is not None or (plan.check is not None and not plan.stored_exact):
        for rows in read_data_rows(
            store,
            stream,
            from_order_id=from_order_id,
            to_order_id=to_order_id,
            event_types=event_types,
            max_events=max_events,
        ):
            yield len(rows), rows[-1][0], b"[" + b",".join([data for _, data in rows]) + b"]"
        return
    backend = store.backend
    max_bytes = max(1, store.page_bytes)
    size = max(1, min(max_events, 16))
    position = from_order_id
    while to_order_id is None or position <= to_order_id:
        query = Query(
            from_order_id=position,
            to_order_id=to_order_id,
            from_version=history.from_version,
            from_time=history.from_time,
            event_types=plan.event_types,
            categories=plan.categories,
            limit=size,
        )
        page = backend.read_data_array(query)
        if page is None:
            return
        count, last, array = page
        yield page
        if count < size:
            return
        position = last + 1
        average = max(1, len(array) // count)
        size = max(1, min(max_events, max_bytes // average, count * GROWTH))


def read_data_rows(
    store: EventStore,
    stream: str,
    *,
    from_order_id: int,
    to_order_id: int | None,
    event_types: Iterable[str] | None = None,
    max_events: int = 5000,
    first_events: int = 16,
) -> Iterator[list[tuple[int, bytes]]]:
    """`read_data_pages` with each event's order-id: pages of (order-id, stored JSON). The first
    page holds at most `first_events` events (small by default, as no size is known yet; a reader
    that wants a known number of events asks for them in one page)."""
    history = store.history(stream, event_types=event_types, page_events=max_events)
    plan = history.plan
    if plan.check is not None and not plan.stored_exact:
        for page in history.pages(from_order_id, to_order_id):
            yield [(event.order_id, event.data) for event in page]
        return
    backend = store.backend
    max_bytes = max(1, store.page_bytes)
    size = max(1, min(max_events, first_events))
    position = from_order_id
    version = history.from_version
    while to_order_id is None or position <= to_order_id:
        query = Query(
            stream=plan.stream,
            from_order_id=position,
            to_order_id=to_order_id,
            from_version=version,
            from_time=history.from_time,
            event_types=plan.event_types,
            categories=plan.categories,
            limit=size,
        )
        if plan.stream is None:
            rows = backend.read_data(query)
            if not rows:
                return
            position = rows[-1][0] + 1
        else:
            # A stream's later events have later versions: the next page starts at the version
            # after this one's last, where the backend's stream index finds it at once.
            stream_rows = backend.read_stream_data(query)
            if not stream_rows:
                return
            rows = [(order_id, data) for order_id, _, data in stream_rows]
            position = stream_rows[-1][0] + 1
            version = stream_rows[-1][1] + 1
        yield rows
        if len(rows) < size:
            return
        average = max(1, sum(len(data) for _, data in rows) // len(rows))
        size = max(1, min(max_events, max_bytes // average, len(rows) * GROWTH))
