"""The emit request: events, expected versions (one stream or several) and a condition.

This is the one place that reads an emit request's options from JSON, for every way in (HTTP,
AMQP, the clients): ``{"events": [...], "expected-version": v}``,
``{"events": [...], "expected-versions": {"stream": v, ...}}`` and
``{"events": [...], "condition": {"query": [{"event-types": [...], "tags": [...]}], "after": P}}``.

A condition is a consistency boundary in the manner of the DCB specification (the one the
`eventsourcing` library's ``eventsourcing.dcb`` implements): a query is a list of items; an event
matches an item when its type is one of the item's event types (or the item names none) and it
carries every one of the item's tags; it matches the query when it matches any item (a query of
no items matches every event). "Store only if no event matching the query has been stored after
position P" (P an order-id; no P: at any position). Only events of client streams are matched:
the store's own (`__`) streams are never part of an application's boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from photon.core.errors import ValidationError
from photon.core.event_validation import check_tags, expected_version_field, parse_expected_version
from photon.core.events import RecordedEvent, event_tags, is_internal
from photon.core.requests import MAX_INT64, EmitEnvelope, field_names, parse_integer

EVENTS: Final = "events"
EXPECTED_VERSION: Final = "expected-version"
EXPECTED_VERSIONS: Final = "expected-versions"
CONDITION: Final = "condition"
WRAPPER_FIELDS: Final = field_names(EmitEnvelope)
"""The wrapper's fields, as the request model declares them (events, expected-version, ...)."""
MAX_QUERY_ITEMS: Final = 100


@dataclass(frozen=True, slots=True)
class QueryItem:
    """Events of one of `types` (any type when empty) carrying every one of `tags`."""

    types: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    def matches(self, event_type: str, tags: Iterable[str]) -> bool:
        return (not self.types or event_type in self.types) and self.tags.issubset(tags)


def query_matches(items: tuple[QueryItem, ...], event: RecordedEvent) -> bool:
    """Whether a stored event matches a query (a client event matching any item; no items: any client event)."""
    if is_internal(event.stream_name):
        return False
    if not items:
        return True
    tags = event_tags(event.data) if any(item.tags for item in items) else ()
    return any(item.matches(event.event_type, tags) for item in items)


@dataclass(frozen=True, slots=True)
class AppendCondition:
    """Store the append only if no event matching `query` has an order-id above `after` (0: none at all)."""

    query: tuple[QueryItem, ...] = ()
    after: int = 0


@dataclass(frozen=True, slots=True)
class AppendOptions:
    """What an append checks before it stores anything (all of it, atomically with the write)."""

    expected_version: int | str = "any"
    """For a batch of one stream (a number, 'any', 'no-stream')."""
    expected_versions: Mapping[str, int | str] | None = None
    """Per stream: each named stream must be at its version (it need not be written to)."""
    condition: AppendCondition | None = None


@dataclass(frozen=True)
class EmitRequest:
    """An emit request read from JSON: the events (one object or a list, as sent) and the options."""

    events: Any
    options: AppendOptions = field(default_factory=AppendOptions)


def parse_query(value: Any, field_name: str = "query") -> tuple[QueryItem, ...]:
    """A query: a list of items ``{"event-types": [...], "tags": [...]}`` (both optional)."""
    if type(value) is not list:
        raise ValidationError(f"field {field_name!r} must be a list of query items", field_name)
    if len(value) > MAX_QUERY_ITEMS:
        raise ValidationError(f"field {field_name!r} has {len(value)} items, over the limit of {MAX_QUERY_ITEMS}")
    items = []
    for index, item in enumerate(value):
        where = f"{field_name}[{index}]"
        if type(item) is not dict:
            raise ValidationError(f"{where} must be an object with event-types and/or tags", field_name)
        unknown = sorted(item.keys() - {"event-types", "tags"})
        if unknown:
            raise ValidationError(
                f"unknown field {unknown[0]!r} in {where}; a query item has the fields event-types and tags",
                unknown[0],
            )
        types = check_tags(item.get("event-types", []), "event-types")
        tags = check_tags(item.get("tags", []), "tags")
        items.append(QueryItem(frozenset(types), frozenset(tags)))
    return tuple(items)


def parse_after(value: Any) -> int:
    """A position (order-id) `after` which events count; None or absent is 0 (from the start)."""
    if value is None:
        return 0
    if (type(value) is int or type(value) is str) and not isinstance(value, bool):
        try:
            return parse_integer(value, "after", text=True)
        except ValidationError:
            pass
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
    raise ValidationError(f"field 'after' must be an order-id (0 to {MAX_INT64}), got {shown}", "after")


