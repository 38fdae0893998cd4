"""Which projections fold again after a redaction, so that no state keeps a redacted payload.

A redaction (`photon.core.redaction`) replaces payloads in the store and records a `__config__`
`events-redacted` event naming the streams and event types of the redacted events and the first
order-id among them. A projection whose state may hold one of those payloads is one that has
folded past that order-id and whose source can contain the events: `__all__`, one of the streams,
or the category of one, with an `event-types` filter (when it has one) that lets one of the types
through. Such a projection folds again from the start (its checkpoint is dropped); the others are
left alone.

Two places apply it: a running server's manager follows `__config__` and folds the affected
projections again when a redaction is recorded, and a projection resumed from a checkpoint (at a
server's start, or by `photon projections` on a store directly) folds from the start instead when
a redaction recorded after its checkpoint touched events before it.

The built-in `__streams__` is never folded again for a redaction: it keeps counts and the names
and JSON types of payload fields, which a redaction does not make wrong enough to refold a whole
store for (the marker's fields show up in later samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from photon.core.events import ALL_STREAM, CONFIG_STREAM, category_of, stream_category
from photon.core.redaction import REDACTED
from photon.projections.registry import STREAMS_PROJECTION

if TYPE_CHECKING:
    from photon.core.events import RecordedEvent
    from photon.core.store import EventStore


@dataclass(frozen=True)
class Redaction:
    """One recorded redaction, as far as projections are concerned."""

    order_id: int
    """Where it is recorded in `__config__` (every event folded up to here saw the marker)."""
    first: int
    """The first order-id redacted (1 when the record does not say: everything is suspect)."""
    streams: frozenset[str] | None
    """The streams of the redacted events; None when the record does not say."""
    event_types: frozenset[str] | None
    """Their event types; None when the record does not say."""

    @classmethod
    def from_event(cls, event: RecordedEvent) -> Redaction:
        payload = event.payload if isinstance(event.payload, dict) else {}
        streams = _names(payload.get("stream-names"))
        if streams is None and type(payload.get("stream-name")) is str:
            streams = frozenset([payload["stream-name"]])  # recorded before the stream names were
        return cls(event.order_id, _first(payload), streams, _names(payload.get("event-types")))

    def affects(self, name: str, source: str, event_types: frozenset[str] | None) -> bool:
        """Whether projection `name`, folding `source` (with this `event-types` filter), can have
        folded a redacted event."""
        if name == STREAMS_PROJECTION:
            return False
        if self.event_types is not None and event_types is not None and not (self.event_types & event_types):
            return False
        if source == ALL_STREAM or self.streams is None:
            return True
        category = stream_category(source)
        if category is not None:
            return any(category_of(stream) == category for stream in self.streams)
        return source in self.streams

    def stales(self, name: str, source: str, event_types: frozenset[str] | None, position: int) -> bool:
        """Whether the state of a projection at `position` may hold a payload this redaction removed
        (it folded from before the first redacted event, up to before this record)."""
        return self.first <= position < self.order_id and self.affects(name, source, event_types)


def recorded(store: EventStore, after: int = 0) -> list[Redaction]:
    """The redactions recorded in `__config__` after order-id `after`."""
    return [
        Redaction.from_event(event)
        for event in store.read(CONFIG_STREAM, from_order_id=after + 1, event_types=(REDACTED,))
    ]


def stale(
    redactions: Sequence[Redaction], name: str, source: str, event_types: frozenset[str] | None, position: int
) -> bool:
    """Whether a projection's state at `position` may hold a payload one of `redactions` removed."""
    return any(r.stales(name, source, event_types, position) for r in redactions)


def _first(payload: dict[str, Any]) -> int:
    first = payload.get("from-order-id")
    return first if type(first) is int and first > 0 else 1


def _names(value: Any) -> frozenset[str] | None:
    if isinstance(value, list) and all(type(v) is str for v in value):
        return frozenset(value)
    return None
