"""The `eventsourcing` library's DCB recorder (dynamic consistency boundaries) over Photon.

A DCB event becomes a Photon event of the stream ``<category>`` with the event's type as its
event type, its tags as Photon `tags`, and its data in the payload (``data`` as the JSON object
itself, or ``data-base64``, exactly as stored states are kept). Positions are order-ids. A
conditional append is Photon's conditional append ("no event matching the query after position
P"), checked by the core's writer together with the write; a read is Photon's matching read.
Both span the client streams of the store, so a DCB application has a store of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from eventsourcing.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBReadResponse,
    DCBRecorder,
    DCBSequencedEvent,
    DCBSubscription,
)
from eventsourcing.persistence import IntegrityError, ProgrammingError

from photon.core.errors import AppendConditionFailed
from photon.eventsourcing.access import Event, LibraryErrors, LiveEvents, PhotonAccess
from photon.eventsourcing.mapping import given_back, kept

DATA = "data"
READ_PAGE = 1000


def _query(query: DCBQuery | None) -> list[dict[str, Any]]:
    return [{"event-types": list(item.types), "tags": list(item.tags)} for item in (query.items if query else [])]


def _matches(query: DCBQuery | None, event_type: str, tags: Sequence[str]) -> bool:
    if query is None or not query.items:
        return True
    return any((not item.types or event_type in item.types) and set(item.tags).issubset(tags) for item in query.items)


def _sequenced(event: Event) -> DCBSequencedEvent:
    stored = orjson.loads(event.data)
    payload = stored["payload"]
    data = given_back(payload, DATA)
    return DCBSequencedEvent(DCBEvent(event.event_type, data, list(stored.get("tags") or [])), event.order_id)


class PhotonDCBReadResponse(DCBReadResponse):
    def __init__(self, events: list[DCBSequencedEvent], head: int | None) -> None:
        self._events: Iterator[DCBSequencedEvent] = iter(events)
        self._head = head

    @property
    def head(self) -> int | None:
        return self._head

    def __next__(self) -> DCBSequencedEvent:
        return next(self._events)


class PhotonDCBRecorder(DCBRecorder):
    """DCB events in the stream ``<category>`` of a Photon store (see the module docstring)."""

    def __init__(self, access: PhotonAccess, category: str) -> None:
        self.access = LibraryErrors(access)
        self.stream = category

    def read(
        self, query: DCBQuery | None = None, *, after: int | None = None, limit: int | None = None
    ) -> DCBReadResponse:
        if limit is not None and limit <= 0:
            return PhotonDCBReadResponse([], None)
        wanted = limit if limit is not None else 1 << 62
        items = _query(query)
        events: list[DCBSequencedEvent] = []
        position = after or 0
        head: int | None = None
        while len(events) < wanted:
            page, store_head = self.access.read_matching(items, position, min(wanted - len(events), READ_PAGE))
            if head is None:
                head = store_head
            events.extend(_sequenced(e) for e in page if e.stream_name == self.stream and e.order_id <= head)
            if len(page) < min(wanted - len(events) + len(page), READ_PAGE) or not page:
                break
            position = page[-1].order_id
        events = events[:wanted]
        if limit is not None:
            return PhotonDCBReadResponse(events, events[-1].position if events else None)
        return PhotonDCBReadResponse(events, head or None)

    def append(self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None) -> int:
        if not events:
            raise ProgrammingError("a DCB append needs at least one event")
        photon_events = []
        for event in events:
            photon_event: dict[str, Any] = {"stream-name": self.stream, "event-type": event.type}
            photon_event["payload"] = kept(event.data, DATA)
            if event.tags:
                photon_event["tags"] = list(event.tags)
            photon_events.append(photon_event)
        photon_condition = None
        if condition is not None:
            photon_condition = {"query": _query(condition.fail_if_events_match), "after": condition.after or 0}
        try:
            return self.access.append(photon_events, {}, photon_condition)[-1]
        except AppendConditionFailed as failed:
            raise IntegrityError(str(failed)) from failed

    def subscribe(self, query: DCBQuery | None = None, *, after: int | None = None) -> PhotonDCBSubscription:
        return PhotonDCBSubscription(self, query=query, after=after)


class PhotonDCBSubscription(DCBSubscription[PhotonDCBRecorder]):
    """Matching DCB events after a position, history then live (a hot-cold replay of `__all__`)."""

    POLL_SECONDS = 0.1

    def __init__(self, recorder: PhotonDCBRecorder, query: DCBQuery | None = None, after: int | None = None) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        types = sorted({t for item in query.items for t in item.types}) if query and query.items else []
        if query and any(not item.types for item in query.items):
            types = []  # an item of any type: the event-type filter cannot narrow the replay
        self._live: LiveEvents = recorder.access.live(self._last_position + 1, types)

    def stop(self) -> None:
        super().stop()
        self._live.stop()

    def __next__(self) -> DCBSequencedEvent:
        while not self._has_been_stopped:
            event = self._live.next(self.POLL_SECONDS)
            if event is None or event.stream_name != self._recorder.stream:
                continue
            sequenced = _sequenced(event)
            if _matches(self._query, sequenced.event.type, sequenced.event.tags):
                self._last_position = sequenced.position
                return sequenced
        raise StopIteration
