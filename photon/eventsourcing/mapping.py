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


_NAME_KEY = b',"stream-name":"'
_TYPE_KEY = b'","event-type":"'
_PAYLOAD_KEY = b'","payload":{"originator-version":'
_HEAD_QUOTES = 4
"""Quotes before the stream name in Photon's layout: ``{"order-id":<n>,"stream-version":<n>``."""
_CACHED = 1000
"""Originator ids and topics a `NotificationReader` remembers (cleared when it holds more)."""


class NotificationReader:
    """An application's notifications from stored events' JSON alone (order-id, stored JSON):
    the events of streams named ``<prefix><originator id>``, others skipped.

    The stream name, topic, originator version and state are sliced out of the JSON where it has
    the layout the recorders write (see `version_and_state`), with no decoding: a select hands
    out every event it reads, and the order-id and JSON are the cheapest columns to fetch. The
    slices of an originator id and of a topic are checked (no quote, no escape) the first time
    they are seen and then remembered, bytes to value. Any other layout is decoded in full."""

    def __init__(self, prefix: str, id_type: IdType) -> None:
        self.prefix = prefix
        self._prefix_json = orjson.dumps(prefix)[:-1]  # the JSON string of any name starting with prefix starts so
        self._parse = UUID if id_type == "uuid" else str
        self._ids: dict[bytes, UUID | str] = {}
        self._topics: dict[bytes, str] = {}

    def add(self, rows: Iterable[tuple[int, bytes]], into: list[Notification], limit: int) -> bool:
        """Append the notifications among `rows` to `into` until it holds `limit`; whether it got there."""
        new, fill, kind = _new, _set, Notification
        append = into.append
        count = len(into)
        prefix_json = self._prefix_json
        skip = len(_NAME_KEY) - 1 + len(prefix_json)  # from the name key to the originator id
        ids, topics = self._ids, self._topics
        for order_id, data in rows:
            at = data.find(_NAME_KEY)
            if at < 0 or data.count(b'"', 0, at) != _HEAD_QUOTES:
                found = self._decoded(order_id, data)
            elif not data.startswith(prefix_json, at + len(_NAME_KEY) - 1):
                continue  # another category's event (the name is the first string: the layout is Photon's)
            else:
                start = at + skip
                type_at = data.find(_TYPE_KEY, start)
                payload_at = data.find(_PAYLOAD_KEY, type_at)
                end = data.rfind(_ID_START)
                found = None
                if 0 < type_at < payload_at < end:
                    comma = data.find(b",", payload_at + len(_PAYLOAD_KEY), end)
                    digits = data[payload_at + len(_PAYLOAD_KEY) : comma]
                    originator = ids.get(data[start:type_at])
                    topic = topics.get(data[type_at + len(_TYPE_KEY) : payload_at])
                    if (
                        originator is not None
                        and topic is not None
                        and digits.isdigit()
                        and data.startswith(_STATE_START, comma + 1)
                        and _plain_tail(data, end + _ID_START_LENGTH)
                    ):
                        found = originator, int(digits), topic, data[comma + 9 : end]
                if found is None:
                    found = self._sliced(data, start, type_at, payload_at) or self._decoded(order_id, data)
            if found is None:
                continue
            notification = new(kind)
            originator, version, topic, state = found
            fill(
                notification,
                "__dict__",
                {
                    "originator_id": originator,
                    "originator_version": version,
                    "topic": topic,
                    "state": state,
                    "id": order_id,
                },
            )
            append(notification)
            count += 1
            if count == limit:
                return True
        return False

    def _sliced(
        self, data: bytes, start: int, type_at: int, payload_at: int
    ) -> tuple[UUID | str, int, str, bytes] | None:
        """The slow half of the slicing: an originator id or topic not seen before is checked
        (a plain JSON string: no quote, no escape) and remembered."""
        if not 0 < type_at < payload_at:
            return None
        names = (data[start:type_at], data[type_at + len(_TYPE_KEY) : payload_at])
        if any(b'"' in name or b"\\" in name for name in names):
            return None
        originator_bytes, topic_bytes = names
        originator = self._ids.get(originator_bytes)
        if originator is None:
            try:
                originator = self._parse(originator_bytes.decode())
            except ValueError:
                return None  # not an id of this type: the full decoding says what it is
            if len(self._ids) >= _CACHED:
                self._ids.clear()
            self._ids[originator_bytes] = originator
        topic = self._topics.get(topic_bytes)
        if topic is None:
            if len(self._topics) >= _CACHED:
                self._topics.clear()
            topic = self._topics[topic_bytes] = topic_bytes.decode()
        version, state = version_and_state(data)
        return originator, version, topic, state

    def _decoded(self, order_id: int, data: bytes) -> tuple[UUID | str, int, str, bytes] | None:
        """The whole JSON decoded: any layout; None for another category's event."""
        event = orjson.loads(data)
        stream: str = event["stream-name"]
        if not stream.startswith(self.prefix):
            return None
        value = event[PAYLOAD]
        return (
            self._parse(stream[len(self.prefix) :]),
            value[ORIGINATOR_VERSION],
            event["event-type"],
            decode_state(value),
        )