def parse_condition(value: Any) -> AppendCondition | None:
    """``{"query": [items], "after": P}``; None when absent."""
    if value is None:
        return None
    if type(value) is not dict:
        raise ValidationError("field 'condition' must be an object with query and after", CONDITION)
    unknown = sorted(value.keys() - {"query", "after"})
    if unknown:
        raise ValidationError(
            f"unknown field {unknown[0]!r} in the condition; it has the fields query and after", unknown[0]
        )
    return AppendCondition(parse_query(value.get("query", [])), parse_after(value.get("after")))


def parse_expected_versions(value: Any) -> dict[str, int | str] | None:
    """``{"stream": version, ...}``: each a number, 'any' or 'no-stream'; None when absent."""
    if value is None:
        return None
    if type(value) is not dict:
        raise ValidationError(
            "field 'expected-versions' must be an object of stream names to versions", EXPECTED_VERSIONS
        )
    versions: dict[str, int | str] = {}
    for stream, version in value.items():
        if version is None:
            raise ValidationError(
                f"expected-versions: stream {stream!r} has null; give a version number (0 or more), 'any' or "
                "'no-stream', or leave the stream out",
                EXPECTED_VERSIONS,
            )
        if not stream or is_internal(stream):
            raise ValidationError(f"expected-versions: {stream!r} is not a client stream name", EXPECTED_VERSIONS)
        try:
            versions[stream] = parse_expected_version(version)
        except ValidationError:
            raise ValidationError(
                f"expected-versions: stream {stream!r} must have a version number (0 or more), 'any' or "
                f"'no-stream', got {version!r}",
                EXPECTED_VERSIONS,
            ) from None
    return versions


def append_options(
    expected_version: Any = "any", expected_versions: Any = None, condition: Any = None
) -> AppendOptions:
    """The options of an append, from JSON values or from ones already parsed."""
    if not isinstance(expected_versions, Mapping | None):
        raise ValidationError("expected-versions must be a mapping of stream names to versions", EXPECTED_VERSIONS)
    return AppendOptions(
        parse_expected_version(expected_version),
        parse_expected_versions(dict(expected_versions) if expected_versions is not None else None),
        condition if isinstance(condition, AppendCondition) else parse_condition(condition),
    )


def parse_emit(doc: Any, *, expected_version: Any = None) -> EmitRequest:
    """An emit request's JSON: one event, a list of events, or the wrapper object.

    `expected_version` comes from outside the body (a query parameter, a message header); giving it
    in both places is an error.
    """
    if type(doc) is dict and EVENTS in doc and "stream-name" not in doc:
        extra = sorted(doc.keys() - set(WRAPPER_FIELDS))
        if extra:
            raise ValidationError(
                f"unknown field {extra[0]!r} in the body wrapper; it has the fields {', '.join(WRAPPER_FIELDS)}",
                extra[0],
            )
        if EXPECTED_VERSION in doc:
            if expected_version is not None:
                raise ValidationError(
                    "expected-version given both in the body and as a query parameter (or message header)",
                    EXPECTED_VERSION,
                )
            expected_version = expected_version_field(doc)
        events = doc[EVENTS]
        if type(events) is not list and type(events) is not dict:
            raise ValidationError("field 'events' must be a list of events or one event", EVENTS)
        options = append_options(expected_version, doc.get(EXPECTED_VERSIONS), doc.get(CONDITION))
        return EmitRequest(events, options)
    if type(doc) is dict or type(doc) is list:
        return EmitRequest(doc, append_options(expected_version))
    raise ValidationError(
        'the body must be an event object, a list of events or {"events": [...], "expected-version": ...}'
    )


def condition_to_json(condition: AppendCondition) -> dict[str, Any]:
    """The JSON form `parse_condition` reads (for the clients)."""
    return {
        "query": [{"event-types": sorted(item.types), "tags": sorted(item.tags)} for item in condition.query],
        "after": condition.after,
    }


def emit_body(
    events: Any,
    expected_version: Any = None,
    expected_versions: Mapping[str, Any] | None = None,
    condition: AppendCondition | Mapping[str, Any] | None = None,
) -> Any:
    """The JSON an emit request sends (the clients' side of `parse_emit`): the events alone when
    there are no options, else the wrapper."""
    if expected_version in (None, "any") and expected_versions is None and condition is None:
        return events
    body: dict[str, Any] = {EVENTS: events}
    if expected_version not in (None, "any"):
        body[EXPECTED_VERSION] = expected_version
    if expected_versions is not None:
        body[EXPECTED_VERSIONS] = dict(expected_versions)
    if condition is not None:
        body[CONDITION] = condition_to_json(condition) if isinstance(condition, AppendCondition) else dict(condition)
    return body
