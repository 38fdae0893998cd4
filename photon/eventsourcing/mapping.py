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
from typing import Any, Literal
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, StoredEvent

from .access import Event

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


def decode_state(payload: dict[str, Any]) -> bytes:
    if STATE in payload:
        return orjson.dumps(payload[STATE])
    return base64.b64decode(payload[STATE_BASE64])


def originator_id(name: str, prefix_length: int, id_type: IdType) -> UUID | str:
    text = name[prefix_length:]
    return UUID(text) if id_type == "uuid" else text


def to_stored_event(event: Event, prefix_length: int, id_type: IdType) -> StoredEvent:
    payload = event.payload
    return StoredEvent(
        originator_id=originator_id(event.stream_name, prefix_length, id_type),
        originator_version=payload[ORIGINATOR_VERSION],
        topic=event.event_type,
        state=decode_state(payload),
    )


def to_notification(event: Event, prefix_length: int, id_type: IdType) -> Notification:
    payload = event.payload
    return Notification(
        id=event.order_id,
        originator_id=originator_id(event.stream_name, prefix_length, id_type),
        originator_version=payload[ORIGINATOR_VERSION],
        topic=event.event_type,
        state=decode_state(payload),
    )
