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
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Final, NamedTuple

import orjson

from photon.core.errors import EventTooLarge, InternalStreamError, ValidationError
from photon.core.limits import MAX_INT64 as MAX_VERSION
from photon.core.original_shape import ORIGINAL_FIELDS, has_original_fields, to_photon

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


# NamedTuple's generated __new__ is a Python function; tuple.__new__ builds the same object
# without that call (once per appended event).
_new_pending = tuple.__new__


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


def is_one_stream(stream_name: str) -> bool:
    """True for a stream's own name; False for `__all__`, a category and a `**` wildcard (reads of many streams)."""
    return stream_name != ALL_STREAM and stream_category(stream_name) is None and WILDCARD not in stream_name


def is_internal(stream_name: str) -> bool:
    return stream_name.startswith(INTERNAL_PREFIX)


def category_of(stream_name: str) -> str:
    """The stream's category: its name before the first `-` (the whole name when it has none)."""
    return stream_name.partition(CATEGORY_SEPARATOR)[0]


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
    return new_event_ids(1)[0]


def new_event_ids(count: int) -> list[str]:
    """`count` new ids, in ascending order, with one clock reading for all."""
    global _id_head, _id_next
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
            rand_a, rand_b_top = high >> 14, high & 0x3FFF
            head = "%08x-%04x-%04x-%04x-" % (millis >> 16, millis & 0xFFFF, 0x7000 | rand_a, 0x8000 | rand_b_top)
            _id_head = (millis, high, head)
        ids += map((head + "%012x").__mod__, range(low, low + run))
        counter += run
    return ids


