"""Event filters for `__all__`: by stream-name or event-type prefix, regular expression, category.

One filter holds any of these conditions. Within one condition the values are alternatives (any
prefix of the list matches); different conditions must all hold. An empty filter matches every
event. The same filter serves replays, subscriptions, consumer groups and projection sources, so
the rule of what matches lives here only.

Filters are given as a mapping with Photon's hyphenated keys (HTTP query parameters, group
definitions, projection templates): `stream-prefix`, `event-type-prefix`, `stream-regex`,
`event-type-regex`, `category`, `event-types` (exact types, as before).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from photon.core.errors import ValidationError
from photon.core.events import INTERNAL_PREFIX, RecordedEvent, category_of

MAX_PATTERN_LENGTH = 1000

FILTER_KEYS = ("stream-prefix", "event-type-prefix", "stream-regex", "event-type-regex", "category", "event-types")


@dataclass(frozen=True)
class EventFilter:
    stream_prefixes: tuple[str, ...] = ()
    event_type_prefixes: tuple[str, ...] = ()
    stream_regex: str | None = None
    """Matched with `re.search` against the stream name (anchor it with ^...$ for a whole match)."""
    event_type_regex: str | None = None
    categories: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.stream_prefixes
            or self.event_type_prefixes
            or self.stream_regex
            or self.event_type_regex
            or self.categories
            or self.event_types
        )

    @cached_property
    def _stream_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.stream_regex) if self.stream_regex else None

    @cached_property
    def _type_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.event_type_regex) if self.event_type_regex else None

    @cached_property
    def _types(self) -> frozenset[str]:
        return frozenset(self.event_types)

    @cached_property
    def _categories(self) -> frozenset[str]:
        return frozenset(self.categories)

    def matches_names(self, stream_name: str, event_type: str) -> bool:
        if self.event_types and event_type not in self._types:
            return False
        if self.categories and category_of(stream_name) not in self._categories:
            return False
        if self.stream_prefixes and not stream_name.startswith(self.stream_prefixes):
            return False
        if self.event_type_prefixes and not event_type.startswith(self.event_type_prefixes):
            return False
        pattern = self._stream_pattern
        if pattern is not None and pattern.search(stream_name) is None:
            return False
        pattern = self._type_pattern
        return pattern is None or pattern.search(event_type) is not None

    def matches(self, event: RecordedEvent) -> bool:
        return self.matches_names(event.stream_name, event.event_type)

    def select(self, events: Iterable[RecordedEvent], *, client_only: bool = False) -> list[RecordedEvent]:
        """The events this filter matches (with `client_only`, leaving out internal streams' events)."""
        if client_only:
            events = (e for e in events if not e.stream_name.startswith(INTERNAL_PREFIX))
        if self.empty:
            return list(events)
        return [e for e in events if self.matches_names(e.stream_name, e.event_type)]

    def to_payload(self) -> dict[str, Any]:
        """The filter as the mapping `from_mapping` reads (only the conditions that are set)."""
        payload: dict[str, Any] = {}
        if self.stream_prefixes:
            payload["stream-prefix"] = list(self.stream_prefixes)
        if self.event_type_prefixes:
            payload["event-type-prefix"] = list(self.event_type_prefixes)
        if self.stream_regex:
            payload["stream-regex"] = self.stream_regex
        if self.event_type_regex:
            payload["event-type-regex"] = self.event_type_regex
        if self.categories:
            payload["category"] = list(self.categories)
        if self.event_types:
            payload["event-types"] = list(self.event_types)
        return payload

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> EventFilter:
        """Read and check a filter; `ValidationError` names the bad key. None values are left out."""
        if not values:
            return cls()
        unknown = sorted(set(values) - set(FILTER_KEYS))
        if unknown:
            raise ValidationError(
                f"unknown filter key {unknown[0]!r}; a filter has {', '.join(FILTER_KEYS)}", unknown[0]
            )
        return cls(
            stream_prefixes=_names(values.get("stream-prefix"), "stream-prefix"),
            event_type_prefixes=_names(values.get("event-type-prefix"), "event-type-prefix"),
            stream_regex=_regex(values.get("stream-regex"), "stream-regex"),
            event_type_regex=_regex(values.get("event-type-regex"), "event-type-regex"),
            categories=_names(values.get("category"), "category", no_dash=True),
            event_types=_names(values.get("event-types"), "event-types"),
        )


def _names(value: Any, key: str, *, no_dash: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValidationError(f"{key} must be a non-empty string or list of strings, got {value!r}", key)
    for item in items:
        if not isinstance(item, str) or not item or len(item) > 256 or not item.isprintable():
            raise ValidationError(f"{key} values must be 1 to 256 printable characters, got {item!r}", key)
        if no_dash and "-" in item:
            raise ValidationError(
                f"a category is the part of a stream name before its first '-', so it has no '-': {item!r}", key
            )
    return tuple(dict.fromkeys(items))


def _regex(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_PATTERN_LENGTH:
        raise ValidationError(f"{key} must be a regular expression of 1 to {MAX_PATTERN_LENGTH} characters", key)
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"{key} is not a valid regular expression: {exc}", key) from None
    return value
