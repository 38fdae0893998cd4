"""The event model: Photon's hyphenated field names, validation, and the stored form.

A client's event is a JSON object with Photon's field names. `validate_event` checks it and
turns it into a `PendingEvent`; the group committer later gives it its `order-id` and
`stream-version` and produces a `RecordedEvent`, which is what every backend stores and reads.

A `RecordedEvent` keeps the whole event as JSON bytes (`data`) beside the few fields the core
indexes on. Readers that only pass events on (HTTP replay, backup, TCP) never decode them;
`to_dict()` and `payload` decode on demand.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import orjson

from .errors import InternalStreamError, ValidationError

# Field names, exactly as Photon and the Muon event client spell them.
STREAM_NAME: Final = "stream-name"
EVENT_TYPE: Final = "event-type"
PAYLOAD: Final = "payload"
SERVICE_ID: Final = "service-id"
SCHEMA: Final = "schema"
CAUSED_BY: Final = "caused-by"
CAUSED_BY_RELATION: Final = "caused-by-relation"
EVENT_TIME: Final = "event-time"
ORDER_ID: Final = "order-id"
STREAM_VERSION: Final = "stream-version"
ID: Final = "id"

ALL_STREAM: Final = "__all__"
CONFIG_STREAM: Final = "__config__"
INTERNAL_PREFIX: Final = "__"

#: Fields a client may send.
CLIENT_FIELDS: Final = frozenset(
    {STREAM_NAME, EVENT_TYPE, PAYLOAD, SERVICE_ID, SCHEMA, CAUSED_BY, CAUSED_BY_RELATION, EVENT_TIME, ID}
)
#: Fields only the store sets.
SERVER_FIELDS: Final = frozenset({ORDER_ID, STREAM_VERSION})

MAX_NAME_LENGTH: Final = 256
MAX_ID_LENGTH: Final = 128
DEFAULT_MAX_EVENT_BYTES: Final = 1024 * 1024


class RecordedEvent(NamedTuple):
    """An event as stored: its position, identity and the whole event as JSON."""

    order_id: int
    """Global position in `__all__`: 1, 2, 3, ... with no gaps."""
    stream_name: str
    stream_version: int
    """Position in its own stream: 1, 2, 3, ..."""
    event_id: str
    event_type: str
    event_time: int
    """Epoch milliseconds."""
    data: bytes
    """The whole event as a JSON object with Photon's field names (order-id and stream-version included)."""

    def to_dict(self) -> dict[str, Any]:
        """The event as a dict with Photon's field names."""
        result: dict[str, Any] = orjson.loads(self.data)
        return result

    @property
    def payload(self) -> Any:
        return self.to_dict()[PAYLOAD]


class PendingEvent(NamedTuple):
    """A validated event waiting for its order-id and stream-version.

    `body` is the event's JSON without the leading `{`, so the committer can put the
    positions in front without serialising the event again.
    """

    stream_name: str
    event_id: str
    event_type: str
    event_time: int
    body: bytes
    client_id: bool
    """True when the client supplied the id (only those can already be stored)."""

    def record(self, order_id: int, stream_version: int) -> RecordedEvent:
        head = b'{"order-id":%d,"stream-version":%d,' % (order_id, stream_version)
        return RecordedEvent(
            order_id,
            self.stream_name,
            stream_version,
            self.event_id,
            self.event_type,
            self.event_time,
            head + self.body,
        )


def is_internal(stream_name: str) -> bool:
    return stream_name.startswith(INTERNAL_PREFIX)


def now_millis() -> int:
    return time.time_ns() // 1_000_000


