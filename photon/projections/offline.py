"""Projections read and changed straight on a store, with no server running: what
`photon projections` does when given `-db.backend`.

The set of projections is what `__config__` registers (the built-in `__streams__` besides); a
value is folded here, in this process, from the projection's last checkpoint (when it was made by
the same definition) through the events stored after it, so it is current. Changes are recorded
in `__config__` as the server records them; a server started on the store later runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from photon.core.errors import NotFound, ValidationError
from photon.projections.checkpoints import clear_checkpoint, read_checkpoint
from photon.projections.definition import DefinitionError, ProjectionSpec, load
from photon.projections.redactions import recorded, stale
from photon.projections.registry import (
    STREAMS_PROJECTION,
    record_deletion,
    record_registration,
    registered,
)

if TYPE_CHECKING:
    from photon.core.store import EventStore


@dataclass
class Folded:
    """A projection's value folded here."""

    name: str
    stream_name: str
    value: Any
    position: int
    """The last order-id folded (from the checkpoint, then from the store)."""
    resumed_from: int
    """The checkpoint's order-id the fold went on from (0: from the start)."""
    error: str | None = None
    """Why the definition does not load or the reduction raised (then `value` is the last good one)."""


def fold(store: EventStore, spec: ProjectionSpec) -> Folded:
    """The projection's current value, from its checkpoint on."""
    try:
        definition = load(spec)
    except DefinitionError as exc:
        return Folded(spec.name, "", None, 0, 0, error=str(exc))
    # A fresh copy of the initial value: a reduction may change its state in place.
    state = orjson.loads(orjson.dumps(definition.initial_value))
    position = 0
    saved = read_checkpoint(store, spec.name, spec.digest)
    if saved is not None and stale(
        recorded(store), spec.name, definition.stream_name, definition.event_types, saved.order_id
    ):
        saved = None  # events it folded were redacted since: fold from the start
    if saved is not None:
        state = saved.state
        position = saved.order_id
    resumed_from = position
    types = tuple(definition.event_types) if definition.event_types is not None else None
    reduction = definition.reduction
    for event in store.read(definition.stream_name, from_order_id=position + 1, event_types=types):
        try:
            state = reduction(state, event.to_dict())
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc} (at the event with order-id {event.order_id})"
            return Folded(spec.name, definition.stream_name, state, position, resumed_from, error=error)
        position = event.order_id
    return Folded(spec.name, definition.stream_name, state, position, resumed_from)


def key_of(name: str, value: Any, key: str) -> Any:
    """One key of projection `name`'s value (an index for an array); `NotFound` when it has none."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
    elif isinstance(value, list):
        digits = key.removeprefix("-")
        # ASCII digits only, as every integer of a request (str.isdigit() is true of '²' and other digits).
        if digits.isascii() and digits.isdigit() and -len(value) <= int(key) < len(value):
            return value[int(key)]
    raise NotFound(f"projection {name!r} has no key {key!r}")


def register(store: EventStore, spec: ProjectionSpec) -> None:
    """Record `spec` in `__config__` (replacing one of the same name), once it loads.

    It is recorded as a server records a projection posted to it (origin `api`), whatever file
    its source was read from: a projection of the folder's (origin `file`) whose file is not in
    the server's `projections.path` is removed at the server's next start."""
    if spec.name == STREAMS_PROJECTION:
        raise DefinitionError(f"{STREAMS_PROJECTION!r} is built in and cannot be replaced", "projection-name")
    load(spec)  # refuse what would only fail: nothing is recorded
    record_registration(store, replace(spec, origin="api", path=None))
    clear_checkpoint(store, spec.name)


def unregister(store: EventStore, name: str) -> None:
    """Record the removal of projection `name` in `__config__`."""
    if name == STREAMS_PROJECTION:
        raise ValidationError(f"{STREAMS_PROJECTION!r} is built in and cannot be deleted", "projection-name")
    if name not in registered(store):
        raise NotFound(f"projection {name!r} does not exist")
    record_deletion(store, name)
    clear_checkpoint(store, name)
