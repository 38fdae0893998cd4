"""Checking a client's event and turning it into a `PendingEvent`: field names, types, sizes, ids.

`validate_event` checks one event field by field; `prepare_batch` checks a large batch of plain
events at once, accepting and refusing exactly what event-by-event checking would (tested side
by side in tests/test_events_batch.py); the expected version of an emit is read here too.
Every way in (HTTP, TCP, AMQP, Muon, the embedded store) goes through these functions, so an
event is refused for the same reason, with the same message, whichever way it came.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import repeat
from operator import itemgetter
from typing import Any, Final, cast

import orjson

from photon.core.errors import EventTooLarge, InternalStreamError, ValidationError
from photon.core.events import (
    ACCEPTED_FIELDS,
    CAUSED_BY,
    CAUSED_BY_RELATION,
    CLIENT_FIELDS,
    DEFAULT_MAX_EVENT_BYTES,
    DOT_SEGMENTS,
    EVENT_TIME,
    EVENT_TYPE,
    ID,
    INTERNAL_PREFIX,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAGS,
    PAYLOAD,
    SCHEMA,
    SERVER_FIELDS,
    SERVICE_ID,
    STREAM_NAME,
    TAGS,
    PendingEvent,
    Tagless,
    new_event_id,
    new_event_ids,
    now_millis,
)
from photon.core.limits import MAX_INT64 as MAX_VERSION
from photon.core.original_shape import ORIGINAL_FIELDS, has_original_fields, to_photon

# NamedTuple's generated __new__ is a Python function; tuple.__new__ builds the same object
# without that call (once per appended event).
_new_pending = tuple.__new__


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


# -- a small batch of plain events ------------------------------------------------------------


def prepare_plain(batch: list[Any], max_bytes: int, now: int) -> list[PendingEvent] | None:
    """`prepare_event` for a small batch of the plainest events: dicts of exactly the three
    required fields (what the `eventsourcing` recorders send), with names seen before or that
    pass, and an object payload. The store gives each its id and the event-time `now`.

    The same checks in one loop, without `prepare_event`'s tests for the fields such an event
    cannot have, and each event encoded once, with the store's fields after its own. Anything
    else returns None, and the caller prepares event by event: that path accepts and refuses
    exactly the same events (tested side by side in tests/test_events_batch.py), with the
    error naming the event and the field at fault.
    """
    if set(map(type, batch)) != _DICT or set(map(len, batch)) != _THREE:
        return None  # (asked in C, before any id is made) events with optional fields, or not dicts
    ids = new_event_ids(len(batch))
    tail = b'","event-time":%d}' % now
    streams, types = _good_streams, _good_types
    pending: list[PendingEvent] = Tagless()  # three fields: none of them tags
    add = pending.append
    try:
        for event, event_id in zip(batch, ids, strict=True):
            stream_name = event.get(STREAM_NAME)
            if type(stream_name) is not str or (stream_name not in streams and not _good_stream_name(stream_name)):
                return None
            event_type = event.get(EVENT_TYPE)
            if type(event_type) is not str or (event_type not in types and not _good_event_type(event_type)):
                return None
            if type(event.get(PAYLOAD)) is not dict:
                return None  # a missing payload (the third field is then another one) included
            # The bytes prepare_event writes: the event's fields, then id and event-time (a
            # store-made id needs no escaping).
            body = b'%b,"id":"%b%b' % (_dumps(event)[1:-1], event_id.encode(), tail)
            if len(body) >= max_bytes:  # body is the JSON less its first byte
                return None
            add(_new_pending(PendingEvent, (stream_name, event_id, event_type, now, body, False)))
    except TypeError:  # a payload orjson cannot encode
        return None
    return pending


# -- a whole batch at once --------------------------------------------------------------------

_dumps = orjson.dumps
_get_stream_names = itemgetter(STREAM_NAME)
_get_event_types = itemgetter(EVENT_TYPE)
_get_payloads = itemgetter(PAYLOAD)
_DICT: Final = frozenset({dict})
_STR: Final = frozenset({str})
_INT: Final = frozenset({int})
_NONE: Final = type(None)
_OPTIONAL_STRING_TYPES: Final = frozenset({str, _NONE})
_SCHEMA_TYPES: Final = frozenset({str, int, _NONE})
_NO_TAGS: Final = frozenset({_NONE})
_THREE: Final = frozenset({3})


def prepare_batch(
    batch: list[Any], max_bytes: int, now: int, encoded: list[bytes] | None = None
) -> list[PendingEvent] | None:
    """`prepare_event` for every event of a client batch, checked field by field across the
    batch rather than event by event.

    `encoded`, when given, holds each event exactly as `orjson.dumps` writes it (the lines TCP
    ingest parsed, `json_input.loads_compact_lines`): the stored bodies are made from those bytes
    instead of encoding every event again.

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
        if set(map(type, batch)) != _DICT:
            return None
        # The fields any event of the batch has: the checks of a field no event has are skipped
        # (each is a pass over the batch; most batches have a few of the optional fields).
        # (`union` takes each dict's keys in C: half the cost of a set built through `chain`.)
        fields = set().union(*batch)
        if not CLIENT_FIELDS.issuperset(fields):
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
            if field in fields and not _OPTIONAL_STRING_TYPES.issuperset(
                map(type, map(dict.get, batch, repeat(field)))
            ):
                return None
        if SCHEMA in fields and not _SCHEMA_TYPES.issuperset(map(type, map(dict.get, batch, repeat(SCHEMA)))):
            return None
        if TAGS in fields and not _NO_TAGS.issuperset(map(type, map(dict.get, batch, repeat(TAGS)))):
            return None  # events with tags are checked one by one

        ids: list[Any] = list(map(dict.get, batch, repeat(ID))) if ID in fields else []
        client_ids = bool(ids) and ids.count(None) != count
        if client_ids and (
            set(map(type, ids)) != _STR or not 0 < min(map(len, ids)) <= max(map(len, ids)) <= MAX_ID_LENGTH
        ):
            return None
        times: list[Any] = list(map(dict.get, batch, repeat(EVENT_TIME))) if EVENT_TIME in fields else []
        given_times = bool(times) and times.count(None) != count
        if given_times and (set(map(type, times)) != _INT or min(times) < 0 or max(times) > MAX_VERSION):
            return None

        # What the client left out is filled in on copies; the caller's dicts stay as they were.
        # The keys go where prepare_event puts them (at the end), so the stored JSON is the same.
        # Each copy is encoded and dropped at once: a list of a batch's copies would set off the
        # cyclic garbage collector, which then walks every object the caller holds.
        if not client_ids:
            ids = new_event_ids(count)
            if encoded is not None and not given_times:
                # The same bytes as below, from the text the event was parsed from.
                tail = b'","event-time":%d}' % now
                bodies = [
                    b'%b,"id":"%b%b' % (line[1:-1], event_id.encode(), tail)
                    for line, event_id in zip(encoded, ids, strict=True)
                ]
            elif given_times:
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
        elif encoded is not None:
            bodies = [line[1:] for line in encoded]
        else:
            bodies = [_dumps(event)[1:] for event in batch]
        if not given_times:
            times = [now] * count
    except (KeyError, TypeError, ValueError):  # a field missing, a payload orjson cannot encode
        return None
    if max(map(len, bodies)) >= max_bytes:  # body is the JSON less its first byte
        return None
    # Tagless: the checks above declined every event with tags (see `Tagless`). Plain tuples in
    # PendingEvent's order, not PendingEvents: the cyclic garbage collector stops tracking a plain
    # tuple of strings and numbers at its first look, never a named tuple. A batch's thousand
    # PendingEvents, alive through the commit, went to the oldest generation at every middle
    # collection and brought on the full ones, which walk every object the process holds
    # (measured: young collections halved, about 0.5 µs less CPU an event of a batch of 1,000).
    pending = Tagless(zip(streams, ids, event_types, times, bodies, repeat(client_ids)))
    return cast(Tagless[PendingEvent], pending)


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
        and name not in DOT_SEGMENTS
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
    if name in DOT_SEGMENTS:
        raise ValidationError(
            f"field 'stream-name' must not be {name!r}: URLs resolve it as a path segment, so it could not be read",
            STREAM_NAME,
        )


def check_client_stream_name(name: Any) -> None:
    """Raise the `ValidationError` naming the fault of a name no client stream can have (empty,
    too long, control characters, `*`, a dot segment, or internal), as an append would."""
    if type(name) is not str or not _good_stream_name(name):
        _unusual_stream_name({STREAM_NAME: name}, allow_internal=False)


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
