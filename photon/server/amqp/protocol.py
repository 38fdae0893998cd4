"""Photon's AMQP message formats: names of queues and exchanges, message types, bodies.

Shared by the service and the Python client so that both speak exactly what docs/amqp.md
describes. Every message body is JSON; the AMQP `type` property says what a message is.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from photon.core import json_input
from photon.core.append_request import AppendOptions
from photon.core.append_request import parse_emit as read_emit
from photon.core.errors import (
    AppendConditionFailed,
    BackendUnavailable,
    Conflict,
    InternalStreamError,
    NotFound,
    PhotonError,
    StoreClosed,
    StreamDeleted,
    ValidationError,
    VersionConflict,
)
from photon.core.events import ALL_STREAM, ID
from photon.core.requests import ReplayOptions, from_json, to_json
from photon.core.subscriptions import StreamType

# Message types (the AMQP `type` property).
EMIT: Final = "emit"
REPLAY: Final = "replay"
CANCEL: Final = "cancel"
EMITTED: Final = "emitted"
EVENT: Final = "event"
CAUGHT_UP: Final = "caught-up"
END: Final = "end"
ERROR: Final = "error"
PROJECTION: Final = "projection"

STREAM_METADATA: Final = "stream-metadata"
"""Body ``{"stream-name": s}`` reads a stream's metadata; with ``"metadata": {...}`` sets it."""
DELETE_STREAM: Final = "delete-stream"
"""Body ``{"stream-name": s, "hard": false}``: a soft (or hard) delete."""
DONE: Final = "done"
"""The reply to a stream-metadata or delete-stream request (a JSON object)."""

REQUEST_TYPES: Final = (EMIT, REPLAY, CANCEL, STREAM_METADATA, DELETE_STREAM)
CONTENT_TYPE: Final = "application/json"

#: Ids given to events of a command that carries a `message_id` but no event ids, so that a
#: command delivered twice (the broker redelivers what was not acknowledged) is stored once.
MESSAGE_ID_NAMESPACE: Final = uuid.UUID("5b0f3c1e-7d1a-4c39-9a57-2f1f0d6f8a11")

# A routing key is an AMQP short string: at most 255 bytes.
MAX_ROUTING_KEY_BYTES: Final = 255


class BrokerUnavailable(PhotonError):
    """The AMQP broker at `muon.url` cannot be reached (or refused the connection)."""


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:****@{netloc}"))


@dataclass(frozen=True)
class Names:
    """The broker objects one Photon service uses, all named from `microservice.name`."""

    service: str

    @property
    def commands(self) -> str:
        """Durable queue taking emit, replay, cancel and consumer group requests."""
        return f"{self.service}.commands"

    @property
    def events(self) -> str:
        """Topic exchange of live events, routed by stream name."""
        return f"{self.service}.events"

    @property
    def projections(self) -> str:
        """Topic exchange of projection updates, routed by projection name."""
        return f"{self.service}.projections"

    @property
    def dead_letters(self) -> str:
        """Fanout exchange receiving rejected commands."""
        return f"{self.service}.dead"

    @property
    def dead_letter_queue(self) -> str:
        """Durable queue keeping rejected commands for inspection."""
        return f"{self.service}.commands.dead"

    @property
    def checkpoint(self) -> str:
        """Store checkpoint key of the last live event the broker confirmed."""
        return f"amqp.{self.service}.published"


def routing_key(name: str) -> str:
    """A stream or projection name as a routing key, cut to 255 bytes at a character boundary."""
    encoded = name.encode()
    if len(encoded) <= MAX_ROUTING_KEY_BYTES:
        return name
    return encoded[:MAX_ROUTING_KEY_BYTES].decode(errors="ignore")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


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


def replay_body(stream: str, options: ReplayOptions) -> bytes:
    """The request body for a replay (the client's side of `parse_replay`)."""
    return dumps({"stream-name": stream, **to_json(options)})


# -- replies ----------------------------------------------------------------------------

_KINDS: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (VersionConflict, "version-conflict"),
    (AppendConditionFailed, "condition-failed"),
    (StreamDeleted, "stream-deleted"),
    (InternalStreamError, "internal-stream"),
    (ValidationError, "validation"),
    (NotFound, "not-found"),
    (Conflict, "conflict"),
    (StoreClosed, "unavailable"),
    (BackendUnavailable, "unavailable"),
    (PhotonError, "store"),
)


def error_body(error: BaseException) -> bytes:
    """``{"error": message, "kind": ..., "field": ...}`` for a failed request."""
    kind = next((name for cls, name in _KINDS if isinstance(error, cls)), "internal")
    body: dict[str, Any] = {"error": str(error) if kind != "internal" else f"internal error: {error!r}", "kind": kind}
    field = getattr(error, "field", None)
    if field:
        body["field"] = field
    if isinstance(error, VersionConflict):
        body["stream-name"] = error.stream
        body["current-version"] = error.current
    if isinstance(error, AppendConditionFailed):
        body.update(error.fields())
    if isinstance(error, StreamDeleted):
        body["stream-name"] = error.stream
    return dumps(body)


def error_from_body(body: Mapping[str, Any]) -> PhotonError:
    """The client's side of `error_body`: the core's error type for a reply."""
    message = str(body.get("error", "unknown error"))
    kind = body.get("kind")
    if kind == "version-conflict":
        error = VersionConflict(str(body.get("stream-name", "")), "?", int(body.get("current-version", 0)))
        error.args = (message,)
        return error
    if kind == "stream-deleted":
        return StreamDeleted(str(body.get("stream-name", "")))
    if kind == "condition-failed":
        return AppendConditionFailed.from_fields(body, message)
    if kind == "internal-stream":
        return InternalStreamError(message, body.get("field"))
    if kind == "validation":
        return ValidationError(message, body.get("field"))
    if kind == "not-found":
        return NotFound(message)
    if kind == "conflict":
        return Conflict(message)
    if kind == "unavailable":
        return BackendUnavailable(message)
    return PhotonError(message)


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
