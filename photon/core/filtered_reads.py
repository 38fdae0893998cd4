"""Reads through a filter: what the backend can answer from an index, and what the core scans.

A read names a stream, `__all__`, or a category (`__category__:<name>`), and may carry an
`EventFilter`. `plan_read` decides once what goes to the backend (the stream, event types, and
categories when the backend has a category index) and what the core checks on each page (the
whole filter: prefixes and regular expressions always, categories when the backend has no index
for them). `read_page` reads one page through that plan: a scan that finds nothing in a page
reads on, so a sparse filter costs pages of `__all__` but never returns an empty page early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import itemgetter

from photon.core.backend import Backend, Query
from photon.core.errors import ValidationError
from photon.core.events import (
    ALL_STREAM,
    INTERNAL_PREFIX,
    RecordedEvent,
    is_one_stream,
    names_no_category,
    stream_category,
    stream_pattern,
)
from photon.core.filters import EventFilter

_DATA = itemgetter(6)
"""A RecordedEvent's data, taken in C: a page's sizes summed without a Python step an event."""


@dataclass(frozen=True)
class ReadPlan:
    stream: str | None
    """The backend's stream (None: `__all__`)."""
    event_types: frozenset[str] | None
    """Given to the backend (every backend filters by type)."""
    categories: frozenset[str] | None
    """Given to the backend when it has a category index."""
    check: Callable[[RecordedEvent], bool] | None
    """Applied by the core to every event read (None: the backend's answer is exact)."""
    stored_exact: bool = False
    """The backend's answer needs no check (live events still do)."""


def combined_filter(stream: str, event_types: frozenset[str] | None, event_filter: EventFilter | None) -> EventFilter:
    """The one filter a read means: its `event-types`, its filter, and a category stream's category."""
    combined = event_filter or EventFilter()
    if event_types is not None:
        types = tuple(sorted(event_types))
        if combined.event_types:
            types = tuple(t for t in combined.event_types if t in event_types)
        combined = replace(combined, event_types=types)
    category = stream_category(stream)
    if category is not None:
        if names_no_category(stream):
            raise ValidationError(
                f"{stream!r} names no category: a category is a stream name's part before its first '-'", "stream"
            )
        categories = (category,) if not combined.categories else tuple(c for c in combined.categories if c == category)
        combined = replace(combined, categories=categories or ("",))
    return combined


def check_filter_applies(stream: str, event_filter: EventFilter | None) -> None:
    """Refuse a filter beyond event types on one stream: it filters `__all__` or a category."""
    if event_filter is None or event_filter.empty or stream == ALL_STREAM or stream_category(stream) is not None:
        return
    if stream_pattern(stream) is not None:
        return  # a `**` wildcard is `__all__` read through the filter
    extra = set(event_filter.to_payload()) - {"event-types", "event-type-prefix", "event-type-regex"}
    if extra:
        raise ValidationError(f"{sorted(extra)[0]} filters __all__ or a category, not one stream", sorted(extra)[0])


def plan_read(
    backend: Backend, stream: str, event_types: frozenset[str] | None, event_filter: EventFilter | None
) -> ReadPlan:
    """How to read `stream` (a stream, `__all__`, a category or a `**` wildcard) through `event_types` and
    `event_filter`."""
    if event_filter is None and event_types is None and is_one_stream(stream):
        return ReadPlan(stream, None, None, None)  # a whole stream: what the rest works out, at once
    pattern = stream_pattern(stream)
    if pattern is not None:
        # Photon's wildcard: `__all__` read through the filter, and the name matched on each event.
        whole = plan_read(backend, ALL_STREAM, event_types, event_filter)
        named = pattern.match
        inner = whole.check

        def matches(event: RecordedEvent) -> bool:
            return named(event.stream_name) is not None and (inner is None or inner(event))

        return replace(whole, check=matches)
    plain_stream = stream != ALL_STREAM and stream_category(stream) is None
    check_filter_applies(stream, event_filter)
    combined = combined_filter(stream, event_types, event_filter)
    types = frozenset(combined.event_types) if combined.event_types or event_types is not None else None
    if plain_stream:
        needs_check = bool(combined.event_type_prefixes or combined.event_type_regex)
        return ReadPlan(stream, types, None, combined.matches if needs_check else None)
    only_types = replace(combined, event_types=())
    if only_types.empty:
        return ReadPlan(None, types, None, None)
    categories = frozenset(combined.categories) if "category" in backend.indexed_reads and combined.categories else None
    # Filters beyond event types read client streams only (internal streams are Photon's own).
    client_only = stream == ALL_STREAM
    # The backend's category index answers a category read exactly: only live events need the check.
    exact = categories is not None and not client_only and replace(only_types, categories=()).empty

    def check(event: RecordedEvent) -> bool:
        if client_only and event.stream_name.startswith(INTERNAL_PREFIX):
            return False
        return combined.matches(event)

    return ReadPlan(None, types, categories, check, exact)


def read_page(
    backend: Backend,
    plan: ReadPlan,
    *,
    from_order_id: int,
    to_order_id: int | None,
    from_version: int = 1,
    from_time: int | None = None,
    limit: int,
    max_bytes: int | None = None,
) -> tuple[list[RecordedEvent], int, bool]:
    """Up to `limit` matching events: (events, the order-id to read on from, whether the read is done).

    `max_bytes` goes to a backend that `reads_by_bytes`: a page it ended at that bound is short
    of `limit` without being the end of the read."""
    position = from_order_id
    version = from_version
    bounded = max_bytes if backend.reads_by_bytes else None
    while True:
        raw = backend.read(
            Query(
                stream=plan.stream,
                from_order_id=position,
                to_order_id=to_order_id,
                from_version=version,
                from_time=from_time,
                event_types=plan.event_types,
                categories=plan.categories,
                limit=limit,
                max_bytes=bounded,
            )
        )
        exhausted = len(raw) < limit and (bounded is None or sum(map(len, map(_DATA, raw))) < bounded)
        if raw:
            position = raw[-1].order_id + 1
            # A stream's later events have later versions too: reading on from the next version
            # lets the backend start where the page ended (from version 1, each page of a long
            # stream would cost more than the one before).
            version = raw[-1].stream_version + 1 if plan.stream is not None else 1
        check = None if plan.stored_exact else plan.check
        events = raw if check is None else [e for e in raw if check(e)]
        if events or exhausted:
            return events, position, exhausted
