"""Live events: the writer hands every committed group to the listeners of a store, in order.

A `Listener` is one subscriber's bounded queue of live events (at most `limit` events and
`limit_bytes` of event data); one that overflows is dropped from the `Broadcaster` and told so
(`overflowed`), so a slow subscriber never holds the writer back nor grows without bound
(`photon.core.subscriptions` then reads its history from the store again).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from operator import attrgetter

from photon.core.events import RecordedEvent

_DATA = attrgetter("data")


class Listener:
    """A subscriber's bounded queue of live events, filled by the broadcaster's thread."""

    __slots__ = (
        "_wake",
        "check",
        "closed",
        "event_types",
        "limit",
        "limit_bytes",
        "overflowed",
        "queue",
        "queued_bytes",
        "stream",
    )

    def __init__(
        self,
        stream: str | None,
        event_types: frozenset[str] | None,
        limit: int,
        check: Callable[[RecordedEvent], bool] | None = None,
        limit_bytes: int = 1 << 62,
    ) -> None:
        self.stream = stream
        self.event_types = event_types
        self.check = check
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.queued_bytes = 0
        """Bytes of event data in `queue` (kept by the broadcaster's thread and the reader's)."""
        self.queue: deque[RecordedEvent] = deque()
        self.overflowed = False
        self.closed = False
        self._wake: list[Callable[[], None]] = []

    def add_waker(self, wake: Callable[[], None]) -> None:
        self._wake.append(wake)

    def remove_waker(self, wake: Callable[[], None]) -> None:
        if wake in self._wake:
            self._wake.remove(wake)

    def push(self, events: Sequence[RecordedEvent]) -> bool:
        """Queue the events this listener wants; False when it overflowed and must be dropped."""
        types = self.event_types
        check = self.check
        if check is not None:
            wanted: Sequence[RecordedEvent] = [
                e for e in events if (types is None or e.event_type in types) and check(e)
            ]
        elif types is None:
            wanted = events
        else:
            wanted = [e for e in events if e.event_type in types]
        self.queue.extend(wanted)
        self.queued_bytes += sum(map(len, map(_DATA, wanted)))  # in C: no generator at each push
        if len(self.queue) > self.limit or self.queued_bytes > self.limit_bytes:
            self.queue.clear()
            self.queued_bytes = 0
            self.overflowed = True
        for wake in self._wake:
            wake()
        return not self.overflowed

    def wake(self) -> None:
        for wake in self._wake:
            wake()


class Broadcaster:
    """Hands every committed group of events to the registered listeners, in order."""

    def __init__(self, head: int) -> None:
        self._lock = threading.Lock()
        self.head = head
        self._all: set[Listener] = set()
        self._by_stream: dict[str, set[Listener]] = {}

    def register(self, listener: Listener) -> int:
        """Add a listener; returns the last order-id published before it (the hand-over point)."""
        with self._lock:
            if listener.stream is None:
                self._all.add(listener)
            else:
                self._by_stream.setdefault(listener.stream, set()).add(listener)
            return self.head

    def unregister(self, listener: Listener) -> None:
        with self._lock:
            self._discard(listener)

    def _discard(self, listener: Listener) -> None:
        if listener.stream is None:
            self._all.discard(listener)
        else:
            group = self._by_stream.get(listener.stream)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._by_stream[listener.stream]

    def publish(self, events: Sequence[RecordedEvent]) -> None:
        """Called by the committer, in commit order, after the events are durable."""
        if not events:
            return
        with self._lock:
            self.head = events[-1].order_id
            dropped = [listener for listener in self._all if not listener.push(events)]
            if self._by_stream:
                per_stream: dict[str, list[RecordedEvent]] = {}
                for event in events:
                    if event.stream_name in self._by_stream:
                        per_stream.setdefault(event.stream_name, []).append(event)
                for stream, stream_events in per_stream.items():
                    dropped.extend(listener for listener in self._by_stream[stream] if not listener.push(stream_events))
            for listener in dropped:
                self._discard(listener)

    def stats(self) -> tuple[int, int]:
        """The number of listeners, and the events queued in their buffers."""
        with self._lock:
            listeners = [*self._all, *(listener for group in self._by_stream.values() for listener in group)]
        return len(listeners), sum(len(listener.queue) for listener in listeners)

    def close(self) -> None:
        """Wake every listener so that blocked subscribers notice the store closing."""
        with self._lock:
            listeners = list(self._all) + [item for group in self._by_stream.values() for item in group]
            self._all.clear()
            self._by_stream.clear()
        for listener in listeners:
            listener.closed = True
            listener.wake()
