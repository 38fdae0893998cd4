"""One stream out and in: Photon's stream download (`/export/stream/{name}`) and upload (`/api/new-stream`).

An export is the stream's stored events as JSON lines, the same format as a backup. An import
appends a file's events as a new stream: the events keep their content (type, payload, service,
causation, schema, event-time) and get new ids, order-ids and versions, since they are new events
of this store. The stream is named after the file's events (or the name given); when that name
is taken, the first free one of `name-0`, `name-1`, ... is used, as Photon did. The import is one
atomic append: a bad line stores nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from photon.core.errors import NotFound, ValidationError, VersionConflict
from photon.core.event_validation import validate_event
from photon.core.events import ALL_STREAM, ID, ORDER_ID, STREAM_NAME, STREAM_VERSION
from photon.core.store import EventStore

PAGE = 5_000


def export_stream(store: EventStore, name: str) -> Iterator[bytes]:
    """A stream's stored events as JSON lines, in chunks; raises `NotFound` at once when it is empty."""
    if name == ALL_STREAM:
        if store.last_order_id() == 0:
            raise NotFound("the store holds no events")
    elif not store.stream_exists(name):
        raise NotFound(f"stream {name!r} does not exist")
    return _chunks(store, name)


def _chunks(store: EventStore, stream: str) -> Iterator[bytes]:
    # Bounded by the position at the start, so an export is one moment's stream. A stream's
    # metadata hides its expired and truncated events here as in every stream read.
    last = store.last_order_id()
    if last < 1:
        return
    for events in store.read_pages(stream, to_order_id=last, page_events=PAGE):
        yield b"\n".join([event.data for event in events]) + b"\n"


def _events_of(lines: Iterable[bytes], name: str | None, max_bytes: int) -> tuple[str, list[dict[str, Any]]]:
    """The file's events as new client events (positions and ids dropped) and the stream's name."""
    events: list[dict[str, Any]] = []
    source_name: str | None = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            item = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"line {number}: not valid JSON ({exc})") from None
        if not isinstance(item, dict):
            raise ValidationError(f"line {number}: expected a JSON object (an event)")
        if STREAM_NAME not in item and "event-type" not in item:
            continue  # a marker line from a replay
        for field in (ORDER_ID, STREAM_VERSION, ID):
            item.pop(field, None)
        stream = item.get(STREAM_NAME)
        if source_name is None:
            source_name = stream if isinstance(stream, str) else None
        elif stream != source_name:
            raise ValidationError(
                f"line {number}: an event of stream {stream!r} in a file of stream {source_name!r} "
                "(a stream file holds one stream)",
                STREAM_NAME,
            )
        item[STREAM_NAME] = name if name is not None else stream
        try:
            validate_event(item, max_bytes=max_bytes)
        except ValidationError as exc:
            raise type(exc)(f"line {number}: {exc}", exc.field) from None
        events.append(item)
    if not events:
        raise ValidationError("the stream file holds no events")
    target = name if name is not None else source_name
    assert target is not None  # validate_event checked the first event's stream-name
    return target, events


def _candidates(name: str) -> Iterator[str]:
    yield name
    for index in itertools.count():
        yield f"{name}-{index}"


def import_stream(store: EventStore, lines: Iterable[bytes], name: str | None = None) -> tuple[str, int]:
    """Append a stream file's events as a new stream; returns (the stream's name, events stored).

    `name` overrides the name the events carry. A taken name becomes `name-0`, `name-1`, ...
    """
    requested, events = _events_of(lines, name, store.max_event_bytes)
    for candidate in _candidates(requested):
        if store.stream_version(candidate) != 0:
            continue
        for event in events:
            event[STREAM_NAME] = candidate
        try:
            stored = store.append(events, expected_version="no-stream")
        except VersionConflict:
            continue  # another writer took the name meanwhile: try the next one
        except ValidationError as exc:
            # A longer name can break the length limit; nothing was stored.
            raise ValidationError(f"cannot import as stream {candidate!r}: {exc}", exc.field) from None
        return candidate, len(stored)
    raise AssertionError("unreachable")  # pragma: no cover - _candidates never ends
