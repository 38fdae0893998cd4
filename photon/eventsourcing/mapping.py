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
from collections.abc import Iterable
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


def kept(data: bytes, name: str) -> dict[str, Any]:
    """`data` as a payload keeps it under `name`: the JSON object itself when Photon stores it as
    these very bytes, else base64 under ``<name>-base64`` (see the module docstring).

    The object goes in as an `orjson.Fragment` of the very bytes given: the check that orjson
    writes exactly these bytes again is what makes that the same payload as the decoded object
    (same stored bytes), and Photon's encoding of the event then copies them rather than encoding
    the decoded object a second time."""
    if data[:1] == b"{":
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = None
        # Photon stores the payload as orjson writes it: keep the object only if that is the same bytes.
        if type(value) is dict and orjson.dumps(value) == data:
            return {name: orjson.Fragment(data)}
    return {f"{name}-base64": base64.b64encode(data).decode("ascii")}


def given_back(payload: dict[str, Any], name: str) -> bytes:
    """The bytes `kept` kept under `name` in a stored payload."""
    if name in payload:
        return orjson.dumps(payload[name])
    return base64.b64decode(payload[f"{name}-base64"])


def encode_payload(stored: StoredEvent) -> dict[str, Any]:
    """The payload of `stored` (see the module docstring)."""
    return {ORIGINATOR_VERSION: stored.originator_version, **kept(stored.state, STATE)}


def payload(data: bytes) -> dict[str, Any]:
    """The payload of a stored Photon event (its whole JSON)."""
    value: dict[str, Any] = orjson.loads(data)[PAYLOAD]
    return value


def decode_state(value: dict[str, Any]) -> bytes:
    return given_back(value, STATE)


# Reading the state straight out of the stored JSON, without decoding and encoding it again.
# Photon writes an event as {"order-id":..,"stream-version":.., <the client's fields in the order
# given>, "id":.., "event-time":..}; the recorders give stream-name, event-type, payload, in that
# order, and the payload as {"originator-version": v, "state": ...}. The slice is taken only when
# the payload's start and everything after it match that layout exactly; anything else (an event
# written another way, a later layout) is decoded in full instead.
_PAYLOAD_START = b',"payload":{"originator-version":'
_STATE_START = b'"state":{'
_STATE_BASE64_START = b'"state-base64":"'
_ID_START = b'},"id":"'
_EVENT_TIME = b'","event-time":'
_PAYLOAD_START_LENGTH = len(_PAYLOAD_START)
_ID_START_LENGTH = len(_ID_START)
_EVENT_TIME_LENGTH = len(_EVENT_TIME)


def _plain_tail(data: bytes, start: int) -> bool:
    """Whether `data` from `start` on is ``<id>","event-time":<digits>}``, tested with byte methods
    (a regular expression's match of it cost more than the rest of the slicing together).

    No backslash test is needed: in valid JSON the first quote after the id's opening one that is
    followed by ``,"event-time":`` closes the id (an escaped quote followed by that would leave
    ``event-time":`` after a closed string)."""
    quote = data.find(b'"', start)
    return (
        quote >= 0
        and data.startswith(_EVENT_TIME, quote)
        and data[-1] == 0x7D  # '}'
        and data[quote + _EVENT_TIME_LENGTH : -1].isdigit()
    )


def version_and_state(data: bytes) -> tuple[int, bytes]:
    # One slice of the state alone (not of the payload's rest, then of that).
    start = data.find(_PAYLOAD_START)
    if start > 0:
        start += _PAYLOAD_START_LENGTH
        comma = data.find(b",", start)
        end = data.rfind(_ID_START)
        if comma > 0 and end > comma and _plain_tail(data, end + _ID_START_LENGTH):
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


_CACHED = 1000
"""Originator ids and topics a `NotificationReader` remembers (cleared when it holds more)."""


