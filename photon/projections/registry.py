"""Which projections exist: their record in `__config__`, and the set a running server holds.

The set of projections is kept in `__config__`: every registration (`projection-registered`,
with the definition and its source) and deletion (`projection-deleted`) is an event there, and
a server's start rebuilds the set by reading it, so a store restored from a backup of `__all__`
brings its projections back. The built-in `__streams__` is in every set. `Registry` is the
running set: a `Projection` record per name, each with the slot its worker knows it by.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from photon.core.errors import NotFound, ValidationError
from photon.core.events import ALL_STREAM, CONFIG_STREAM
from photon.projections.definition import ProjectionSpec

if TYPE_CHECKING:
    from photon.core.store import EventStore
    from photon.projections.pool import WorkerHandle

log = logging.getLogger("photon.projections")

REGISTERED = "projection-registered"
DELETED = "projection-deleted"
STREAMS_PROJECTION = "__streams__"


def builtin_streams_spec() -> ProjectionSpec:
    source = resources.files("photon.projections").joinpath("builtin_streams.py").read_text(encoding="utf-8")
    return ProjectionSpec(STREAMS_PROJECTION, "python", source, "builtin")


def registered(store: EventStore) -> dict[str, ProjectionSpec]:
    """The projections `__config__` holds now (last registration wins; deletions remove)."""
    specs: dict[str, ProjectionSpec] = {}
    for event in store.read(CONFIG_STREAM, event_types=(REGISTERED, DELETED)):
        payload = event.payload
        name = payload.get("projection-name")
        if event.event_type == DELETED:
            specs.pop(name, None)
            continue
        try:
            specs[name] = ProjectionSpec.from_payload(payload)
        except ValidationError:
            log.warning("ignoring an unreadable projection registration at order-id %d", event.order_id)
    return specs


def projections(store: EventStore) -> dict[str, ProjectionSpec]:
    """Every projection a server on this store runs, by name: `__streams__` and the registered."""
    return {STREAMS_PROJECTION: builtin_streams_spec(), **registered(store)}


def record_registration(store: EventStore, spec: ProjectionSpec) -> None:
    """Record `spec` in `__config__`: it replaces any projection of the same name."""
    store.append_internal(CONFIG_STREAM, REGISTERED, spec.to_payload())


def record_deletion(store: EventStore, name: str) -> None:
    store.append_internal(CONFIG_STREAM, DELETED, {"projection-name": name})


class Status(StrEnum):
    """Where a projection is in its life: one value, which the API shows as `shown`.

    A projection resumed at start is `LOADING` while its checkpoint is read (its value is not
    known yet: reading it answers 503), then `RESUMING` while its worker decodes the checkpoint's
    state (its value, the checkpoint's, can be read; still shown as ``loading``), then `RUNNING`
    once its worker has taken it (the worker's `Added`). One registered while the server runs
    starts `RUNNING`. `FAILED` and `STOPPED` are final.
    """

    LOADING = "loading"
    RESUMING = "resuming"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def shown(self) -> str:
        """The status the API, the console and the metrics show: `RESUMING` is ``loading`` too."""
        return "loading" if self is Status.RESUMING else self.value

    @property
    def on_worker(self) -> bool:
        """Whether its worker has it, or is taking it: it is fed events and moves with its worker."""
        return self is Status.RESUMING or self is Status.RUNNING

    @property
    def live(self) -> bool:
        """Whether it is neither failed nor stopped (it stops with the server)."""
        return self is Status.LOADING or self.on_worker


@dataclass
class Projection:
    """A running server's record of one projection: where it is, its state, its worker."""

    spec: ProjectionSpec
    slot: int
    stream_name: str = ALL_STREAM
    event_types: frozenset[str] | None = None
    initial_value: Any = None
    status: Status = Status.RUNNING
    last_error: str | None = None
    failed_at: int | None = None
    state_json: bytes = b"null"
    position: int = 0
    last_event: int = 0
    processed: int = 0
    fold_ns: int = 0
    folded: int = 0
    worker: WorkerHandle | None = None
    started_at: float = field(default_factory=time.monotonic)
    started_epoch_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    catch_up_target: int = 0
    catch_up_ms: float | None = None
    checkpointed_position: int = -1
    checkpointed_at: float = field(default_factory=time.monotonic)
    checkpoint_seconds: float = 0.0
    """How long its last checkpoint took to write (`Checkpointer.due` spaces the next by it)."""
    resumed_from: int = 0
    followers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.spec.name

    def descriptor(self, *, with_value: bool = True) -> dict[str, Any]:
        avg_us = (self.fold_ns / self.folded / 1000) if self.folded else None
        out: dict[str, Any] = {
            "projection-name": self.name,
            "stream-name": self.stream_name,
            "language": self.spec.language,
            "event-types": sorted(self.event_types) if self.event_types is not None else None,
            "origin": self.spec.origin,
            "path": self.spec.path,
            "status": self.status.shown,
            "processed": self.processed,
            "last-event": self.last_event,
            "position": self.position,
            "last-error": self.last_error,
            "failed-at": self.failed_at,
            "init-time": self.started_epoch_ms,
            "catch-up-ms": self.catch_up_ms,
            "resumed-from": self.resumed_from,
            "avg-time": avg_us,
            "initial-value": self.initial_value,
        }
        if with_value:
            out["reduction"] = self.spec.source
            out["current-value"] = orjson.loads(self.state_json)
        return out


class Registry:
    """The projections a running server holds, by name and by the slot their worker knows them by."""

    def __init__(self) -> None:
        self.projections: dict[str, Projection] = {}
        self.by_slot: dict[int, Projection] = {}
        self._last_slot = 0

    def add(self, spec: ProjectionSpec) -> Projection:
        """A new record (replacing any of the same name), with a slot no other record had."""
        self._last_slot += 1
        projection = Projection(spec=spec, slot=self._last_slot)
        self.projections[spec.name] = projection
        self.by_slot[projection.slot] = projection
        return projection

    def remove(self, name: str) -> Projection | None:
        projection = self.projections.pop(name, None)
        if projection is not None:
            self.by_slot.pop(projection.slot, None)
        return projection

    def get(self, name: str) -> Projection:
        projection = self.projections.get(name)
        if projection is None:
            raise NotFound(f"projection {name!r} does not exist")
        return projection

    def is_current(self, projection: Projection) -> bool:
        """Whether the record is still the one of its name (not removed, nor replaced since)."""
        return self.projections.get(projection.name) is projection

    def names(self) -> builtins.list[str]:
        return sorted(self.projections)

    def in_order(self) -> builtins.list[Projection]:
        """Every record, by name."""
        return [self.projections[name] for name in sorted(self.projections)]

    def on_worker(self, slots: set[int]) -> builtins.list[Projection]:
        """The records of these slots (a worker's), in slot order."""
        return [self.by_slot[slot] for slot in sorted(slots) if slot in self.by_slot]
