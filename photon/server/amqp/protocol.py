"""How the service reads Photon's AMQP requests: emit and replay commands, stream requests.

The message formats themselves (names, message types, error replies) are in `photon.wire.amqp`,
which the Python client shares; what a request may hold is checked here and in the core.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from photon.core import json_input
from photon.core.append_request import AppendOptions
from photon.core.append_request import parse_emit as read_emit
from photon.core.errors import ValidationError
from photon.core.events import ALL_STREAM, ID
from photon.core.requests import ReplayOptions, from_json
from photon.core.subscriptions import StreamType
from photon.wire.amqp import DELETE_STREAM, STREAM_METADATA

#: Ids given to events of a command that carries a `message_id` but no event ids, so that a
#: command delivered twice (the broker redelivers what was not acknowledged) is stored once.
MESSAGE_ID_NAMESPACE: Final = uuid.UUID("5b0f3c1e-7d1a-4c39-9a57-2f1f0d6f8a11")

# A routing key is an AMQP short string: at most 255 bytes.
MAX_ROUTING_KEY_BYTES: Final = 255


def routing_key(name: str) -> str:
    """A stream or projection name as a routing key, cut to 255 bytes at a character boundary."""
    encoded = name.encode()
    if len(encoded) <= MAX_ROUTING_KEY_BYTES:
        return name
    return encoded[:MAX_ROUTING_KEY_BYTES].decode(errors="ignore")


# -- requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmitRequest:
    events: list[Any]
    options: AppendOptions


@dataclass(frozen=True)
class ReplayRequest:
    stream: str
    options: ReplayOptions

    @property
    def stream_type(self) -> StreamType:
        return self.options.stream_type

    def subscribe_args(self) -> dict[str, Any]:
        """Keyword arguments of `EventStore.subscribe` after the stream and stream type."""
        return self.options.subscribe_args()


def parse_body(body: bytes) -> Any:
    try:
        return json_input.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the message body is not valid JSON: {exc}") from None


def parse_emit(body: bytes, headers: Mapping[str, Any] | None, message_id: str | None) -> EmitRequest:
    """An emit command: one event, a list of events, or the emit wrapper of the HTTP API
    (``{"events": [...], "expected-version": v}``, or with ``expected-versions`` and ``condition``:
    see `photon.core.append_request`).

    `expected-version` may also come as a message header. With a `message_id` and no event
    ids, ids are derived from the message id so a redelivered command is not stored twice.
    """
    expected = (headers or {}).get("expected-version")
    if isinstance(expected, bytes):
        expected = expected.decode(errors="replace")
    request = read_emit(parse_body(body), expected_version=expected)
    value = request.events
    events = value if isinstance(value, list) else [value]
    if message_id:
        events = [
            ({**event, ID: str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{message_id}/{index}"))})
            if isinstance(event, dict) and event.get(ID) is None
            else event
            for index, event in enumerate(events)
        ]
    return EmitRequest(events, request.options)


def parse_replay(body: bytes) -> ReplayRequest:
    """A replay request: ``{"stream-name": ..., "stream-type": ..., "from": ..., ...}``."""
    value = parse_body(body) if body.strip() else {}
    if not isinstance(value, dict):
        raise ValidationError("a replay request must be a JSON object")
    return replay_request(value)


def replay_request(value: Mapping[str, Any], *, numbers_as_text: bool = False) -> ReplayRequest:
    """The replay options by their names (Photon's own AMQP protocol and Muon's replay args), read
    by the core's request model; `numbers_as_text` also takes numbers sent as ASCII digits."""
    stream = value.get("stream-name", ALL_STREAM)
    if not isinstance(stream, str) or not stream:
        raise ValidationError("field 'stream-name' must be a non-empty string", "stream-name")
    options = from_json(
        ReplayOptions, dict(value), also=("stream-name",), numbers_as_text=numbers_as_text, what="a replay request"
    )
    return ReplayRequest(stream, options)


def parse_stream_request(body: bytes, kind: str) -> dict[str, Any]:
    """A stream-metadata or delete-stream request: a JSON object naming its stream."""
    value = parse_body(body)
    allowed = {"stream-name", "metadata"} if kind == STREAM_METADATA else {"stream-name", "hard"}
    if not isinstance(value, dict) or type(value.get("stream-name")) is not str:
        raise ValidationError(f"a {kind} request is a JSON object with a stream-name", "stream-name")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r} in a {kind} request", unknown[0])
    if kind == DELETE_STREAM and type(value.get("hard", False)) is not bool:
        raise ValidationError("field 'hard' must be true or false", "hard")
    return value


def join_events(datas: Sequence[bytes]) -> bytes:
    """A JSON array of stored events, from their JSON bytes (no re-encoding)."""
    return b"[" + b",".join(datas) + b"]"
