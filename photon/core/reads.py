"""Reading a store: pages of history, newest-first windows, conditions' matches, the stream list.

Mixed into `EventStore` (`photon.core.store`), which holds the backend and the stream metadata;
every read of a stream is narrowed by that metadata (`read_bounds`: one rule for reads, replays
and subscriptions), and every forward read of history pages through `photon.core.paging`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

from photon.core.append_request import QueryItem, parse_query
from photon.core.backend import Backend, Query, StreamInfo
from photon.core.errors import ValidationError
from photon.core.events import (
    ALL_STREAM,
    CATEGORY_SEPARATOR,
    MAX_NAME_LENGTH,
    RecordedEvent,
    category_of,
    is_one_stream,
    now_millis,
)
from photon.core.filtered_reads import plan_read
from photon.core.filters import EventFilter
from photon.core.paging import HistoryPages
from photon.core.stream_metadata import MetadataCache

_BACKWARD_SPAN_PAGES = 8
"""A newest-first read widens a window that comes back short up to this many backend pages."""
_CATEGORY_ROUND = 256
"""Stream names read per round when listing categories."""
_HIGHEST_TAIL = chr(0x10FFFF) * MAX_NAME_LENGTH
"""Sorts after every name tail a stream may have: seeking past `category-` + this skips the category."""


def _query_items(query: Sequence[QueryItem] | Sequence[Mapping[str, Any]]) -> tuple[QueryItem, ...]:
    if all(isinstance(item, QueryItem) for item in query):
        return tuple(query)  # type: ignore[arg-type]
    return parse_query([dict(item) if isinstance(item, Mapping) else item for item in query])


class StoreReads:
    """The reads of `EventStore`: what it holds is read from its backend, through its metadata."""

    _backend: Backend
    _metadata: MetadataCache
    read_only: bool
    """Opened without a writer: its metadata is read again from the store before a stream's read."""
    page_bytes: int
    """Event data in one page of a history read (replays, subscriptions, `read`)."""

    def last_order_id(self) -> int:
        """The order-id of the newest durable event (0 when empty): the store's own."""
        raise NotImplementedError

    def read_bounds(
        self, stream: str, from_version: int | None, from_time: int | None
    ) -> tuple[int | None, int | None]:
        """The version and time bounds of a read of `stream`, narrowed by its metadata (one rule
        for reads, replays and subscriptions)."""
        if self.read_only:
            self._metadata.refresh(self._backend)
        metadata = self._metadata.get(stream)
        if metadata is None or not metadata.limits_reads:
            return from_version, from_time
        first = metadata.first_version(self.stream_version(stream) if metadata.max_count is not None else 0)
        if first > 1:
            from_version = max(from_version or 1, first)
        earliest = metadata.first_time(now_millis())
        if earliest is not None:
            from_time = max(from_time or 0, earliest)
        return from_version, from_time

    def stream_exists(self, stream: str) -> bool:
        """Whether the stream has events a reader can see (a deleted or fully truncated one has none)."""
        current = self.stream_version(stream)
        if current == 0:
            return False
        metadata = self._metadata.get(stream)
        if metadata is None:
            return True
        if metadata.tombstone or current < metadata.first_version(current):
            return False
        if metadata.max_age is not None:
            return any(True for _ in self.read(stream, from_version=current, limit=1))
        return True

    def _visible(self, info: StreamInfo) -> bool:
        metadata = self._metadata.get(info.stream_name)
        if metadata is None:
            return True
        return not metadata.tombstone and info.total_events >= metadata.first_version(info.total_events)

    def read(
        self,
        stream: str = ALL_STREAM,
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        from_time: int | None = None,
        to_order_id: int | None = None,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
        event_filter: EventFilter | None = None,
    ) -> Iterator[RecordedEvent]:
        """Stored events of a stream, `__all__` or a category (`__category__:<name>`) in order,
        from any kind of position, up to a bound; `event_filter` narrows `__all__` or a category.

        As lazy as `read_pages` (nothing is read, nor checked, before the first event is asked
        for); the pages are joined in C, where a generator's `yield from` stepped each event."""
        return chain.from_iterable(
            self.read_pages(
                stream,
                from_order_id=from_order_id,
                from_version=from_version,
                from_time=from_time,
                to_order_id=to_order_id,
                event_types=event_types,
                limit=limit,
                event_filter=event_filter,
            )
        )

    def read_pages(
        self,
        stream: str = ALL_STREAM,
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        from_time: int | None = None,
        to_order_id: int | None = None,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
        event_filter: EventFilter | None = None,
        page_events: int | None = None,
    ) -> Iterator[list[RecordedEvent]]:
        """`read` page by page: each page holds about `replay.page.bytes` of event data (see
        `photon.core.paging`) and at most `page_events` events (default: the backend's page size).

        The one paging read of history: backups and stream exports read through it too."""
        yield from self.history(
            stream,
            from_version=from_version,
            from_time=from_time,
            event_types=event_types,
            event_filter=event_filter,
            page_events=page_events,
        ).pages(from_order_id or 1, to_order_id, limit)

    def history(
        self,
        stream: str = ALL_STREAM,
        *,
        from_version: int | None = None,
        from_time: int | None = None,
        event_types: Iterable[str] | None = None,
        event_filter: EventFilter | None = None,
        page_events: int | None = None,
    ) -> HistoryPages:
        """A paging read of `stream` (a stream, `__all__`, a category or a wildcard) through its
        filter, bounded by the stream's metadata (`read_bounds`): what `read_pages` and
        subscriptions read history with."""
        if from_version is not None and not is_one_stream(stream):
            raise ValidationError(
                "from-version applies to a stream; use from (order-id) for __all__, a category or a wildcard",
                "from-version",
            )
        if is_one_stream(stream):
            from_version, from_time = self.read_bounds(stream, from_version, from_time)
        types = frozenset(event_types) if event_types is not None else None
        backend = self._backend
        return HistoryPages(
            backend,
            plan_read(backend, stream, types, event_filter),
            max_events=page_events or backend.read_page_size,
            max_bytes=self.page_bytes,
            from_version=from_version,
            from_time=from_time,
        )

    def read_matching(
        self,
        query: Sequence[QueryItem] | Sequence[Mapping[str, Any]] = (),
        *,
        after: int = 0,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Events of client streams matching a query (as a condition's), with order-id above `after`, in order.

        `query` is a list of `QueryItem`s or of their JSON form ``{"event-types": [...], "tags": [...]}``;
        an empty query matches every client event. What a conditional append checks is exactly
        what this returns.
        """
        items = _query_items(query)
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an order-id (0 or more), got {after!r}", "after")
        remaining = limit
        page_size = self._backend.read_page_size
        position = after
        while remaining is None or remaining > 0:
            page = page_size if remaining is None else min(page_size, remaining)
            events = self._backend.read_matching(items, position, page)
            yield from events
            if len(events) < page:
                return
            position = events[-1].order_id
            if remaining is not None:
                remaining -= len(events)

    def read_backward(
        self,
        stream: str = ALL_STREAM,
        *,
        from_order_id: int | None = None,
        from_version: int | None = None,
        event_types: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """Stored events of a stream, `__all__`, a category or a wildcard newest first, from the
        newest or from a position (inclusive).

        Backends read forwards only; this reads windows of positions whose bounds are known
        (order-ids for `__all__`, a category or a wildcard, versions for a stream, whose versions
        run 1..current with no gap) and hands each window out reversed. A window that comes back
        short (deleted streams leave holes in `__all__`; a category holds some of the order-ids;
        a type filter skips events) doubles the next one.
        """
        one_stream = is_one_stream(stream)
        if from_version is not None and not one_stream:
            raise ValidationError(
                "from-version applies to a stream; use from (order-id) for __all__, a category or a wildcard",
                "from-version",
            )
        if from_order_id is not None:
            # Never above the newest event: from an order-id far past it (up to 2^63-1) the windows
            # walked down through empty order-ids for ever, and a stream's bound overflowed 64 bits.
            from_order_id = min(from_order_id, self.last_order_id())
        types = frozenset(event_types) if event_types is not None else None
        backend = self._backend
        widest = backend.read_page_size * _BACKWARD_SPAN_PAGES
        span = min(limit or backend.read_page_size, backend.read_page_size)
        remaining = limit
        if not one_stream:
            top = self.last_order_id() if from_order_id is None else from_order_id
            while top >= 1 and (remaining is None or remaining > 0):
                low = max(1, top - span + 1)
                if stream == ALL_STREAM:
                    query = Query(from_order_id=low, to_order_id=top, event_types=types, limit=top - low + 1)
                    window = backend.read(query)
                else:  # the forward read's own filter, so both directions hold the same events
                    window = list(self.read(stream, from_order_id=low, to_order_id=top, event_types=types))
                found = len(window)
                window.reverse()
                if remaining is not None:
                    del window[remaining:]
                    remaining -= len(window)
                yield from window
                top = low - 1
                if found < span:
                    span = min(span * 2, widest)
            return
        top_version = self.stream_version(stream)
        bottom, earliest = self.read_bounds(stream, None, None)
        if from_version is not None:
            top_version = min(top_version, from_version)
        if from_order_id is not None:
            # The stream's first event past the order-id bounds the versions to read.
            after = backend.read(Query(stream=stream, from_order_id=from_order_id + 1, limit=1))
            if after:
                top_version = min(top_version, after[0].stream_version - 1)
        bottom = bottom or 1
        while top_version >= bottom and (remaining is None or remaining > 0):
            low = max(bottom, top_version - span + 1)
            window = backend.read(
                Query(stream=stream, from_version=low, from_time=earliest, limit=top_version - low + 1)
            )
            window = [e for e in window if e.stream_version <= top_version]
            if types is not None:
                window = [e for e in window if e.event_type in types]
            found = len(window)
            window.reverse()
            if remaining is not None:
                del window[remaining:]
                remaining -= len(window)
            yield from window
            top_version = low - 1
            if found < span:
                span = min(span * 2, widest)

    def streams(self) -> list[StreamInfo]:
        """Every stream holding events, with its event count (its version), in name order.

        Deleted streams (and streams whose events are all truncated) are left out."""
        found = self._backend.streams()
        return [info for info in found if self._visible(info)] if self._metadata.streams else list(found)

    def stream_page(self, *, prefix: str = "", after: str | None = None, limit: int = 100) -> list[StreamInfo]:
        """One page of the stream list: streams named `prefix...` after the name `after`, in name order."""
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", "limit")
        page = self._backend.stream_page(prefix, after, limit)
        if not self._metadata.streams:
            return page
        # Deleted streams are left out: fetch more until the page is full or the list ends.
        visible = [info for info in page if self._visible(info)]
        while len(page) == limit and len(visible) < limit:
            page = self._backend.stream_page(prefix, page[-1].stream_name, limit)
            visible += [info for info in page if self._visible(info)]
        return visible[:limit]

    def categories(self, *, after: str | None = None, limit: int = 100) -> tuple[list[str], str | None]:
        """One page of categories (see `category_of`), in the order of their first stream's name.

        Returns the categories and the cursor for the next page (the last category, to pass as
        `after`; None at the end). Each round reads a page of stream names, then seeks past the
        rest of the last category seen, so a category of many streams costs one round, not one
        per stream.
        """
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", "limit")
        found: list[str] = []
        seen: set[str] = set() if after is None else {after}
        cursor = after
        while True:
            page = self._backend.stream_page("", cursor, _CATEGORY_ROUND)
            if not page:
                return found, None
            for info in page:
                category = category_of(info.stream_name)
                if category not in seen:
                    if len(found) == limit:
                        return found, found[-1]
                    seen.add(category)
                    found.append(category)
            last = page[-1].stream_name
            cursor = last
            if CATEGORY_SEPARATOR in last:
                cursor = category_of(last) + CATEGORY_SEPARATOR + _HIGHEST_TAIL

    def stream_version(self, stream: str) -> int:
        """The stream's current version (its number of events); 0 when it does not exist."""
        return self._backend.stream_versions([stream]).get(stream, 0)

    def get_event(self, event_id: str) -> RecordedEvent | None:
        return self._backend.events_by_id([event_id]).get(event_id)

    def get_by_order_id(self, order_id: int) -> RecordedEvent | None:
        events = self._backend.read(Query(from_order_id=order_id, to_order_id=order_id, limit=1))
        return events[0] if events else None
