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
import re
import struct
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, TypeVar

import orjson

from photon.core.errors import ValidationError
from photon.core.original_shape import ORIGINAL_FIELDS

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
TAGS: Final = "tags"

# Every internal stream name is declared here, and only here (the README lists them).
ALL_STREAM: Final = "__all__"
CONFIG_STREAM: Final = "__config__"
METADATA_STREAM: Final = "__metadata__"
"""Stream metadata (retention, deletion, user keys) as events: see `photon.core.stream_metadata`."""
INTERNAL_PREFIX: Final = "__"
CATEGORY_STREAM_PREFIX: Final = "__category__:"
"""`__category__:account` reads every stream of the category `account` (`account`, `account-1`, ...)."""
PARKED_STREAM_PREFIX: Final = "__parked__:"
"""`__parked__:<group>` holds the events a consumer group parked (one event per parking)."""
CATEGORY_SEPARATOR: Final = "-"
"""A stream's category is its name up to the first separator (`account-123` is in `account`)."""


def category_stream(category: str) -> str:
    """The internal name under which a category is read like a stream."""
    return CATEGORY_STREAM_PREFIX + category


def stream_category(stream: str) -> str | None:
    """The category a `__category__:` name reads, or None for any other name."""
    return stream[len(CATEGORY_STREAM_PREFIX) :] if stream.startswith(CATEGORY_STREAM_PREFIX) else None


def names_no_category(stream: str) -> bool:
    """True for a `__category__:` name whose category no stream can be in: empty, or holding the
    separator (a category is a stream name's part before its first `-`)."""
    category = stream_category(stream)
    return category is not None and (not category or CATEGORY_SEPARATOR in category)


def parked_stream(group: str) -> str:
    """The internal stream that holds a consumer group's parked events."""
    return PARKED_STREAM_PREFIX + group


#: Fields a client may send.
CLIENT_FIELDS: Final = frozenset(
    {STREAM_NAME, EVENT_TYPE, PAYLOAD, SERVICE_ID, SCHEMA, CAUSED_BY, CAUSED_BY_RELATION, EVENT_TIME, ID, TAGS}
)
#: Fields a client may send: Photon's, and those of the original Photon's event shape.
ACCEPTED_FIELDS: Final = CLIENT_FIELDS | ORIGINAL_FIELDS
#: Fields only the store sets.
SERVER_FIELDS: Final = frozenset({ORDER_ID, STREAM_VERSION})

MAX_NAME_LENGTH: Final = 256
MAX_ID_LENGTH: Final = 128
MAX_TAGS: Final = 1000
"""The most tags one event may carry (each is 1 to MAX_NAME_LENGTH printable characters)."""
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

    @property
    def tags(self) -> tuple[str, ...]:
        """The event's tags (what conditional appends query); empty when it has none."""
        return event_tags(self.data)

    @property
    def service_id(self) -> str | None:
        return self.to_dict().get(SERVICE_ID)

    @property
    def schema(self) -> str | int | None:
        return self.to_dict().get(SCHEMA)

    @property
    def caused_by(self) -> str | None:
        return self.to_dict().get(CAUSED_BY)

    @property
    def caused_by_relation(self) -> str | None:
        return self.to_dict().get(CAUSED_BY_RELATION)

    @classmethod
    def from_json(cls, data: bytes) -> RecordedEvent:
        """A stored event from its JSON (as a server sends it: a replay line, an emit answer); `data` is kept."""
        return cls.from_dict(orjson.loads(data), data)

    @classmethod
    def from_dict(cls, event: Mapping[str, Any], data: bytes | None = None) -> RecordedEvent:
        """A stored event from its fields (Photon's names, positions included)."""
        try:
            return cls(
                event[ORDER_ID],
                event[STREAM_NAME],
                event[STREAM_VERSION],
                event[ID],
                event[EVENT_TYPE],
                event[EVENT_TIME],
                orjson.dumps(event) if data is None else data,
            )
        except KeyError as exc:
            raise ValidationError(f"not a stored event: it has no {exc.args[0]!r}", exc.args[0]) from None


def event_tags(data: bytes) -> tuple[str, ...]:
    """The `tags` of an event stored as JSON `data`, without decoding events that have none."""
    if b'"tags"' not in data:  # the usual case: no tags anywhere in the event
        return ()
    tags = orjson.loads(data).get(TAGS)
    return tuple(tags) if tags else ()


