"""The store's consumer groups: their definitions in `__config__`, their run-times, one entry point.

Every front end (HTTP, CLI, clients, AMQP) goes through `GroupManager`; the rules of groups
live here and in `engine`. At start the manager folds `__config__` (`group-created`,
`group-updated`, `group-deleted`) into the set of groups and starts each from its stored state.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from photon.core.errors import Conflict, NotFound, ReadOnlyStore, StoreClosed, ValidationError
from photon.core.events import CONFIG_STREAM
from photon.core.limits import MAX_INT64
from photon.groups.definition import MAX_IN_FLIGHT_LIMIT, GroupSpec, check_group_name, parse_spec, with_start
from photon.groups.engine import AckResult, Group, Member, NackAction
from photon.groups.state import GroupState, state_key

if TYPE_CHECKING:
    from photon.core.store import EventStore

CREATED = "group-created"
UPDATED = "group-updated"
DELETED = "group-deleted"
MAX_MEMBER_ID = 200


def defined_groups(store: EventStore) -> dict[str, tuple[GroupSpec, int]]:
    """The groups `__config__` defines now, with the order-id of each one's `group-created` event."""
    groups: dict[str, tuple[GroupSpec, int]] = {}
    for event in store.read(CONFIG_STREAM):
        if event.event_type not in (CREATED, UPDATED, DELETED):
            continue
        payload = event.to_dict()["payload"]
        name = payload.get("group-name")
        if event.event_type == DELETED:
            groups.pop(name, None)
        elif event.event_type == CREATED:
            groups[name] = (GroupSpec.from_payload(payload), event.order_id)
        elif name in groups:
            groups[name] = (GroupSpec.from_payload(payload), groups[name][1])
    return groups


class GroupManager:
    """Create, change, delete and list groups; members join through `join`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._groups: dict[str, Group] = {}
        self._lock = threading.RLock()
        self._started = False
        self._closed = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            if self.store.read_only:
                raise ReadOnlyStore("consumer groups run only in the store's writing process")
            self._started = True
            for name, (spec, incarnation) in defined_groups(self.store).items():
                group = Group(self.store, spec, incarnation)
                self._groups[name] = group
                group.start()

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            groups = list(self._groups.values())
            self._groups.clear()
        for group in groups:
            group.stop()

    def _group(self, name: str) -> Group:
        self.start()
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            group = self._groups.get(name)
        if group is None:
            raise NotFound(f"no consumer group named {name!r}")
        return group

    # -- definitions ------------------------------------------------------------------------------

    def create(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        spec = parse_spec(definition)
        self.start()
        with self._lock:
            if spec.name in self._groups:
                raise Conflict(f"consumer group {spec.name!r} already exists (update or delete it)")
            if definition.get("start") == "end":
                spec = with_start(spec, self.store.last_order_id() + 1)
            # A group of this name deleted earlier may have left a state behind: start afresh.
            self.store.write_checkpoint(state_key(spec.name), None)
            created = self.store.append_internal(CONFIG_STREAM, CREATED, spec.to_payload())
            group = Group(self.store, spec, created.order_id)
            self._groups[spec.name] = group
            return group.start()

    def update(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change a group's settings; its position stays. A new source or strategy restarts it
        (its members are disconnected and reconnect)."""
        if not isinstance(changes, Mapping):
            raise ValidationError("a group update is a JSON object")
        for key in ("group-name", "start"):
            if key in changes and not (key == "group-name" and changes[key] == name):
                raise ValidationError(f"{key} cannot be changed (use reset to move the position)", key)
        group = self._group(name)
        spec = group.spec.updated({k: v for k, v in changes.items() if k != "group-name"})
        with self._lock:
            self.store.append_internal(CONFIG_STREAM, UPDATED, spec.to_payload())
            if (spec.stream, spec.filter, spec.strategy) == (group.spec.stream, group.spec.filter, group.spec.strategy):
                with group.lock:
                    group.spec = spec
                    touched = group.dispatch()
                for member in touched:
                    member.wake()
                return group.describe()
            return self._restart(group, spec)

    def _restart(self, group: Group, spec: GroupSpec, state: GroupState | None = None) -> dict[str, Any]:
        """Stop `group`, write `state` if given, start a fresh run-time from the stored state;
        returns the fresh one's description as it starts (exactly the state it starts from)."""
        group.stop()
        if state is not None:
            self.store.write_checkpoint(state_key(spec.name), state.to_json())
        fresh = Group(self.store, spec, group.incarnation)
        self._groups[spec.name] = fresh
        return fresh.start()

    def delete(self, name: str) -> None:
        """Delete a group and its position (its parked stream stays readable)."""
        group = self._group(name)
        with self._lock:
            group.stop()
            self._groups.pop(name, None)
            self.store.append_internal(CONFIG_STREAM, DELETED, {"group-name": name})
            self.store.write_checkpoint(state_key(name), None)

    def reset(self, name: str, from_order_id: int) -> dict[str, Any]:
        """Start the group over from an order-id (eda's reset): acks above it are forgotten.

        Members are disconnected and reconnect; parked events being replayed are dropped from the
        group (they stay in the parked stream).
        """
        if type(from_order_id) is not int or not 1 <= from_order_id <= MAX_INT64:
            raise ValidationError(f"from must be an order-id (1 to {MAX_INT64}), got {from_order_id!r}", "from")
        group = self._group(name)
        with self._lock:
            state = GroupState(
                checkpoint=from_order_id - 1, parked_replayed=group.parked_replayed, generation=group.generation + 1
            )
            return self._restart(group, group.spec, state)

    def replay_parked(self, name: str) -> int:
        return self._group(name).replay_parked()

    def list(self) -> list[dict[str, Any]]:
        self.start()
        with self._lock:
            groups = sorted(self._groups.values(), key=lambda g: g.spec.name)
        return [group.describe() for group in groups]

    def describe(self, name: str) -> dict[str, Any]:
        return self._group(name).describe()

    # -- members ----------------------------------------------------------------------------------

    def join(
        self, name: str, member_id: str | None = None, max_in_flight: int | None = None, limit: int | None = None
    ) -> Member:
        """A member of group `name`; `max_in_flight` lowers the group's limit for this member alone
        (a consumer's prefetch: 1 takes one event at a time); `limit` ends its deliveries after that
        many (a fetch: it is given no event it will not take, so none is spent by its leaving)."""
        if member_id is None:
            member_id = uuid.uuid4().hex[:12]
        elif not isinstance(member_id, str) or not 0 < len(member_id) <= MAX_MEMBER_ID or not member_id.isprintable():
            raise ValidationError(f"a member id is 1 to {MAX_MEMBER_ID} printable characters", "member")
        if max_in_flight is not None and (
            type(max_in_flight) is not int or not 1 <= max_in_flight <= MAX_IN_FLIGHT_LIMIT
        ):
            raise ValidationError(
                f"a member's max-in-flight is a whole number from 1 to {MAX_IN_FLIGHT_LIMIT}, got {max_in_flight!r}",
                "max-in-flight",
            )
        if limit is not None and (type(limit) is not int or not 1 <= limit <= MAX_INT64):
            raise ValidationError(f"a member's limit is a whole number of at least 1, got {limit!r}", "limit")
        return self._group(check_group_name(name)).join(member_id, max_in_flight, limit)

    def ack(self, name: str, order_ids: Iterable[int]) -> AckResult:
        return self._group(name).ack(order_ids)

    def nack(self, name: str, order_ids: Iterable[int], action: NackAction = "retry", reason: str = "") -> AckResult:
        return self._group(name).nack(order_ids, action, reason)