# Variant bits of an RFC 4122 UUID: the 17th hex digit is one of 8, 9, a, b.
_VARIANT_DIGIT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_event_id() -> str:
    """A random (version 4) UUID string, formatted directly: a third of the cost of `uuid.UUID`
    on the ingest hot path, where it was the largest per-event cost."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:]}"


def _name(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if value is None:
        raise ValidationError(f"missing required field {field!r}", field)
    if type(value) is not str:
        raise ValidationError(f"field {field!r} must be a string, got {_json_type(value)}", field)
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"field {field!r} must be 1 to {MAX_NAME_LENGTH} characters", field)
    if not value.isprintable():
        raise ValidationError(f"field {field!r} must not contain control characters", field)
    return value


def _optional_string(event: Mapping[str, Any], field: str) -> None:
    value = event.get(field)
    if value is not None and type(value) is not str:
        raise ValidationError(f"field {field!r} must be a string, got {_json_type(value)}", field)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def validate_event(
    event: Any,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    allow_internal: bool = False,
    now: int | None = None,
) -> PendingEvent:
    """Check a client's event and prepare it for storage.

    Raises `ValidationError` naming the field at fault. The caller's mapping is not changed.
    """
    if type(event) is not dict and not isinstance(event, Mapping):  # the exact check first: ABC checks are slow
        raise ValidationError(f"an event must be a JSON object, got {_json_type(event)}")
    unknown = event.keys() - CLIENT_FIELDS
    if unknown:
        server_set = sorted(unknown & SERVER_FIELDS)
        if server_set:
            raise ValidationError(
                f"field {server_set[0]!r} is assigned by the store and cannot be sent "
                "(load backups with `photon restore`)",
                server_set[0],
            )
        name = sorted(map(str, unknown))[0]
        raise ValidationError(
            f"unknown field {name!r}; an event has the fields {', '.join(sorted(CLIENT_FIELDS))}", name
        )
    stream_name = _name(event, STREAM_NAME)
    if not allow_internal and is_internal(stream_name):
        raise InternalStreamError(
            f"stream {stream_name!r} is internal: names starting with '__' are written only by Photon",
            STREAM_NAME,
        )
    if "*" in stream_name:
        raise ValidationError("field 'stream-name' must not contain '*' (reserved for wildcards)", STREAM_NAME)
    event_type = _name(event, EVENT_TYPE)
    payload = event.get(PAYLOAD)
    if payload is None:
        raise ValidationError("missing required field 'payload'", PAYLOAD)
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise ValidationError(f"field 'payload' must be a JSON object, got {_json_type(payload)}", PAYLOAD)
    _optional_string(event, SERVICE_ID)
    _optional_string(event, CAUSED_BY)
    _optional_string(event, CAUSED_BY_RELATION)
    schema = event.get(SCHEMA)
    if schema is not None and (type(schema) is not str and type(schema) is not int):
        raise ValidationError(f"field 'schema' must be a string or an integer, got {_json_type(schema)}", SCHEMA)

    event_id = event.get(ID)
    client_id = event_id is not None
    if client_id:
        if type(event_id) is not str or not event_id or len(event_id) > MAX_ID_LENGTH:
            raise ValidationError(f"field 'id' must be a string of 1 to {MAX_ID_LENGTH} characters", ID)
    else:
        event_id = new_event_id()

    event_time = event.get(EVENT_TIME)
    if event_time is None:
        event_time = now_millis() if now is None else now
    elif type(event_time) is not int or event_time < 0:
        raise ValidationError("field 'event-time' must be a non-negative integer (epoch milliseconds)", EVENT_TIME)

    fields = dict(event)
    fields[ID] = event_id
    fields[EVENT_TIME] = event_time
    try:
        encoded = orjson.dumps(fields)
    except TypeError as exc:
        raise ValidationError(f"field 'payload' is not valid JSON data: {exc}", PAYLOAD) from None
    if len(encoded) > max_bytes:
        raise ValidationError(
            f"event too large: {len(encoded)} bytes, over the limit of {max_bytes} bytes (payload.max.bytes)",
            PAYLOAD,
        )
    return PendingEvent(stream_name, event_id, event_type, event_time, encoded[1:], client_id)


def parse_expected_version(value: Any) -> int | str:
    """`expected-version`: a stream version (0 = the stream must not exist), `any` or `no-stream`."""
    if value is None or value == "any":
        return "any"
    if value == "no-stream":
        return "no-stream"
    if type(value) is str and value.isdigit():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise ValidationError(
        f"expected-version must be a stream version (0 or more), 'any' or 'no-stream', got {value!r}",
        "expected-version",
    )