def _name(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if type(value) is not str or not 0 < len(value) <= MAX_NAME_LENGTH or not value.isprintable():
        if value is None:
            raise ValidationError(f"missing required field {field!r}", field)
        if type(value) is not str:
            raise ValidationError(f"field {field!r} must be a string, got {_json_type(value)}", field)
        if not value or len(value) > MAX_NAME_LENGTH:
            raise ValidationError(f"field {field!r} must be 1 to {MAX_NAME_LENGTH} characters", field)
        raise ValidationError(f"field {field!r} must not contain control characters", field)
    return value


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


_OPTIONAL_STRINGS: Final = (SERVICE_ID, CAUSED_BY, CAUSED_BY_RELATION)

# Client stream names and event types that passed the checks. Internal stream names are never
# kept, so a kept name needs no allow_internal test. Bounded: cleared when full.
_good_streams: set[str] = set()
_good_types: set[str] = set()
_GOOD_NAMES_MAX: Final = 10_000


def _remember(names: set[str], name: str) -> None:
    if len(names) >= _GOOD_NAMES_MAX:
        names.clear()
    names.add(name)


def validate_event(
    event: Any,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    allow_internal: bool = False,
    now: int | None = None,
    new_id: Callable[[], str] = new_event_id,
) -> PendingEvent:
    """Check a client's event and prepare it for storage.

    Raises `ValidationError` naming the field at fault. The caller's mapping is not changed.
    `now` (epoch milliseconds) is the event-time of an event without one (default: the clock);
    `new_id` makes the id of an event without one.
    """
    return prepare_event(event, max_bytes, allow_internal, now, new_id)


def prepare_event(
    event: Any,
    max_bytes: int,
    allow_internal: bool,
    now: int | None,
    new_id: Callable[[], str],
    owned: bool = False,
    /,
) -> PendingEvent:
    """`validate_event` with every argument given in order: the form for loops over many events
    (keyword arguments cost a little on every call). The common case (a plain dict) avoids ABC
    checks. With `owned` the caller gives up `event` (a dict it parsed itself): the id and time
    are filled in on it instead of on a copy."""
    if type(event) is not dict:
        if not isinstance(event, Mapping):
            raise ValidationError(f"an event must be a JSON object, got {_json_type(event)}")
        event = dict(event)
    if not CLIENT_FIELDS.issuperset(event):
        if not (has_original_fields(event) and ACCEPTED_FIELDS.issuperset(event)):
            _unknown_fields(event)
        # The Clojure Photon's own shape: its fields stay, and give Photon's theirs.
        event = to_photon(event)
        owned = True
    # Names already found good (the same few recur in every batch) skip the checks; the others
    # go through the checks prepare_batch uses too, and only a name they refuse is looked at
    # again, to raise the error naming the fault.
    stream_name = event.get(STREAM_NAME)
    if type(stream_name) is not str or (stream_name not in _good_streams and not _good_stream_name(stream_name)):
        _unusual_stream_name(event, allow_internal)
    event_type = event.get(EVENT_TYPE)
    if type(event_type) is not str or (event_type not in _good_types and not _good_event_type(event_type)):
        _name(event, EVENT_TYPE)
    payload = event.get(PAYLOAD)
    if type(payload) is not dict:
        if payload is None:
            raise ValidationError("missing required field 'payload'", PAYLOAD)
        if not isinstance(payload, Mapping):
            raise ValidationError(f"field 'payload' must be a JSON object, got {_json_type(payload)}", PAYLOAD)
    fields = event
    if len(fields) > 3:
        for field in _OPTIONAL_STRINGS:
            value = fields.get(field)
            if value is not None and type(value) is not str:
                raise ValidationError(f"field {field!r} must be a string, got {_json_type(value)}", field)
        schema = fields.get(SCHEMA)
        if schema is not None and type(schema) is not str and type(schema) is not int:
            raise ValidationError(f"field 'schema' must be a string or an integer, got {_json_type(schema)}", SCHEMA)
        tags = fields.get(TAGS)
        if tags is not None:
            check_tags(tags, TAGS)

    event_id = fields.get(ID)
    client_id = event_id is not None
    if client_id and (type(event_id) is not str or not event_id or len(event_id) > MAX_ID_LENGTH):
        raise ValidationError(f"field 'id' must be a string of 1 to {MAX_ID_LENGTH} characters", ID)
    event_time = fields.get(EVENT_TIME)
    has_time = event_time is not None
    if has_time and (type(event_time) is not int or not 0 <= event_time <= MAX_VERSION):
        raise ValidationError(
            f"field 'event-time' must be a non-negative integer (epoch milliseconds) of at most {MAX_VERSION}",
            EVENT_TIME,
        )

    if not (client_id and has_time):
        # Fill in what the client left out on a shallow copy: the caller's mapping stays as it was.
        if not owned:
            fields = dict(fields)
        if not client_id:
            event_id = fields[ID] = new_id()
        if not has_time:
            event_time = fields[EVENT_TIME] = now_millis() if now is None else now
    try:
        encoded = orjson.dumps(fields)
    except TypeError as exc:
        raise ValidationError(f"field 'payload' is not valid JSON data: {exc}", PAYLOAD) from None
    if len(encoded) > max_bytes:
        raise EventTooLarge(
            f"event too large: {len(encoded)} bytes, over the limit of {max_bytes} bytes (payload.max.bytes)",
            PAYLOAD,
        )
    return _new_pending(PendingEvent, (stream_name, event_id, event_type, event_time, encoded[1:], client_id))


# -- a whole batch at once --------------------------------------------------------------------

_dumps = orjson.dumps
_get_stream_names = itemgetter(STREAM_NAME)
_get_event_types = itemgetter(EVENT_TYPE)
_get_payloads = itemgetter(PAYLOAD)
_pending_from = partial(tuple.__new__, PendingEvent)
_DICT: Final = frozenset({dict})
_STR: Final = frozenset({str})
_INT: Final = frozenset({int})
_NONE: Final = type(None)
_OPTIONAL_STRING_TYPES: Final = frozenset({str, _NONE})
_SCHEMA_TYPES: Final = frozenset({str, int, _NONE})
_NO_TAGS: Final = frozenset({_NONE})


def prepare_batch(batch: list[Any], max_bytes: int, now: int) -> list[PendingEvent] | None:
    """`prepare_event` for every event of a client batch, checked field by field across the
    batch rather than event by event.

    Each check runs over all the events in one pass in C (`map`, set operations), which costs
    a fraction of the same checks done one event at a time in Python. It covers the usual
    batch: plain dicts, known fields of the right types, names seen before (or new ones that
    pass), and ids and event-times either all given or all left to the store. Anything else
    returns None, and the caller prepares event by event: that path accepts and refuses
    exactly the same events, and its error names the event and the field at fault.
    """
    count = len(batch)
    if not count:
        return None
    try:
        if set(map(type, batch)) != _DICT or not CLIENT_FIELDS.issuperset(chain.from_iterable(batch)):
            return None
        streams = list(map(_get_stream_names, batch))
        event_types = list(map(_get_event_types, batch))
        if set(map(type, streams)) != _STR or set(map(type, event_types)) != _STR:
            return None
        if not _good_streams.issuperset(streams) and not all(
            map(_good_stream_name, set(streams).difference(_good_streams))
        ):
            return None
        if not _good_types.issuperset(event_types) and not all(
            map(_good_event_type, set(event_types).difference(_good_types))
        ):
            return None
        if set(map(type, map(_get_payloads, batch))) != _DICT:
            return None
        for field in _OPTIONAL_STRINGS:
            if not _OPTIONAL_STRING_TYPES.issuperset(map(type, map(dict.get, batch, repeat(field)))):
                return None
        if not _SCHEMA_TYPES.issuperset(map(type, map(dict.get, batch, repeat(SCHEMA)))):
            return None
        if not _NO_TAGS.issuperset(map(type, map(dict.get, batch, repeat(TAGS)))):
            return None  # events with tags are checked one by one

        ids: list[Any] = list(map(dict.get, batch, repeat(ID)))
        client_ids = ids.count(None) != count
        if client_ids and (
            set(map(type, ids)) != _STR or not 0 < min(map(len, ids)) <= max(map(len, ids)) <= MAX_ID_LENGTH
        ):
            return None
        times: list[Any] = list(map(dict.get, batch, repeat(EVENT_TIME)))
        given_times = times.count(None) != count
        if given_times and (set(map(type, times)) != _INT or min(times) < 0 or max(times) > MAX_VERSION):
            return None

        # What the client left out is filled in on copies; the caller's dicts stay as they were.
        # The keys go where prepare_event puts them (at the end), so the stored JSON is the same.
        # Each copy is encoded and dropped at once: a list of a batch's copies would set off the
        # cyclic garbage collector, which then walks every object the caller holds.
        if not client_ids:
            ids = new_event_ids(count)
            if given_times:
                bodies = [_dumps({**event, ID: event_id})[1:] for event, event_id in zip(batch, ids, strict=True)]
            else:
                # The usual case, without the copies: the two fields go after the encoded event's
                # last one (the bytes are the same; store-made ids need no escaping).
                tail = b'","event-time":%d}' % now
                bodies = [
                    b'%b,"id":"%b%b' % (_dumps(event)[1:-1], event_id.encode(), tail)
                    for event, event_id in zip(batch, ids, strict=True)
                ]
        elif not given_times:
            bodies = [_dumps({**event, EVENT_TIME: now})[1:] for event in batch]
        else:
            bodies = [_dumps(event)[1:] for event in batch]
        if not given_times:
            times = [now] * count
    except (KeyError, TypeError, ValueError):  # a field missing, a payload orjson cannot encode
        return None
    if max(map(len, bodies)) >= max_bytes:  # body is the JSON less its first byte
        return None
    return list(map(_pending_from, zip(streams, ids, event_types, times, bodies, repeat(client_ids))))


def check_tags(tags: Any, field: str) -> list[str]:
    """A list of tags as an event or a query carries them; `ValidationError` naming `field` otherwise."""
    if type(tags) is not list:
        raise ValidationError(f"field {field!r} must be a list of strings, got {_json_type(tags)}", field)
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"field {field!r} has {len(tags)} tags, over the limit of {MAX_TAGS}", field)
    for tag in tags:
        if type(tag) is not str:
            raise ValidationError(f"field {field!r} must hold only strings, got {_json_type(tag)}", field)
        if not 0 < len(tag) <= MAX_NAME_LENGTH or not tag.isprintable():
            raise ValidationError(
                f"field {field!r}: each tag must be 1 to {MAX_NAME_LENGTH} printable characters, got {tag!r}", field
            )
    return tags


