"""How the service reads the consumer group requests of Photon's AMQP protocol (docs/amqp.md).

The message types are in `photon.wire.amqp_groups`, which the Python client shares. Only the
shape of a body is checked here; what a group name, an order-id or a nack action may be is decided
by the core (`photon.groups`), whose errors go back as replies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from photon.core.errors import ValidationError
from photon.server.amqp.protocol import parse_body
from photon.wire.amqp_groups import (
    GROUP_ACK,
    GROUP_CREATE,
    GROUP_DELETE,
    GROUP_DESCRIBE,
    GROUP_JOIN,
    GROUP_LIST,
    GROUP_NACK,
    GROUP_REPLAY_PARKED,
    GROUP_RESET,
    GROUP_UPDATE,
)


@dataclass(frozen=True)
class JoinRequest:
    group: str
    member: str | None
    max_in_flight: Any
    """As sent (the core checks it); None: the group's."""
    limit: Any = None
    """Deliveries the member takes in all, as sent (the core checks it); None: no end."""


def _object(body: bytes, kind: str, allowed: set[str]) -> dict[str, Any]:
    value = parse_body(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise ValidationError(f"a {kind} request is a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r} in a {kind} request", unknown[0])
    return value


def _group_name(value: Mapping[str, Any], kind: str) -> str:
    name = value.get("group-name")
    if not isinstance(name, str) or not name:
        raise ValidationError(f"a {kind} request needs a group-name (a non-empty string)", "group-name")
    return name


def parse_join(body: bytes) -> JoinRequest:
    """``{"group-name": g, "member": id, "max-in-flight": n, "limit": n}`` (`member` optional: a new
    id is chosen; `max-in-flight` optional: the group's; `limit` optional: no end)."""
    value = _object(body, GROUP_JOIN, {"group-name", "member", "max-in-flight", "limit"})
    member = value.get("member")
    if member is not None and not isinstance(member, str):
        raise ValidationError("field 'member' must be a string", "member")
    return JoinRequest(_group_name(value, GROUP_JOIN), member, value.get("max-in-flight"), value.get("limit"))


@dataclass(frozen=True)
class GroupCall:
    """A request answered once: which group (None for a list), and the body's other fields."""

    kind: str
    group: str | None
    fields: dict[str, Any]


_CALL_FIELDS: Final[dict[str, set[str]]] = {
    GROUP_ACK: {"order-ids", "order-id"},
    GROUP_NACK: {"order-ids", "order-id", "action", "reason"},
    GROUP_LIST: set(),
    GROUP_DESCRIBE: set(),
    GROUP_DELETE: set(),
    GROUP_RESET: {"from"},
    GROUP_REPLAY_PARKED: set(),
}


def parse_call(body: bytes, kind: str) -> GroupCall:
    """A group request answered once. Create and update take the definition's keys (checked by
    the core); ack and nack take ``order-ids`` (or one ``order-id``)."""
    if kind in (GROUP_CREATE, GROUP_UPDATE):
        value = parse_body(body)
        if not isinstance(value, dict):
            raise ValidationError(f"a {kind} request is a JSON object")
        fields = {k: v for k, v in value.items() if k != "group-name"} if kind == GROUP_UPDATE else value
        return GroupCall(kind, _group_name(value, kind), fields)
    value = _object(body, kind, _CALL_FIELDS[kind] | ({"group-name"} if kind != GROUP_LIST else set()))
    if kind == GROUP_LIST:
        return GroupCall(kind, None, {})
    group = _group_name(value, kind)
    if kind in (GROUP_ACK, GROUP_NACK):
        if ("order-ids" in value) == ("order-id" in value):
            shape = '"order-ids": [<order-id>, ...] (or one "order-id")'
            raise ValidationError(f"a {kind} request holds {shape}", "order-ids")
        ids = value.pop("order-ids") if "order-ids" in value else [value.pop("order-id")]
        if not isinstance(ids, list) or not ids:
            raise ValidationError("order-ids must be a non-empty list of order-ids", "order-ids")
        value["order-ids"] = ids
        reason = value.get("reason", "")
        if not isinstance(reason, str):
            raise ValidationError("field 'reason' must be a string", "reason")
    if kind == GROUP_RESET and "from" not in value:
        raise ValidationError('a group-reset request holds "from": <order-id>', "from")
    value.pop("group-name", None)
    return GroupCall(kind, group, value)
