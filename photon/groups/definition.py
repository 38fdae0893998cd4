"""A consumer group's definition: what it reads and how it hands events to its members.

Definitions are stored as `__config__` events (`group-created`, `group-updated`,
`group-deleted`), so replaying `__all__` into an empty store recreates the groups. Field names
are hyphenated, as everywhere in Photon, and the same names are used by every front end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from photon.core.errors import ValidationError
from photon.core.events import (
    ALL_STREAM,
    DOT_SEGMENTS,
    MAX_NAME_LENGTH,
    check_no_lone_star,
    is_internal,
    is_one_stream,
    stream_category,
)
from photon.core.filters import FILTER_KEYS, EventFilter
from photon.core.limits import MAX_INT64

STRATEGIES = ("round-robin", "pinned")
DEFAULT_MAX_IN_FLIGHT = 10
DEFAULT_ACK_TIMEOUT_MS = 30_000
DEFAULT_MAX_RETRIES = 10
MAX_IN_FLIGHT_LIMIT = 100_000

#: Every key a group definition may carry (besides `group-name`).
SETTABLE = (
    "stream",
    "filter",
    "start",
    "strategy",
    "max-in-flight",
    "ack-timeout-ms",
    "max-retries",
    "serial",
)


@dataclass(frozen=True)
class GroupSpec:
    name: str
    stream: str = ALL_STREAM
    """A stream, `__all__`, or a category as `__category__:<name>`."""
    filter: EventFilter = field(default_factory=EventFilter)
    """Only with `__all__` or a category."""
    start: int = 1
    """The first order-id the group delivers (fixed when the group is created)."""
    strategy: str = "round-robin"
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Events delivered to one member and not yet acknowledged, at most."""
    ack_timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS
    max_retries: int = DEFAULT_MAX_RETRIES
    """Redeliveries of one event before it is parked."""
    serial: bool = False
    """One event in flight for the whole group (eda's `serial`)."""

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "group-name": self.name,
            "stream": self.stream,
            "start": self.start,
            "strategy": self.strategy,
            "max-in-flight": self.max_in_flight,
            "ack-timeout-ms": self.ack_timeout_ms,
            "max-retries": self.max_retries,
            "serial": self.serial,
        }
        if not self.filter.empty:
            payload["filter"] = self.filter.to_payload()
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GroupSpec:
        """A definition as stored in `__config__` (already checked when it was written)."""
        return parse_spec(payload, resolved_start=int(payload.get("start", 1)), stored=True)

    def updated(self, changes: Mapping[str, Any]) -> GroupSpec:
        """This definition with `changes` applied (the start position stays; use reset to move it)."""
        merged = {**self.to_payload(), **changes, "group-name": self.name, "start": self.start}
        if "filter" in changes and changes["filter"] is None:
            merged.pop("filter")
        return parse_spec(merged, resolved_start=self.start, stored="stream" not in changes)


def check_group_name(name: Any) -> str:
    if name is None:
        raise ValidationError("group-name is required: 1 to 200 printable characters", "group-name")
    if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable():
        raise ValidationError(f"group-name must be 1 to 200 printable characters, got {name!r}", "group-name")
    if "/" in name or "*" in name:
        raise ValidationError(f"group-name must not contain '/' or '*': {name!r}", "group-name")
    if name in DOT_SEGMENTS:
        raise ValidationError(f"group-name must not be {name!r}: URLs resolve it as a path segment", "group-name")
    return name


def _int(doc: Mapping[str, Any], key: str, default: int, minimum: int, maximum: int) -> int:
    value = doc.get(key, default)
    if type(value) is not int or not minimum <= value <= maximum:
        raise ValidationError(f"{key} must be a whole number from {minimum} to {maximum}, got {value!r}", key)
    return value


def parse_spec(doc: Mapping[str, Any], *, resolved_start: int | None = None, stored: bool = False) -> GroupSpec:
    """Check a group definition from a client; `ValidationError` names the first bad key.

    `start` is `begin` (the default), `end` (only events appended after the group is created) or an
    order-id; the caller resolves `end` to a number (`resolved_start`) before the group is stored.
    `stored`: the stream was stored before (by a version that let a lone `*` through), so it is not
    refused now.
    """
    if not isinstance(doc, Mapping):
        raise ValidationError("a group definition is a JSON object")
    unknown = sorted(set(doc) - {"group-name", *SETTABLE})
    if unknown:
        raise ValidationError(
            f"unknown group key {unknown[0]!r}; a group has group-name, {', '.join(SETTABLE)}", unknown[0]
        )
    name = check_group_name(doc.get("group-name"))
    stream = doc.get("stream", ALL_STREAM)
    if not isinstance(stream, str) or not stream or len(stream) > MAX_NAME_LENGTH or not stream.isprintable():
        raise ValidationError(f"stream must be a stream name, got {stream!r}", "stream")
    category = stream_category(stream)
    if is_internal(stream) and stream != ALL_STREAM and (category is None or not category or "-" in category):
        raise ValidationError(
            f"a group reads a client stream, __all__ or a category (__category__:<name>), not {stream!r}", "stream"
        )
    if not stored:
        check_no_lone_star(stream)
    raw_filter = doc.get("filter")
    if raw_filter is not None and not isinstance(raw_filter, Mapping):
        raise ValidationError(f"filter must be an object with keys among {', '.join(FILTER_KEYS)}", "filter")
    event_filter = EventFilter.from_mapping(raw_filter)
    # A group on one stream can still narrow its events by type (a `**` wildcard reads many: any filter).
    by_type = {"event-types", "event-type-prefix", "event-type-regex"}
    if is_one_stream(stream) and set(event_filter.to_payload()) - by_type:
        raise ValidationError("a group on one stream can filter by event type only", "filter")
    strategy = doc.get("strategy", "round-robin")
    if strategy not in STRATEGIES:
        raise ValidationError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}", "strategy")
    serial = doc.get("serial", False)
    if type(serial) is not bool:
        raise ValidationError(f"serial must be true or false, got {serial!r}", "serial")
    if resolved_start is None:
        start_value = doc.get("start", "begin")
        if start_value == "begin":
            resolved_start = 1
        elif start_value == "end":
            resolved_start = 0  # the caller puts the last order-id + 1 in its place
        elif type(start_value) is int and 1 <= start_value <= MAX_INT64:
            resolved_start = start_value
        else:
            raise ValidationError(f"start must be begin, end or an order-id (1 or more), got {start_value!r}", "start")
    return GroupSpec(
        name=name,
        stream=stream,
        filter=event_filter,
        start=resolved_start,
        strategy=strategy,
        max_in_flight=_int(doc, "max-in-flight", DEFAULT_MAX_IN_FLIGHT, 1, MAX_IN_FLIGHT_LIMIT),
        ack_timeout_ms=_int(doc, "ack-timeout-ms", DEFAULT_ACK_TIMEOUT_MS, 10, 24 * 3600 * 1000),
        max_retries=_int(doc, "max-retries", DEFAULT_MAX_RETRIES, 0, 1_000_000),
        serial=serial,
    )


def with_start(spec: GroupSpec, start: int) -> GroupSpec:
    return replace(spec, start=start)
