"""Durable consumers: a name whose position (the last acknowledged order-id) the store keeps.

A consumer follows one stream (fixed at its creation); acknowledging moves its position forward
only; a new connection under the same name starts right after it. Positions are checkpoints of
the store (key ``consumer:<name>``, value ``{"stream": s, "order-id": n}``), and the sorted list
of names is the checkpoint ``consumers``. Every front end (the HTTP subscription routes, ...)
goes through `ConsumerPositions`, so the rules live here once.

The methods block (they read and write checkpoints): call them from a worker thread in
asynchronous code.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from photon.core.errors import Conflict, NotFound, ValidationError
from photon.core.events import ALL_STREAM, DOT_SEGMENTS, check_no_lone_star
from photon.core.filtered_reads import check_filter_applies
from photon.core.filters import EventFilter

if TYPE_CHECKING:
    from photon.core.store import EventStore

CONSUMER_PREFIX: Final = "consumer:"
"""Checkpoint key prefix of a consumer's position."""
CONSUMER_NAMES: Final = "consumers"
"""Checkpoint key of the sorted list of durable consumers' names (what `list` returns).

Consumers created before the list existed are not in it until they are created again."""
MAX_CONSUMER_NAME: Final = 200


@dataclass(frozen=True, slots=True)
class ConsumerPosition:
    """A consumer's stream and the order-id of the last event it acknowledged (0: none yet)."""

    name: str
    stream: str
    acked: int

    def to_json(self) -> dict[str, Any]:
        return {"consumer": self.name, "stream": self.stream, "acked": self.acked}


def check_consumer_name(name: str) -> str:
    """A consumer name: 1 to 200 printable characters."""
    if not name or len(name) > MAX_CONSUMER_NAME or not name.isprintable():
        raise ValidationError(f"a consumer name is 1 to {MAX_CONSUMER_NAME} printable characters", "name")
    if name in DOT_SEGMENTS:
        raise ValidationError(f"a consumer name must not be {name!r}: URLs resolve it as a path segment", "name")
    return name


class ConsumerPositions:
    """The durable consumers of one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()  # one change at a time: read, decide, write

    def get(self, name: str) -> ConsumerPosition | None:
        value = self.store.read_checkpoint(CONSUMER_PREFIX + name)
        if not isinstance(value, dict):
            return None
        return ConsumerPosition(name, str(value.get("stream", ALL_STREAM)), int(value.get("order-id", 0)))

    def require(self, name: str) -> ConsumerPosition:
        found = self.get(name)
        if found is None:
            raise NotFound(f"no consumer named {name!r}")
        return found

    def open(self, name: str, stream: str | None, event_filter: EventFilter | None = None) -> ConsumerPosition:
        """The consumer's position, creating it (on `stream`, default `__all__`) when it is new.

        `Conflict` when it exists and follows another stream than `stream` (None: any). A new
        consumer is not recorded when its first connection's `event_filter` cannot apply to its
        stream (`ValidationError`).
        """
        check_consumer_name(name)
        with self._lock:
            position = self.get(name)
            if position is None:
                check_no_lone_star(stream or ALL_STREAM)
                check_filter_applies(stream or ALL_STREAM, event_filter)
                position = ConsumerPosition(name, stream or ALL_STREAM, 0)
                self._write(position)
                self._set_listed(name, True)
            elif stream is not None and stream != position.stream:
                raise Conflict(
                    f"consumer {name!r} follows stream {position.stream!r}, not {stream!r} "
                    "(delete the consumer to start over)"
                )
        return position

    def ack(self, name: str, order_id: int) -> ConsumerPosition:
        """Acknowledge events up to `order_id` (positions only move forward)."""
        last = self.store.last_order_id()
        if order_id > last:
            raise Conflict(f"order-id {order_id} is past the newest stored event ({last})")
        with self._lock:
            position = self.require(name)
            if order_id > position.acked:
                position = ConsumerPosition(name, position.stream, order_id)
                self._write(position)
        return position

    def delete(self, name: str) -> None:
        with self._lock:
            self.require(name)
            self.store.write_checkpoint(CONSUMER_PREFIX + name, None)
            self._set_listed(name, False)

    def list(self) -> list[ConsumerPosition]:
        """Every listed consumer's position, in name order."""
        value = self.store.read_checkpoint(CONSUMER_NAMES)
        found = []
        for name in value if isinstance(value, list) else []:
            position = self.get(name)
            if position is not None:
                found.append(position)
        return found

    def _write(self, position: ConsumerPosition) -> None:
        self.store.write_checkpoint(
            CONSUMER_PREFIX + position.name, {"stream": position.stream, "order-id": position.acked}
        )

    def _set_listed(self, name: str, listed: bool) -> None:
        value = self.store.read_checkpoint(CONSUMER_NAMES)
        names = set(value) if isinstance(value, list) else set()
        if (name in names) != listed:
            names.symmetric_difference_update({name})
            self.store.write_checkpoint(CONSUMER_NAMES, sorted(names))


_BY_STORE: weakref.WeakKeyDictionary[EventStore, ConsumerPositions] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def consumer_positions(store: EventStore) -> ConsumerPositions:
    """The store's durable consumers (one `ConsumerPositions` per store, so one lock)."""
    with _BY_STORE_LOCK:
        found = _BY_STORE.get(store)
        if found is None:
            found = _BY_STORE[store] = ConsumerPositions(store)
        return found
