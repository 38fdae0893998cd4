"""Backup lines read as stored events: the full check of one line, and the quick read of a row's columns.

A backup is what a cold replay of `__all__` prints: one stored event per line, exactly the
event's stored JSON (`RecordedEvent.data`), with its `id`, `order-id`, `stream-version` and
`event-time`. Lines that are not events at all (a JSON object with neither `stream-name` nor
`event-type`, such as a replay's caught-up marker) and blank lines are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from operator import itemgetter
from typing import Any

import msgspec
import orjson

from photon.core.events import ALL_STREAM, CONFIG_STREAM, RecordedEvent
from photon.core.positioned import STREAM_DELETED, BackupFormatError

# Builds a RecordedEvent from a tuple without NamedTuple's keyword handling (the hot path).
record_of = partial(tuple.__new__, RecordedEvent)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


_FIELDS = ("order-id", "stream-name", "stream-version", "id", "event-type", "event-time", "payload")
_fields = itemgetter(*_FIELDS)


def parse_line(line: bytes, number: int | None = None) -> RecordedEvent | None:
    """One backup line as a stored event; None for a blank or marker line.

    The event keeps the line's own bytes as its stored JSON, so nothing is encoded again.
    """
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if not line.strip():
            return None
        raise BackupFormatError(number, f"not valid JSON ({exc})") from None
    if type(item) is not dict:
        raise BackupFormatError(number, f"expected a JSON object (a stored event), got {_type_name(item)}")
    try:
        order_id, stream, version, event_id, event_type, event_time, payload = _fields(item)
    except KeyError:
        if "stream-name" not in item and "event-type" not in item:
            return None  # a marker (e.g. a replay's caught-up line), not an event
        missing = next(name for name in _FIELDS if name not in item)
        raise BackupFormatError(number, f"missing field {missing!r} (not a stored event)", missing) from None
    # One test for the common case; the field-by-field checks below only run to name a fault.
    if not (
        type(order_id) is int
        and order_id > 0
        and type(version) is int
        and version > 0
        and type(stream) is str
        and stream
        and stream != ALL_STREAM
        and type(event_id) is str
        and event_id
        and type(event_type) is str
        and event_type
        and type(event_time) is int
        and event_time >= 0
        and type(payload) is dict
    ):
        _explain(number, order_id, stream, version, event_id, event_type, event_time, payload)
    if stream == CONFIG_STREAM and event_type == STREAM_DELETED:
        deleted = payload.get("stream-name")
        if type(deleted) is not str or not deleted:
            raise BackupFormatError(number, "a stream-deleted event must name its stream in payload.stream-name")
    return record_of((order_id, stream, version, event_id, event_type, event_time, line.strip()))


def _explain(
    number: int | None,
    order_id: Any,
    stream: Any,
    version: Any,
    event_id: Any,
    event_type: Any,
    event_time: Any,
    payload: Any,
) -> None:
    """Raise the error naming the first field of a stored event that has a wrong value."""
    if type(order_id) is not int or order_id < 1:
        raise BackupFormatError(number, f"field 'order-id' must be a positive integer, got {order_id!r}", "order-id")
    if type(version) is not int or version < 1:
        raise BackupFormatError(
            number, f"field 'stream-version' must be a positive integer, got {version!r}", "stream-version"
        )
    if type(stream) is not str or not stream or stream == ALL_STREAM:
        raise BackupFormatError(number, f"field 'stream-name' must name a stream, got {stream!r}", "stream-name")
    if type(event_id) is not str or not event_id:
        raise BackupFormatError(number, f"field 'id' must be a non-empty string, got {event_id!r}", "id")
    if type(event_type) is not str or not event_type:
        raise BackupFormatError(
            number, f"field 'event-type' must be a non-empty string, got {event_type!r}", "event-type"
        )
    if type(event_time) is not int or event_time < 0:
        raise BackupFormatError(
            number, f"field 'event-time' must be a non-negative integer, got {event_time!r}", "event-time"
        )
    raise BackupFormatError(number, f"field 'payload' must be a JSON object, got {_type_name(payload)}", "payload")


def parse_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, RecordedEvent]]:
    """The events of a backup with their line numbers (markers and blank lines skipped)."""
    for number, line in enumerate(lines, start=1):
        record = parse_line(line, number)
        if record is not None:
            yield number, record


class Columns(msgspec.Struct, gc=False):
    """The fields of a backup line that a row of the store needs, as `msgspec` decodes them:
    typed, other fields skipped unread. For valid JSON it reads the same values as `orjson`
    (which the check uses), duplicate keys included: the last one counts."""

    order_id: int = msgspec.field(name="order-id")
    stream_name: str = msgspec.field(name="stream-name")
    stream_version: int = msgspec.field(name="stream-version")
    id: str
    event_type: str = msgspec.field(name="event-type")
    event_time: int = msgspec.field(name="event-time")


decode_columns = msgspec.json.Decoder(Columns).decode
