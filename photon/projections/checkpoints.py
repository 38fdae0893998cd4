"""Projection checkpoints: the one reader and writer of their format, and the server's writer.

A checkpoint is kept by the store (`write_checkpoint`) under ``projection:<name>``::

    {"digest": <the definition's digest>, "order-id": <the last order-id folded>,
     "last-event": <order-id>, "processed": <events folded>, "state": <the value>}

It is only resumed from by the definition that made it (same digest); any other folds from the
start. The state comes last, and is written as the server holds it (`StateJSON`: the JSON a
projection's worker reported), in parts after the rest (`Backend.write_checkpoint_parts`): a state
of an entry per stream (the built-in ``__streams__`` projection's, 148 MiB at 1M streams) is
never copied into a larger value, nor whole into one statement where the backend stores it in
parts (the SQL backends). The server writes checkpoints (`Checkpointer`), `photon projections` on a store directly
reads them (`photon.projections.offline`), and a (re)registration clears the projection's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from photon.core.store import EventStore
    from photon.projections.registry import Projection

log = logging.getLogger("photon.projections")

PREFIX = "projection:"
_STATE = b',"state":'
_HEAD = {"digest", "order-id", "last-event", "processed"}


def checkpoint_key(name: str) -> str:
    return PREFIX + name


@dataclass(frozen=True, slots=True)
class StateJSON:
    """A state as JSON already (a projection's `state_json`), to be written as it is."""

    json: bytes


@dataclass(frozen=True)
class Checkpoint:
    """A projection's state after order-id `order_id`."""

    digest: str
    order_id: int
    last_event: int = 0
    processed: int = 0
    state: Any = None
    """The value (read: decoded; to write: the value, or a `StateJSON` of its JSON)."""

    def to_value(self) -> dict[str, Any]:
        state = self.state
        return {
            "digest": self.digest,
            "order-id": self.order_id,
            "last-event": self.last_event,
            "processed": self.processed,
            "state": orjson.Fragment(state.json) if isinstance(state, StateJSON) else state,
        }

    def to_parts(self) -> list[bytes]:
        """The stored JSON in three parts, the state's JSON whole in the middle (not copied when
        it is a `StateJSON`): joined, the bytes `orjson.dumps(self.to_value())` gives."""
        state = self.state
        head = orjson.dumps({k: v for k, v in self.to_value().items() if k != "state"})
        return [head[:-1] + b',"state":', state.json if isinstance(state, StateJSON) else orjson.dumps(state), b"}"]

    @classmethod
    def from_json(cls, raw: bytes) -> Checkpoint | None:
        """A stored checkpoint with its state left as JSON (a `StateJSON`, not decoded): a server
        resuming hands the state to its worker as it is stored, and only the worker decodes it
        (decoding the 148 MiB of `__streams__` at 1M streams here and pickling it again for the
        worker took 18 s of the server's start). The layout `to_parts` writes is split without
        decoding the state; any other (a backend that reformats JSON) is decoded whole."""
        at = raw.find(_STATE)
        if at > 0 and raw.startswith(b'{"digest":') and raw.endswith(b"}"):
            # A '"' inside a JSON string is escaped: the first ',"state":' ends the head.
            try:
                head = orjson.loads(raw[:at] + b"}")
            except orjson.JSONDecodeError:
                head = None
            if isinstance(head, dict) and head.keys() == _HEAD:
                checkpoint = cls.from_value(head)
                if checkpoint is not None:
                    return replace(checkpoint, state=StateJSON(raw[at + len(_STATE) : -1]))
        checkpoint = cls.from_value(orjson.loads(raw))
        if checkpoint is None:
            return None
        return replace(checkpoint, state=StateJSON(orjson.dumps(checkpoint.state)))

    @classmethod
    def from_value(cls, value: Any) -> Checkpoint | None:
        if not isinstance(value, dict):
            return None
        return cls(
            str(value.get("digest")),
            int(value.get("order-id", 0)),
            int(value.get("last-event", 0)),
            int(value.get("processed", 0)),
            value.get("state"),
        )


def read_checkpoint(store: EventStore, name: str, digest: str | None = None) -> Checkpoint | None:
    """Projection `name`'s checkpoint; None when it has none or, given a `digest`, when another
    definition made it."""
    checkpoint = Checkpoint.from_value(store.read_checkpoint(checkpoint_key(name)))
    if checkpoint is None or (digest is not None and checkpoint.digest != digest):
        return None
    return checkpoint


def read_checkpoint_json(store: EventStore, name: str, digest: str | None = None) -> Checkpoint | None:
    """`read_checkpoint`, its state as the stored JSON (a `StateJSON`)."""
    raw = store.read_checkpoint_json(checkpoint_key(name))
    checkpoint = None if raw is None else Checkpoint.from_json(raw)
    if checkpoint is None or (digest is not None and checkpoint.digest != digest):
        return None
    return checkpoint


def write_checkpoint(store: EventStore, name: str, checkpoint: Checkpoint) -> None:
    store.write_checkpoint_parts(checkpoint_key(name), checkpoint.to_parts())


def clear_checkpoint(store: EventStore, name: str) -> None:
    """Forget projection `name`'s checkpoint (it is registered anew, or deleted)."""
    store.write_checkpoint(checkpoint_key(name), None)


@dataclass(frozen=True)
class Snapshot:
    """A projection's checkpoint as taken on the event loop, and the position it records."""

    projection: Projection
    checkpoint: Checkpoint


WRITE_SHARE = 10
"""A projection's next periodic checkpoint waits at least this many times as long as its last
took to write (see `Checkpointer.due`)."""


LARGE_STATE = 8 << 20
"""Bytes of JSON from which a state is large: its checkpoint takes long to write (the 148 MiB of
`__streams__` at 1M streams, about 9 s on SQLite), and a stop writes it only when that is worth
it (see `Checkpointer.at_stop`)."""


def _untimed_large(p: Projection) -> bool:
    """Whether a projection's state is large and this run has not timed a write of it yet."""
    return p.checkpoint_seconds == 0.0 and len(p.state_json) >= LARGE_STATE


class Checkpointer:
    """A running server's checkpoints: resumed from at start, written every so many events or
    seconds and at stop, one writer at a time, never one older than the last written."""

    def __init__(self, store: EventStore, every_events: int, every_seconds: float) -> None:
        self.store = store
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._writes = threading.Lock()

    def load(self, projection: Projection) -> Checkpoint | None:
        """A record's checkpoint (its state as JSON), when its definition made one; in a thread."""
        try:
            return read_checkpoint_json(self.store, projection.name, projection.spec.digest)
        except Exception:
            log.exception("could not read the checkpoint of projection %r", projection.name)
            return None  # folds from the start

    @staticmethod
    def apply(projection: Projection, saved: Checkpoint) -> None:
        """Set a record to its checkpoint (from `load`), on the event loop."""
        state = saved.state
        projection.state_json = state.json if isinstance(state, StateJSON) else orjson.dumps(state)
        projection.position = saved.order_id
        projection.last_event = saved.last_event
        projection.processed = saved.processed
        projection.checkpointed_position = projection.position
        projection.resumed_from = projection.position

    def due(self, projections: Iterable[Projection], now: float) -> list[Projection]:
        """The projections whose checkpoint is due: moved by `every_events` events or for
        `every_seconds`, and, since their last was written, ten times as long as that write took.

        The last rule bounds the time a projection spends being checkpointed to a tenth of its
        running time: a state of an entry per stream (the built-in ``__streams__`` at 1M streams:
        148 MiB, seconds to write) would otherwise be written again and again while it catches up
        (due every `every_events`), beside the fold. A small state's write takes milliseconds,
        so its checkpoints keep the configured pace.

        A large state (`LARGE_STATE`) whose write this run has not timed yet (resumed from its
        checkpoint) waits for `every_events` events, not `every_seconds`: its first write would
        otherwise come seconds after the first event past the checkpoint, at every start, and
        take seconds (the 148 MiB of `__streams__` at 1M streams) for a few events. It is then as
        far behind as `every_events` allows, as at a stop (`at_stop`)."""
        return [
            p
            for p in projections
            if p.position > p.checkpointed_position
            and (
                p.position - p.checkpointed_position >= self.every_events
                or (now - p.checkpointed_at >= self.every_seconds and not _untimed_large(p))
            )
            and now - p.checkpointed_at >= WRITE_SHARE * p.checkpoint_seconds
        ]

    async def run(
        self, projections: Callable[[], Iterable[Projection]], is_current: Callable[[Projection], bool]
    ) -> None:
        """Write the checkpoints that are due, until cancelled."""
        while True:
            await asyncio.sleep(min(1.0, self.every_seconds))
            due = self.due(projections(), time.monotonic())
            if due:
                await asyncio.to_thread(self.write, self.snapshots(due), is_current)

    def at_stop(self, projections: Iterable[Projection]) -> list[Projection]:
        """The projections whose checkpoint a stop writes: every one, but a large state's
        (`LARGE_STATE`) only when it folded events since its last checkpoint and moved by
        `every_events` order-ids or more since.

        The checkpoint a stop leaves in place is exact: its state is the one at its position, and
        the next start folds the events after it, once each, as after any periodic checkpoint
        (which leaves up to `every_events` events, and a large state's many more, to fold again).
        When the projection folded nothing since (`last_event` not past it), the state is the
        checkpoint's and the events between were not its own. Writing the state instead took
        seconds of each stop (9 s for `__streams__` at 1M streams on SQLite), for what the next
        start folds in milliseconds."""
        return [
            p
            for p in projections
            if len(p.state_json) < LARGE_STATE
            or p.checkpointed_position < 0
            or (p.last_event > p.checkpointed_position and p.position - p.checkpointed_position >= self.every_events)
        ]

    def snapshots(self, projections: Iterable[Projection]) -> list[Snapshot]:
        """What to checkpoint, taken on the event loop, where the fold reports land: a thread
        reading a projection while a report moves it could pair a position with a state of
        another position (then events are folded twice or never after a restart)."""
        return [
            Snapshot(
                p,
                Checkpoint(p.spec.digest, p.position, p.last_event, p.processed, StateJSON(p.state_json)),
            )
            for p in projections
            if p.status.on_worker  # a failed projection keeps its last good checkpoint
        ]

    def write(self, snapshots: list[Snapshot], is_current: Callable[[Projection], bool]) -> None:
        """Write checkpoints (in a thread), one writer at a time and never one older than the
        last written: a periodic write still under way when the manager stops must not land
        after the final one and leave the store with the older position."""
        with self._writes:
            for snapshot in snapshots:
                p, position = snapshot.projection, snapshot.checkpoint.order_id
                if position <= p.checkpointed_position or not is_current(p):
                    continue  # written already, or the projection was removed or replaced since
                started = time.monotonic()
                try:
                    write_checkpoint(self.store, p.name, snapshot.checkpoint)
                except Exception:
                    log.exception("could not checkpoint projection %r", p.name)
                    continue
                p.checkpointed_position = position
                p.checkpointed_at = time.monotonic()
                p.checkpoint_seconds = p.checkpointed_at - started

    def clear(self, name: str) -> None:
        with self._writes:  # after any periodic write of the projection it replaces
            clear_checkpoint(self.store, name)
