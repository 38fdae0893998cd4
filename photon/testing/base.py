"""What every part of the backend contract suite shares: the store fixtures, the knobs a
backend's test class may set, and the sample events.

pytest is needed only to run the suite: Photon itself never imports this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from photon.core.events import RecordedEvent
from photon.core.store import EventStore


def event(stream: str = "orders", event_type: str = "Created", **payload: Any) -> dict[str, Any]:
    """An event to append, as a client sends it."""
    return {"stream-name": stream, "event-type": event_type, "payload": payload or {"n": 1}}


def gapless(events: list[RecordedEvent]) -> bool:
    return [e.order_id for e in events] == list(range(1, len(events) + 1))


class ContractBase:
    """The fixtures and settings of the suite; a backend's test class provides `store_config`."""

    #: False for a backend whose data lives only as long as its object (memory): the tests that
    #: close and reopen a store skip. It must agree with the backend class's `persistent`.
    persistent = True
    #: A scavenge keeps each stream's newest event (hidden from reads) on a backend that proves a
    #: stream's version by its newest event (no built-in backend does any more).
    scavenge_keeps_newest = False
    #: Scale of the volume tests; a slow remote backend may lower them, never below the issue's figures.
    many_events = 100_000
    many_streams = 10_000

    @pytest.fixture
    def store_config(self) -> dict[str, Any]:  # pragma: no cover - provided by subclasses
        """The configuration (Photon keys) of a fresh, empty store; opening it twice reaches the same store."""
        raise NotImplementedError("a backend's contract test class provides the store_config fixture")

    @pytest.fixture
    def store(self, store_config: dict[str, Any]) -> Iterator[EventStore]:
        with EventStore.open(store_config) as store:
            yield store

    def reopen(self, store: EventStore, store_config: dict[str, Any]) -> EventStore:
        store.close()
        return EventStore.open(store_config)

    def requires(self, store: EventStore, capability: str) -> None:
        """Skip the test unless the backend declares `capability` (an optional one, see `Backend`)."""
        if not getattr(store.backend, capability):
            pytest.skip(f"the {store.backend.name} backend does not declare {capability}")
