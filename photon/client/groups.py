"""Consumer groups in the Python clients: what both the blocking and the async client share.

A member's HTTP stream (`GET /api/group/{name}/stream`) sends a first line naming the member,
then one line per delivery, ``{"attempt": n, "event": {...}}``. Acks and nacks are POSTs that
take many order-ids; the client's connection pool keeps one connection for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import orjson

from photon.core.events import RecordedEvent

_DELIVERY_HEAD = b'{"attempt":'
_EVENT_KEY = b',"event":'


class GroupDelivery(NamedTuple):
    """An event handed to this member: `attempt` is 1 the first time, 2 on the first redelivery..."""

    event: RecordedEvent
    attempt: int


def group_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Python keyword arguments (``max_in_flight=5``) as the group's hyphenated keys; None left out."""
    return {key.replace("_", "-"): value for key, value in settings.items() if value is not None}


def group_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """`group_settings` for an update: ``filter=None`` is sent (as null), and removes the filter."""
    return {key.replace("_", "-"): value for key, value in changes.items() if value is not None or key == "filter"}


def delivery_line(line: bytes) -> GroupDelivery | str | None:
    """One line of a member's stream: a delivery, the member id (first line), or None (blank)."""
    if not line.strip():
        return None
    if line.startswith(_DELIVERY_HEAD):
        split = line.index(_EVENT_KEY)
        attempt = int(line[len(_DELIVERY_HEAD) : split])
        return GroupDelivery(RecordedEvent.from_json(line[split + len(_EVENT_KEY) : line.rindex(b"}")]), attempt)
    hello = orjson.loads(line)
    return str(hello["member"])


def ack_body(order_ids: Iterable[int]) -> dict[str, Any]:
    return {"order-ids": list(order_ids)}


def nack_body(order_ids: Iterable[int], action: str, reason: str) -> dict[str, Any]:
    body: dict[str, Any] = {"order-ids": list(order_ids), "action": action}
    if reason:
        body["reason"] = reason
    return body