def _layout(prefix_json: bytes) -> re.Pattern[bytes]:
    """The whole stored JSON of an event the recorders wrote to a stream ``<prefix><id>``: its
    originator id, topic, originator version, and its state (JSON, or base64) as groups. Names
    without a quote or an escape only; the id's and event-time's fields are Photon's own."""
    return re.compile(
        rb'\{"order-id":\d+,"stream-version":\d+,"stream-name":'
        + re.escape(prefix_json)
        + rb'([^"\\]*)","event-type":"([^"\\]*)","payload":\{"originator-version":(\d+),'
        + rb'(?:"state":(\{.*\})|"state-base64":"([A-Za-z0-9+/=]*)")'
        + rb'\},"id":"[^"\\]*","event-time":\d+\}',
        re.DOTALL,
    )


class NotificationReader:
    """An application's notifications from stored events' JSON alone (order-id, stored JSON):
    the events of streams named ``<prefix><originator id>``, others skipped.

    A select hands out every event it reads, and the order-id and JSON are the cheapest columns
    to fetch: the stream name, topic, originator version and state are taken from the JSON by one
    match of the layout the recorders write (`_layout`: the state is what lies between
    ``"state":`` and the payload's end, with no decoding), and the originator id and topic
    are remembered, bytes to value, once first seen. Any other layout is decoded in full.

    One match per event, not a series of byte searches: measured with callgrind on the
    benchmark's events, byte methods with positions cost more in parsing their arguments than in
    searching, and the match takes about 7,000 fewer instructions an event."""

    def __init__(self, prefix: str, id_type: IdType) -> None:
        self.prefix = prefix
        # The JSON of any name starting with `prefix` starts with this (orjson escapes char by char).
        self._match = _layout(orjson.dumps(prefix)[:-1]).fullmatch
        self._parse = UUID if id_type == "uuid" else str
        self._ids: dict[bytes, UUID | str] = {}
        self._topics: dict[bytes, str] = {}

    def add(self, rows: Iterable[tuple[int, bytes]], into: list[Notification], limit: int) -> bool:
        """Append the notifications among `rows` to `into` until it holds `limit`; whether it got there."""
        new, fill, kind = _new, _set, Notification
        append = into.append
        count = len(into)
        match = self._match
        ids, topics = self._ids, self._topics
        for order_id, data in rows:
            found = match(data)
            if found is not None:
                name, topic, version, state, state_base64 = found.groups()
                originator = ids.get(name)
                topic_text = topics.get(topic)
                if originator is None or topic_text is None:
                    originator, topic_text = self._first_seen(name, topic)
                if state is None:
                    state = base64.b64decode(state_base64)
                fields = {
                    "originator_id": originator,
                    "originator_version": int(version),
                    "topic": topic_text,
                    "state": state,
                    "id": order_id,
                }
            else:
                decoded = self._decoded(data)
                if decoded is None:
                    continue  # another stream's event
                fields = {**decoded, "id": order_id}
            notification = new(kind)
            fill(notification, "__dict__", fields)
            append(notification)
            count += 1
            if count == limit:
                return True
        return False

    def _first_seen(self, name: bytes, topic: bytes) -> tuple[UUID | str, str]:
        """An originator id and topic from their JSON (plain: the layout allows no escape), remembered."""
        ids, topics = self._ids, self._topics
        originator = ids.get(name)
        if originator is None:
            if len(ids) >= _CACHED:
                ids.clear()
            originator = ids[name] = self._parse(name.decode())
        topic_text = topics.get(topic)
        if topic_text is None:
            if len(topics) >= _CACHED:
                topics.clear()
            topic_text = topics[topic] = topic.decode()
        return originator, topic_text

    def _decoded(self, data: bytes) -> dict[str, Any] | None:
        """The whole JSON decoded: any layout; None for another stream's event."""
        event = orjson.loads(data)
        stream: str = event["stream-name"]
        if not stream.startswith(self.prefix):
            return None
        value = event[PAYLOAD]
        return {
            "originator_id": self._parse(stream[len(self.prefix) :]),
            "originator_version": value[ORIGINATOR_VERSION],
            "topic": event["event-type"],
            "state": decode_state(value),
        }
