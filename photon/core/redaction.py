"""Redaction for erasure requests: the payload of chosen events is replaced with a marker.

The marker is the payload ``{"redacted": true, "redacted-at": <epoch ms>}`` (with ``"reason"``
when one is given). Everything else of the event stays: id, type, stream, order-id, version,
time, tags. The stored JSON is replaced in the backend (every copy it keeps: SQLite overwrites
the freed bytes and checkpoints its log away, the file backend writes its file again), a
`__config__` `events-redacted` event tells projections which events changed so they can fold
again, and backups taken afterwards hold only the marker.

The `events-redacted` event names what a projection needs to decide whether its state may hold a
redacted payload: the streams and event types of the redacted events and the first order-id
among them (`photon.projections.redactions` reads it).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import orjson

from photon.core.backend import Query
from photon.core.errors import BackendError, NotFound, ValidationError
from photon.core.events import CONFIG_STREAM, PAYLOAD, RecordedEvent, is_internal, now_millis
from photon.core.scavenge import reclaim

if TYPE_CHECKING:
    from photon.core.store import EventStore

STEP = 1000
"""Events replaced per writer step."""

REDACTED = "events-redacted"
"""The `__config__` event type that records a redaction."""


def marker(at: int, reason: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"redacted": True, "redacted-at": at}
    if reason:
        payload["reason"] = reason
    return payload


def redacted(event: RecordedEvent, payload: dict[str, Any]) -> RecordedEvent:
    doc = orjson.loads(event.data)
    doc[PAYLOAD] = payload
    return event._replace(data=orjson.dumps(doc))


def redact(
    store: EventStore,
    *,
    stream: str | None = None,
    event_ids: Collection[str] | None = None,
    reason: str | None = None,
) -> int:
    """Redact every stored event of `stream`, or the events with the given ids; returns how many."""
    if (stream is None) == (event_ids is None):
        raise ValidationError("redact a stream or a list of event ids (one of the two)", "stream-name")
    if stream is not None and type(stream) is not str:
        raise ValidationError(f"stream-name must be a stream name, got {stream!r}", "stream-name")
    if reason is not None and (type(reason) is not str or len(reason) > 1000):
        raise ValidationError("reason must be a string of at most 1000 characters", "reason")
    payload = marker(now_millis(), reason)
    backend = store.backend
    if not backend.redaction:
        raise BackendError(f"the {backend.name} backend cannot redact events")
    count = 0
    touched = _Touched()
    if stream is not None:
        if is_internal(stream):
            raise ValidationError(f"stream {stream!r} is internal and cannot be redacted", "stream-name")
        position = 1
        while True:
            # Every stored event of the stream, hidden ones too: they are copies as well.
            page = backend.read(Query(stream=stream, from_order_id=position, limit=STEP))
            touched.add(page)
            count += _replace(store, [redacted(e, payload) for e in page])
            if len(page) < STEP:
                break
            position = page[-1].order_id + 1
        if count == 0:
            raise NotFound(f"stream {stream!r} holds no events")
        details: dict[str, Any] = {"stream-name": stream}
    else:
        ids = list(event_ids or [])
        if not ids or not all(type(i) is str for i in ids):
            raise ValidationError("ids must be a non-empty list of event ids", "ids")
        found = backend.events_by_id(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(
                f"no event with id {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if missing[1:] else "")
            )
        internal = [e.event_id for e in found.values() if is_internal(e.stream_name)]
        if internal:
            raise ValidationError(f"event {internal[0]!r} is in an internal stream and cannot be redacted", "ids")
        events = sorted(found.values())
        touched.add(events)
        for start in range(0, len(events), STEP):
            count += _replace(store, [redacted(e, payload) for e in events[start : start + STEP]])
        details = {"ids": ids, "order-ids": [e.order_id for e in events]}
    reclaim(store)
    store.append_internal(
        CONFIG_STREAM, REDACTED, {**details, **touched.to_json(), "redacted-events": count, "reason": reason}
    )
    return count


class _Touched:
    """The streams, event types and first order-id of the redacted events."""

    def __init__(self) -> None:
        self.streams: set[str] = set()
        self.event_types: set[str] = set()
        self.first = 0

    def add(self, events: list[RecordedEvent]) -> None:
        for event in events:
            self.streams.add(event.stream_name)
            self.event_types.add(event.event_type)
            if not self.first or event.order_id < self.first:
                self.first = event.order_id

    def to_json(self) -> dict[str, Any]:
        return {
            "stream-names": sorted(self.streams),
            "event-types": sorted(self.event_types),
            "from-order-id": self.first,
        }


def _replace(store: EventStore, events: list[RecordedEvent]) -> int:
    if events:
        store.in_writer(lambda committer: committer.backend.replace_events(events))
    return len(events)