class PendingEvent(NamedTuple):
    """A validated event waiting for its order-id and stream-version.

    `body` is the event's JSON without the leading `{`, so the committer can put the
    positions in front without serialising the event again.

    Read by position (unpacking, `itemgetter`, `e[1]`), never by field name: the batch validation
    (`prepare_batch`) hands the writer plain tuples of these fields in this order, which the
    garbage collector can stop tracking (see there).
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


_Event = TypeVar("_Event")


class Tagless(list[_Event]):
    """A list of events none of which carries tags.

    The batch validation (`prepare_batch`) makes its events so, as it declines any event with
    tags; the writer hands its records to the backend so when every append of the commit came
    that way. A backend's write then does not search each event's JSON for tags (measured: about
    0.2 µs an event of 350 bytes, a tenth of the writer's Python for a batched append, and for
    nothing in the usual batch). Any other list may hold events with tags."""

    __slots__ = ()


DOT_SEGMENTS: Final = frozenset({".", ".."})
"""Names a stream, projection, consumer group or durable consumer cannot have: each is a path segment
of the HTTP API's routes, and browsers and HTTP clients resolve a URL's `.` and `..` segments (`%2E`
too) before sending it, so such a stream could be written but never read from the console or curl."""

WILDCARD: Final = "**"
"""In a stream name given to a cold read, any run of characters (Photon's wildcard): `orders-**`."""


def stream_pattern(stream_name: str) -> re.Pattern[str] | None:
    """The names a cold read's stream name with `**` stands for, or None for a plain name.

    Stream names never hold `*`, so a `**` is always the wildcard. Internal streams match only a
    pattern that starts with `__` itself, so `**` is every client stream.
    """
    if WILDCARD not in stream_name:
        return None
    body = ".*".join(re.escape(part) for part in stream_name.split(WILDCARD))
    guard = "" if stream_name.startswith(INTERNAL_PREFIX) else "(?!__)"
    return re.compile(guard + body + r"\Z", re.S)


def check_no_lone_star(stream_name: str, field: str = "stream") -> None:
    """Refuse a stream to follow whose name holds a `*` outside a `**` wildcard: no stream has one,
    so a consumer of it would be stored and never get an event."""
    if "*" in stream_name.replace(WILDCARD, ""):
        raise ValidationError(
            f"stream names never hold '*'; the wildcard is '**' (as in 'orders-**'), got {stream_name!r}", field
        )


def is_one_stream(stream_name: str) -> bool:
    """True for a stream's own name; False for `__all__`, a category and a `**` wildcard (reads of many streams)."""
    return stream_name != ALL_STREAM and stream_category(stream_name) is None and WILDCARD not in stream_name


def is_internal(stream_name: str) -> bool:
    return stream_name.startswith(INTERNAL_PREFIX)


def category_of(stream_name: str) -> str:
    """The stream's category: its name before the first `-` (the whole name when it has none)."""
    return stream_name.partition(CATEGORY_SEPARATOR)[0]


def read_holds(read: str, stream_name: str) -> bool:
    """Whether a read of `read` (a stream, `__all__`, a category or a `**` wildcard) holds the
    events of the stream `stream_name`, as its reads do: a category every stream whose name is
    in it (an internal stream only in a category starting `__`, such as `__config__`)."""
    if read == ALL_STREAM:
        return True
    category = stream_category(read)
    if category is not None:
        return category_of(stream_name) == category
    pattern = stream_pattern(read)
    if pattern is not None:
        return pattern.match(stream_name) is not None
    return read == stream_name


def now_millis() -> int:
    return time.time_ns() // 1_000_000


# Generated ids are UUIDv7 (RFC 9562): a millisecond timestamp, then a 74-bit counter that starts
# at a random value and only goes up. They sort by creation time, so the unique index on ids grows
# at its end instead of at random places, which keeps appends fast on every backend. Only the last
# 48 bits of the counter change from one id to the next, so the rest of the text is made once per
# run of ids and the last 12 hex digits are formatted together.
_id_lock = threading.Lock()
_id_next = int.from_bytes(os.urandom(10), "big") >> 6
_COUNTER_BITS = (1 << 74) - 1
_LOW_48 = (1 << 48) - 1
_id_head: tuple[int, int, str] = (-1, -1, "")


def new_event_id() -> str:
    """One new id: `new_event_ids(1)[0]` without the list and the loop (a single-event append
    makes one; measured 0.5 against 1.5 µs)."""
    global _id_next
    millis = time.time_ns() // 1_000_000
    with _id_lock:
        counter = _id_next
        _id_next = counter + 1
    value = counter & _COUNTER_BITS
    cached_millis, cached_high, head = _id_head
    if millis != cached_millis or value >> 48 != cached_high:
        head = _new_head(millis, value >> 48)
    return head + "%012x" % (value & _LOW_48)


def _new_head(millis: int, high: int) -> str:
    """The text of an id before its last 48 bits (kept for the next ids of the same millisecond)."""
    global _id_head
    rand_a, rand_b_top = high >> 14, high & 0x3FFF
    head = "%08x-%04x-%04x-%04x-" % (millis >> 16, millis & 0xFFFF, 0x7000 | rand_a, 0x8000 | rand_b_top)
    _id_head = (millis, high, head)
    return head


def new_event_ids(count: int) -> list[str]:
    """`count` new ids, in ascending order, with one clock reading for all."""
    global _id_next
    millis = time.time_ns() // 1_000_000
    with _id_lock:
        counter = _id_next
        _id_next = end = counter + count
    ids: list[str] = []
    while counter < end:
        value = counter & _COUNTER_BITS
        high, low = value >> 48, value & _LOW_48
        run = min(end - counter, _LOW_48 + 1 - low)  # ids before the low 48 bits start again at 0
        cached_millis, cached_high, head = _id_head
        if millis != cached_millis or high != cached_high:
            head = _new_head(millis, high)
        # The run's last 48 bits as 8-byte big-endian numbers, in hex, a space between numbers:
        # each is "0000" and the 12 digits, and putting the head in place of each "0000" makes
        # the ids in a few passes in C (a `%` formatting an id cost four times as much).
        digits = _pack(">%dQ" % run, *range(low, low + run)).hex(" ", 8)
        ids += (" " + digits).replace(" 0000", " " + head)[1:].split(" ")
        counter += run
    return ids


_pack = struct.pack
