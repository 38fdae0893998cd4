"""A commit whose outcome is unknown (the connection died around it): the writer finds out what
is stored before it writes again, publishes it to subscribers in order, and numbers on after it.

The backend here is the in-memory one with its failures scripted, so that each case is exact;
tests/kill_trials.py does the same against real servers killed with SIGKILL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from backends.memory import MemoryBackend
from photon.core.errors import BackendUnavailable, StoreLost
from photon.core.events import RecordedEvent
from photon.core.store import EventStore
from photon.core.subscriptions import CaughtUp


class FlakyBackend(MemoryBackend):
    """Stores, then reports a lost connection (`lose_reply`); or cannot be reached at all (`down`)."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__({})
        self.lose_reply = 0
        self.down = False

    def append(self, events: Sequence[RecordedEvent]) -> None:
        if self.down:
            raise BackendUnavailable("flaky: cannot reach the server")
        super().append(events)
        if self.lose_reply:
            self.lose_reply -= 1
            self.down = True
            raise BackendUnavailable("flaky: connection lost before the reply")

    def last_order_id(self) -> int:
        if self.down:
            raise BackendUnavailable("flaky: cannot reach the server")
        return super().last_order_id()


def _event(stream: str = "s", **extra: Any) -> dict[str, Any]:
    return {"stream-name": stream, "event-type": "T", "payload": {}, **extra}


def _live(subscription: Any) -> list[int]:
    found = []
    while (item := subscription.get(0.2)) is not None:
        if not isinstance(item, CaughtUp):
            found.append(item.order_id)
    return found


def test_a_commit_stored_while_the_store_could_not_be_asked_is_published_before_the_next_write() -> None:
    backend = FlakyBackend()
    with EventStore(backend) as store:
        store.append(_event())
        subscription = store.subscribe()
        backend.lose_reply = 1
        with pytest.raises(BackendUnavailable, match="connection lost"):
            store.append([_event(), _event()])
        # The server is still down: nothing is written and nothing numbered.
        with pytest.raises(BackendUnavailable, match="outcome of an earlier commit is not known"):
            store.append(_event())
        backend.down = False
        (after,) = store.append(_event())
        assert after.order_id == 4 and after.stream_version == 4
        assert _live(subscription) == [1, 2, 3, 4]
        assert store.last_order_id() == 4
        assert [e.order_id for e in store.read()] == [1, 2, 3, 4]


def test_a_commit_found_stored_at_once_is_acknowledged() -> None:
    backend = FlakyBackend()
    with EventStore(backend) as store:
        subscription = store.subscribe()
        backend.lose_reply = 1
        original = backend.last_order_id

        def last_order_id() -> int:  # the server is back by the time the writer asks
            backend.down = False
            return original()

        backend.last_order_id = last_order_id  # type: ignore[method-assign]
        stored = store.append([_event(id="a"), _event(id="b")])
        assert [e.order_id for e in stored] == [1, 2]
        assert _live(subscription) == [1, 2]
        (next_one,) = store.append(_event())
        assert next_one.order_id == 3


def test_a_store_that_lost_acknowledged_events_stops_the_writer() -> None:
    backend = FlakyBackend()
    with EventStore(backend) as store:
        store.append([_event(), _event(), _event()])
        backend.lose_reply = 1
        with pytest.raises(BackendUnavailable):
            store.append(_event())
        # The server comes back empty.
        with backend._lock:
            backend._all.clear()
            backend._streams.clear()
            backend._ids.clear()
            backend._high_water = 0
        backend.down = False
        with pytest.raises(StoreLost, match=r"ends at order-id 0, but this writer had acknowledged events up to 3"):
            store.append(_event())
        with pytest.raises(StoreLost):
            store.append(_event())
        with pytest.raises(StoreLost):
            store.delete_stream("s")
