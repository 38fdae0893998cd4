"""Projections read and changed straight on a store, with no server running: what
`photon projections` does when given `-db.backend`.

The set of projections is what `__config__` registers (the built-in `__streams__` besides); a
value is folded here, in this process, from the projection's last checkpoint (when it was made by
the same definition) through the events stored after it, so it is current. Changes are recorded
in `__config__` as the server records them; a server started on the store later runs them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from photon.core.errors import NotFound, ValidationError
from photon.core.events import CONFIG_STREAM
from photon.projections.definition import DefinitionError, ProjectionSpec, load

if TYPE_CHECKING:
    from photon.core.store import EventStore

log = logging.getLogger("photon.projections")

REGISTERED = "projection-registered"
DELETED = "projection-deleted"
STREAMS_PROJECTION = "__streams__"
CHECKPOINT_PREFIX = "projection:"


def checkpoint_key(name: str) -> str:
    return CHECKPOINT_PREFIX + name


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
    saved = store.read_checkpoint(checkpoint_key(spec.name))
    if isinstance(saved, dict) and saved.get("digest") == spec.digest:
        state = saved.get("state")
        position = int(saved.get("order-id", 0))
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
    elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
        return value[int(key)]
    raise NotFound(f"projection {name!r} has no key {key!r}")


def register(store: EventStore, spec: ProjectionSpec) -> None:
    """Record `spec` in `__config__` (replacing one of the same name), once it loads."""
    if spec.name == STREAMS_PROJECTION:
        raise DefinitionError(f"{STREAMS_PROJECTION!r} is built in and cannot be replaced", "projection-name")
    load(spec)  # refuse what would only fail: nothing is recorded
    store.append_internal(CONFIG_STREAM, REGISTERED, spec.to_payload())
    store.write_checkpoint(checkpoint_key(spec.name), None)


def unregister(store: EventStore, name: str) -> None:
    """Record the removal of projection `name` in `__config__`."""
    if name == STREAMS_PROJECTION:
        raise ValidationError(f"{STREAMS_PROJECTION!r} is built in and cannot be deleted", "projection-name")
    if name not in registered(store):
        raise NotFound(f"projection {name!r} does not exist")
    store.append_internal(CONFIG_STREAM, DELETED, {"projection-name": name})
    store.write_checkpoint(checkpoint_key(name), None)
