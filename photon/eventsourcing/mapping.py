"""How the `eventsourcing` library's stored events map onto Photon events, and back.

- Stream: ``<category>-<originator id>`` for an application's aggregate events, so all of an
  application's aggregates share one Photon category; ``<category>.snapshots-<id>`` for its
  snapshots (another purpose of aggregate recorder gives ``<category>.<purpose>-<id>``) and
  ``<category>.tracking-<upstream application>`` for a process application's tracking records.
- Event type: the library's topic (``module:Class``), so topic filters are event-type filters.
- Payload: ``{"originator-version": v, "state": {...}}`` when the stored state is a JSON object
  that Photon stores byte for byte as it was given (what the library's JSON transcoder writes),
  so projections and the console see the domain event's fields; otherwise (compressed or
  encrypted state, or JSON Photon would write differently) ``{"originator-version": v,
  "state-base64": "..."}``. Either way the recorder gives back exactly the bytes it was given.
- Versions: Photon's stream-version counts a stream's events 1, 2, 3...; the library's
  originator version travels in the payload, may start at 0 or 1, and may be sparse (snapshots).
  Within a stream originator versions increase; an insert whose first version is not past the
  stream's last is refused as an `IntegrityError` (it is the library's version conflict).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Literal
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, StoredEvent

from photon.eventsourcing.access import Event

PAYLOAD = "payload"
ORIGINATOR_VERSION = "originator-version"
STATE = "state"
STATE_BASE64 = "state-base64"
NOTIFICATION_ID = "notification-id"
TRACKING_TYPE = "eventsourcing:Tracking"

IdType = Literal["uuid", "text"]


def check_category(category: str) -> str:
    """A category must be a non-empty stream-name prefix without '-' (a category ends at its first '-')."""
    if not category or "-" in category or category.startswith("__") or not category.isprintable() or "*" in category:
        raise ValueError(
            f"Photon category {category!r} must be a non-empty printable name "
            "without '-' or '*', not starting with '__'"
        )
    return category


def stream_name(category: str, originator_id: UUID | str) -> str:
    return f"{category}-{originator_id}"


def tracking_stream(category: str, application_name: str) -> str:
    return f"{category}.tracking-{application_name}"


def encode_payload(stored: StoredEvent) -> dict[str, Any]:
    state = stored.state
    if state[:1] == b"{":
        try:
            value = orjson.loads(state)
        except orjson.JSONDecodeError:
            value = None
        # Photon stores the payload as orjson writes it: keep the object only if that is the same bytes.
        if type(value) is dict and orjson.dumps(value) == state:
            return {ORIGINATOR_VERSION: stored.originator_version, STATE: value}
    return {ORIGINATOR_VERSION: stored.originator_version, STATE_BASE64: base64.b64encode(state).decode("ascii")}


def payload(data: bytes) -> dict[str, Any]:
    """The payload of a stored Photon event (its whole JSON)."""
    value: dict[str, Any] = orjson.loads(data)[PAYLOAD]
    return value


def decode_state(value: dict[str, Any]) -> bytes:
    if STATE in value:
        return orjson.dumps(value[STATE])
    return base64.b64decode(value[STATE_BASE64])


# Reading the state straight out of the stored JSON, without decoding and encoding it again.
# Photon writes an event as {"order-id":..,"stream-version":.., <the client's fields in the order
# given>, "id":.., "event-time":..}; the recorders give stream-name, event-type, payload, in that
# order, and the payload as {"originator-version": v, "state": ...}. The slice is taken only when
# the payload's start and everything after it match that layout exactly; anything else (an event
# written another way, a later layout) is decoded in full instead.
_PAYLOAD_START = b',"payload":{"originator-version":'
_TAIL = re.compile(rb'\},"id":"[^"\\]*","event-time":\d+\}')


_STATE_START = b'"state":{'
_STATE_BASE64_START = b'"state-base64":"'
_ID_START = b'},"id":"'


def version_and_state(data: bytes) -> tuple[int, bytes]:
    # One slice of the state alone (not of the payload's rest, then of that): this runs for every
    # notification a select hands out.
    start = data.find(_PAYLOAD_START)
    if start > 0:
        start += len(_PAYLOAD_START)
        comma = data.find(b",", start)
        end = data.rfind(_ID_START)
        if comma > 0 and end > comma and _TAIL.fullmatch(data, end):
            digits = data[start:comma]
            if digits.isdigit():
                if data.startswith(_STATE_START, comma + 1):
                    return int(digits), data[comma + 9 : end]
                if data.startswith(_STATE_BASE64_START, comma + 1) and data[end - 1] == 0x22:  # '"'
                    return int(digits), base64.b64decode(data[comma + 17 : end - 1])
    value = payload(data)
    return value[ORIGINATOR_VERSION], decode_state(value)


def originator_version(data: bytes) -> int:
    return version_and_state(data)[0]


class OriginatorIds:
    """Originator ids from stream names, remembering the last few (an aggregate's events come together)."""

    def __init__(self, prefix_length: int, id_type: IdType) -> None:
        self.prefix_length = prefix_length
        self.parse = UUID if id_type == "uuid" else str
        self._known: dict[str, UUID | str] = {}

    def __call__(self, stream_name: str) -> UUID | str:
        found = self._known.get(stream_name)
        if found is None:
            if len(self._known) > 1000:
                self._known.clear()
            found = self._known[stream_name] = self.parse(stream_name[self.prefix_length :])
        return found


_new = object.__new__
_set = object.__setattr__


def to_stored_event(event: Event, ids: OriginatorIds) -> StoredEvent:
    version, state = version_and_state(event.data)
    stored = _new(StoredEvent)
    # A frozen dataclass: filled the way the library's mapper fills its frozen events (no __init__).
    _set(
        stored,
        "__dict__",
        {
            "originator_id": ids(event.stream_name),
            "originator_version": version,
            "topic": event.event_type,
            "state": state,
        },
    )
    return stored


def to_notification(event: Event, ids: OriginatorIds) -> Notification:
    version, state = version_and_state(event.data)
    notification = _new(Notification)
    _set(
        notification,
        "__dict__",
        {
            "originator_id": ids(event.stream_name),
            "originator_version": version,
            "topic": event.event_type,
            "state": state,
            "id": event.order_id,
        },
    )
    return notification
