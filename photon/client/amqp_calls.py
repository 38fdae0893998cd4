"""What the blocking and the asyncio AMQP clients share, without I/O: the bodies of their commands
and requests, and how a reply is read. Each client only publishes and waits
(`photon.client.amqp` with pika, `photon.client.amqp_async` with aio-pika).

A request answered once is a `Call`: its message type, its body, and what to take from the
`done` reply. The clients send it with their `call` method.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from photon.client.groups import ack_body, group_changes, group_settings, nack_body
from photon.core.append_request import AppendCondition, emit_body
from photon.core.errors import PhotonError
from photon.core.events import ID
from photon.wire.amqp import DELETE_STREAM, DONE, EMITTED, ERROR, STREAM_METADATA, error_from_body
from photon.wire.amqp_groups import (
    GROUP_ACK,
    GROUP_CREATE,
    GROUP_DELETE,
    GROUP_DESCRIBE,
    GROUP_LIST,
    GROUP_NACK,
    GROUP_REPLAY_PARKED,
    GROUP_RESET,
    GROUP_UPDATE,
)
from photon.wire.amqp_lifetime import READ_MATCHING, REDACT, SCAVENGE

Event = Mapping[str, Any]

UNROUTABLE = "<unroutable>"
"""The reply kind a client records for a command the broker returned: no queue of that name."""


def emit_command(
    events: Event | Sequence[Event],
    expected_version: int | str | None,
    expected_versions: Mapping[str, int | str] | None = None,
    condition: AppendCondition | Mapping[str, Any] | None = None,
) -> bytes:
    """An emit command's body. Ids given here make a re-sent command idempotent."""
    batch = [events] if isinstance(events, Mapping) else list(events)
    batch = [dict(event) if event.get(ID) else {**event, ID: str(uuid.uuid4())} for event in batch]
    return orjson.dumps(emit_body(batch, expected_version, expected_versions, condition))


def unroutable(queue: str) -> PhotonError:
    """The error for a command the broker could not route: no queue of that name."""
    return PhotonError(f"no Photon service listens on queue {queue!r} (is microservice.name right?)")


def reply_value(kind: str, body: bytes, expected: str, queue: str) -> Any:
    """The value of a reply of type `expected` (`emitted`, `done`); an error reply raised as the
    core's error, a returned command as "no Photon service listens"."""
    if kind == UNROUTABLE:
        raise unroutable(queue)
    value = orjson.loads(body)
    if kind == expected:
        return value
    raise error_from_body(value if kind == ERROR else {"error": f"unexpected reply {kind!r}"})


def emitted(replies: Sequence[tuple[str, bytes]], queue: str) -> list[list[dict[str, Any]]]:
    """The stored events of each emit command's reply; the first refusal raised once all are read
    (commands in flight together are answered each on its own)."""
    results: list[list[dict[str, Any]]] = []
    error: BaseException | None = None
    for kind, body in replies:
        try:
            results.append(reply_value(kind, body, EMITTED, queue))
        except PhotonError as exc:
            if kind == UNROUTABLE:
                raise
            error = error or exc
    if error is not None:
        raise error
    return results


class Call(NamedTuple):
    """A request answered once with a `done` reply."""

    kind: str
    body: dict[str, Any]
    answer: Callable[[dict[str, Any]], Any] = dict


def done(call: Call, kind: str, body: bytes, queue: str) -> Any:
    """What `call` answers, from its reply."""
    return call.answer(reply_value(kind, body, DONE, queue))


def _ids(order_ids: int | Sequence[int]) -> list[int]:
    return [order_ids] if isinstance(order_ids, int) else list(order_ids)


def stream_metadata(stream: str, metadata: Mapping[str, Any] | None = None) -> Call:
    """Read a stream's metadata; with `metadata`, replace it first."""
    body: dict[str, Any] = {"stream-name": stream}
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return Call(STREAM_METADATA, body, lambda answer: dict(answer["metadata"]))


def delete_stream(stream: str, hard: bool) -> Call:
    return Call(DELETE_STREAM, {"stream-name": stream, "hard": hard}, lambda answer: int(answer["deleted-events"]))


def scavenge() -> Call:
    return Call(SCAVENGE, {})


def redact(stream: str | None, event_ids: Sequence[str] | None, reason: str | None) -> Call:
    body: dict[str, Any] = {"reason": reason} if reason else {}
    if stream is not None:
        body["stream-name"] = stream
    if event_ids is not None:
        body["ids"] = list(event_ids)
    return Call(REDACT, body, lambda answer: int(answer["redacted-events"]))


def read_matching(body: Mapping[str, Any]) -> Call:
    """One page of events matching a query, as `POST /api/read-matching` answers it."""
    return Call(READ_MATCHING, dict(body))


def create_group(name: str, settings: Mapping[str, Any]) -> Call:
    return Call(GROUP_CREATE, {"group-name": name, **group_settings(settings)})


def update_group(name: str, changes: Mapping[str, Any]) -> Call:
    return Call(GROUP_UPDATE, {"group-name": name, **group_changes(changes)})


def delete_group(name: str) -> Call:
    return Call(GROUP_DELETE, {"group-name": name}, lambda _answer: None)


def list_groups() -> Call:
    return Call(GROUP_LIST, {}, lambda answer: list(answer["groups"]))


def describe_group(name: str) -> Call:
    return Call(GROUP_DESCRIBE, {"group-name": name})


def reset_group(name: str, from_: int) -> Call:
    return Call(GROUP_RESET, {"group-name": name, "from": from_})


def replay_parked(name: str) -> Call:
    return Call(GROUP_REPLAY_PARKED, {"group-name": name}, lambda answer: int(answer["replayed"]))


def ack_group(name: str, order_ids: int | Sequence[int]) -> Call:
    return Call(GROUP_ACK, {"group-name": name, **ack_body(_ids(order_ids))})


def nack_group(name: str, order_ids: int | Sequence[int], action: str, reason: str) -> Call:
    return Call(GROUP_NACK, {"group-name": name, **nack_body(_ids(order_ids), action, reason)})


def expected(expected_version: Any) -> Any:
    """A transport's expected version as the AMQP emit takes it (`any` is the same as none)."""
    return None if expected_version in (None, "any") else expected_version


def replay_arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    """A client's replay parameters (the HTTP query's names) as the AMQP clients' `replay` keywords."""
    types = params.get("event-types")
    return {
        "stream_type": str(params.get("stream-type") or "hot-cold"),
        "from_order_id": params.get("from"),
        "from_version": params.get("from-version"),
        "from_time": params.get("from-time"),
        "to_order_id": params.get("to"),
        "event_types": [types] if isinstance(types, str) else types,
        "limit": params.get("limit"),
        "filter": {key: params[key] for key in REPLAY_FILTER_KEYS if params.get(key) is not None},
    }


REPLAY_FILTER_KEYS = ("stream-prefix", "event-type-prefix", "stream-regex", "event-type-regex", "category")
"""The filter's keys among a replay's parameters (`event-types` is a parameter of its own)."""

HTTP_ONLY = {
    "subscribe": "durable named subscriptions are served over HTTP; use the HTTP transport",
    "streams": "the stream list is served over HTTP; use the HTTP transport",
}
