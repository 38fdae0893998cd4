"""Photon's AMQP message formats: names of queues and exchanges, message types, error replies.

Shared by the service (`photon.server.amqp`) and the Python clients (`photon.client.amqp`,
`photon.client.amqp_async`) so that both speak exactly what docs/amqp.md describes. Every message
body is JSON; the AMQP `type` property says what a message is. How the service reads a request
(and checks it) stays in `photon.server.amqp.protocol`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from photon.core.errors import (
    EVENT_INDEX,
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
    event_index,
)
from photon.core.requests import ReplayOptions, to_json

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


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def replay_body(stream: str, options: ReplayOptions) -> bytes:
    """The request body for a replay (the client's side of the service's `parse_replay`)."""
    return dumps({"stream-name": stream, **to_json(options)})


# -- error replies ------------------------------------------------------------------------

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
    index = getattr(error, "index", None)
    if isinstance(index, int):
        body[EVENT_INDEX] = index
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
        return InternalStreamError(message, body.get("field"), event_index(body))
    if kind == "validation":
        return ValidationError(message, body.get("field"), event_index(body))
    if kind == "not-found":
        return NotFound(message)
    if kind == "conflict":
        return Conflict(message)
    if kind == "unavailable":
        return BackendUnavailable(message)
    return PhotonError(message)