def _good_stream_name(name: str) -> bool:
    """A stream name a client may write to (remembered when it is)."""
    if (
        0 < len(name) <= MAX_NAME_LENGTH
        and name.isprintable()
        and not name.startswith(INTERNAL_PREFIX)
        and "*" not in name
    ):
        _remember(_good_streams, name)
        return True
    return False


def _unusual_stream_name(event: Mapping[str, Any], allow_internal: bool) -> None:
    """A stream name `_good_stream_name` refused: raise the error naming the fault, or return
    for an internal name that the core itself writes (never remembered as good)."""
    name = _name(event, STREAM_NAME)
    if name.startswith(INTERNAL_PREFIX) and not allow_internal:
        raise InternalStreamError(
            f"stream {name!r} is internal: names starting with '__' are written only by Photon", STREAM_NAME
        )
    if "*" in name:
        raise ValidationError("field 'stream-name' must not contain '*' (reserved for wildcards)", STREAM_NAME)


def _good_event_type(name: str) -> bool:
    if 0 < len(name) <= MAX_NAME_LENGTH and name.isprintable():
        _remember(_good_types, name)
        return True
    return False


def _unknown_fields(event: Mapping[str, Any]) -> None:
    unknown = event.keys() - ACCEPTED_FIELDS
    server_set = sorted(unknown & SERVER_FIELDS)
    if server_set:
        raise ValidationError(
            f"field {server_set[0]!r} is assigned by the store and cannot be sent (load backups with `photon restore`)",
            server_set[0],
        )
    name = sorted(map(str, unknown))[0]
    raise ValidationError(
        f"unknown field {name!r}; an event has the fields {', '.join(sorted(CLIENT_FIELDS))} "
        f"(and those of the original Photon's shape: {', '.join(sorted(ORIGINAL_FIELDS))})",
        name,
    )


def expected_version_field(wrapper: Mapping[str, Any], default: Any = None) -> Any:
    """A body wrapper's `expected-version` as given (`default` when the field is left out).

    An explicit null is refused: it is not clear whether the sender meant `any` or forgot a
    number, and guessing `any` would silently drop the concurrency check it asked for.
    """
    if "expected-version" not in wrapper:
        return default
    value = wrapper["expected-version"]
    if value is None:
        raise ValidationError(
            "expected-version is null: give a stream version (0 or more), 'any' or 'no-stream', or leave it out",
            "expected-version",
        )
    return value


def parse_expected_version(value: Any) -> int | str:
    """`expected-version`: a stream version (0 = the stream must not exist), `any` or `no-stream`."""
    if value is None or value == "any":
        return "any"
    if value == "no-stream":
        return "no-stream"
    if (type(value) is str and value.isascii() and value.isdigit()) or type(value) is int:
        version = int(value) if type(value) is str and len(value) <= 19 else value
        if type(version) is int and 0 <= version <= MAX_VERSION:
            return version
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
    raise ValidationError(
        f"expected-version must be a stream version (0 to {MAX_VERSION}), 'any' or 'no-stream', got {shown}",
        "expected-version",
    )
